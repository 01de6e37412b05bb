"""Client channels to other imagegen services, opened once per target at startup.

:func:`create_channel` sets what every internal client needs: the shared message-size
limit in both directions, keepalive, round-robin balancing over every address a name
resolves to (``dns:///render:50054`` spreads over all render replicas; another policy
with ``load_balancing=``), transparent
retries of UNAVAILABLE for the unary methods of the named services, and forwarding of
the current request id::

    channel = create_channel(
        settings.render_addr,
        max_message_bytes=settings.max_message_bytes,
        retry_services=["imagegen.render.v1.RenderService"],
    )
    stub = render_pb2_grpc.RenderServiceStub(channel)
    server.on_stop(channel.close)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import grpc
import grpc.aio
from google.protobuf import descriptor_pool

from services.common.interceptors import request_id_client_interceptors

__all__ = [
    "LOAD_BALANCING_POLICIES",
    "ClientKeepalive",
    "ClientTLS",
    "LoadBalancing",
    "channel_options",
    "create_channel",
    "service_config",
]

LoadBalancing = Literal["round_robin", "pick_first"]
"""A gRPC load-balancing policy a channel may use.

``round_robin`` (the default) keeps a connection to every address the target resolves
to and spreads calls over the ready ones: a headless Service's name or an ``ipv4:`` list
of replicas. ``pick_first`` sends every call to the first address that answers, for a
target that is already one balanced address (a proxy, a ClusterIP Service).
"""

LOAD_BALANCING_POLICIES: tuple[str, ...] = get_args(LoadBalancing)


@dataclass
class ClientTLS:
    """TLS for a client channel.

    | usage                                        | meaning                                |
    |----------------------------------------------|----------------------------------------|
    | ``ClientTLS(ca_file=ca)``                    | verify the server against ``ca``       |
    | ``ClientTLS(ca, cert_file=c, key_file=k)``   | mutual TLS: also present a certificate |
    | ``ClientTLS(ca, server_name_override="x")``  | expect certificate name ``x``          |

    Attributes:
        ca_file: PEM bundle the server certificate must chain to; ``None`` = system roots.
        cert_file: PEM client certificate chain, for mutual TLS.
        key_file: PEM key of the client certificate.
        server_name_override: Host name expected in the server certificate, when it is
            not the one in the target (tests, IP targets).
    """

    ca_file: Path | None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name_override: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        """The ``grpc.ChannelCredentials`` these files describe."""
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_file.read_bytes() if self.ca_file else None,
            private_key=self.key_file.read_bytes() if self.key_file else None,
            certificate_chain=self.cert_file.read_bytes() if self.cert_file else None,
        )


@dataclass(frozen=True)
class ClientKeepalive:
    """Client keepalive pings, which find a dead connection before a call does.

    The servers tolerate pings every ``keepalive_min_ping_interval_s`` (10 s by
    default); pinging more often earns a GOAWAY, so ``time_s`` stays above that.

    Attributes:
        time_s: Seconds between pings on an idle connection.
        timeout_s: Seconds to wait for the answer before the connection is dropped.
    """

    time_s: float = 30.0
    timeout_s: float = 10.0


def service_config(
    retry_services: Sequence[str] = (),
    *,
    max_attempts: int = 4,
    load_balancing: LoadBalancing = "round_robin",
) -> dict[str, Any]:
    """The gRPC service config: the balancing policy, plus UNAVAILABLE retries for unary methods.

    Args:
        retry_services: Fully qualified services whose unary methods are retried.
            Streaming methods are left out: once a stream has started, only the caller
            knows whether repeating it is safe.
        max_attempts: Attempts in total, the first included (gRPC caps it at 5).
        load_balancing: See :data:`LoadBalancing`.

    Returns:
        The config as a dict, for ``json.dumps`` into ``grpc.service_config``.

    Raises:
        ValueError: ``load_balancing`` is not one of :data:`LOAD_BALANCING_POLICIES`.
    """
    if load_balancing not in LOAD_BALANCING_POLICIES:
        # gRPC ignores a service config it cannot use and falls back to pick_first,
        # which would silently pin every call to one replica.
        raise ValueError(
            f"unknown load-balancing policy {load_balancing!r}; "
            f"use one of {', '.join(LOAD_BALANCING_POLICIES)}"
        )
    names: list[dict[str, str]] = []
    for service in retry_services:
        methods = _unary_methods(service)
        if methods is None:  # descriptor not loaded: the whole service
            names.append({"service": service})
        else:
            names += [{"service": service, "method": m} for m in methods]
    config: dict[str, Any] = {"loadBalancingConfig": [{load_balancing: {}}]}
    if names:
        config["methodConfig"] = [
            {
                "name": names,
                "retryPolicy": {
                    "maxAttempts": max_attempts,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    return config


def _unary_methods(service: str) -> list[str] | None:
    try:
        descriptor = descriptor_pool.Default().FindServiceByName(service)
    except KeyError:
        return None
    return [m.name for m in descriptor.methods if not (m.client_streaming or m.server_streaming)]


def channel_options(
    *,
    max_message_bytes: int,
    retry_services: Sequence[str] = (),
    keepalive: ClientKeepalive | None = None,
    server_name_override: str | None = None,
    load_balancing: LoadBalancing = "round_robin",
) -> list[tuple[str, Any]]:
    """The channel arguments :func:`create_channel` uses, for callers building their own.

    Args:
        max_message_bytes: Send and receive limit.
        retry_services: See :func:`service_config`.
        keepalive: Ping settings; defaults to :class:`ClientKeepalive`.
        server_name_override: TLS host name to expect, if any.
        load_balancing: See :data:`LoadBalancing`.

    Returns:
        ``options=`` for ``grpc.aio.insecure_channel`` / ``secure_channel``.
    """
    keepalive = keepalive or ClientKeepalive()
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", round(keepalive.time_s * 1000)),
        ("grpc.keepalive_timeout_ms", round(keepalive.timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.enable_retries", 1),
        (
            "grpc.service_config",
            json.dumps(service_config(retry_services, load_balancing=load_balancing)),
        ),
        # gRPC's default reconnect backoff grows to two minutes, so a service that was down
        # for half a minute kept being refused for many seconds after it came back; a
        # redeployed replica is worth retrying within a second.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]
    if server_name_override:
        options.append(("grpc.ssl_target_name_override", server_name_override))
    return options


def create_channel(
    target: str,
    *,
    max_message_bytes: int,
    retry_services: Sequence[str] = (),
    tls: ClientTLS | None = None,
    keepalive: ClientKeepalive | None = None,
    load_balancing: LoadBalancing = "round_robin",
) -> grpc.aio.Channel:
    """Opens an aio channel to another imagegen service.

    Args:
        target: ``host:port`` or a gRPC name such as ``dns:///render:50054``; a name
            that resolves to several addresses (a headless Service) or an
            ``ipv4:a:p1,b:p2`` list is balanced by ``load_balancing``.
        max_message_bytes: Send and receive limit; the same value the servers use
            (``IMAGEGEN_MAX_MESSAGE_BYTES``).
        retry_services: Services whose unary methods are retried on UNAVAILABLE.
        tls: TLS settings; ``None`` for plaintext.
        keepalive: Ping settings; defaults to :class:`ClientKeepalive`.
        load_balancing: See :data:`LoadBalancing`.

    Returns:
        The channel, with the request-id interceptors installed; close it on shutdown.
    """
    options = channel_options(
        max_message_bytes=max_message_bytes,
        retry_services=retry_services,
        keepalive=keepalive,
        server_name_override=tls.server_name_override if tls else None,
        load_balancing=load_balancing,
    )
    interceptors = request_id_client_interceptors()
    if tls is None:
        channel: grpc.aio.Channel = grpc.aio.insecure_channel(
            target, options=options, interceptors=interceptors
        )
    else:
        channel = grpc.aio.secure_channel(
            target, tls.credentials(), options=options, interceptors=interceptors
        )
    return channel
