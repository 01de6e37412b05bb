"""A container health check: ask a server's ``grpc.health.v1.Health/Check``.

Synchronous and dependency-free beyond grpcio, for Docker ``HEALTHCHECK``::

    python -m services.common.healthcheck --addr 127.0.0.1:50052 \\
        --service imagegen.vision.v1.VisionService

Prints the status and exits 0 when it is SERVING, 1 otherwise (NOT_SERVING, unknown
service, unreachable server, timeout).

TLS is on when ``--tls-ca`` or ``--tls-cert`` names a file. An empty value counts as not
given, so a shell command may pass ``--tls-ca "$VISION_TLS_CA_FILE"`` whether or not the
variable is set. Without a CA bundle the check trusts the certificate it presents
(``--tls-cert``): inside a service's container that is the server's own certificate,
which is all a check of one's own server on the loopback needs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["check_health", "main"]


def check_health(channel: grpc.Channel, *, service: str = "", timeout: float = 2.0) -> str:
    """Asks the health service of the server behind ``channel``.

    Args:
        channel: A synchronous channel to the server.
        service: Fully qualified service name; ``""`` for the whole server.
        timeout: Seconds to wait for the answer.

    Returns:
        The serving status name (``"SERVING"``, ``"NOT_SERVING"``, ...), or the gRPC
        code name when the call failed (``"UNAVAILABLE"``, ``"NOT_FOUND"`` for an
        unknown service, ``"DEADLINE_EXCEEDED"``, ...).
    """
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.RpcError as e:
        code = e.code() if callable(getattr(e, "code", None)) else grpc.StatusCode.UNKNOWN
        return str(code.name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def _path_or_unset(value: str) -> Path | None:
    """An argument naming a file; ``""`` (an unset shell variable) means not given."""
    return Path(value) if value.strip() else None


def _text_or_unset(value: str) -> str | None:
    return value if value.strip() else None


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the check from the command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The exit status: 0 for SERVING, 1 otherwise.
    """
    parser = argparse.ArgumentParser(
        prog="python -m services.common.healthcheck",
        description="Exit 0 when a gRPC server reports SERVING, 1 otherwise.",
    )
    parser.add_argument("--addr", required=True, help="host:port of the server")
    parser.add_argument("--service", default="", help="service name; empty = whole server")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds (default 2)")
    parser.add_argument(
        "--tls-ca",
        type=_path_or_unset,
        help="CA bundle the server's certificate is checked against; turns TLS on",
    )
    parser.add_argument(
        "--tls-cert",
        type=_path_or_unset,
        help="certificate presented (mutual TLS), and trusted when no CA is given; turns TLS on",
    )
    parser.add_argument("--tls-key", type=_path_or_unset, help="key of --tls-cert")
    parser.add_argument(
        "--tls-server-name", type=_text_or_unset, help="host name expected in the certificate"
    )
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")

    if args.tls_ca is None and args.tls_cert is None:
        channel = grpc.insecure_channel(args.addr)
    else:
        trusted = args.tls_ca if args.tls_ca is not None else args.tls_cert
        credentials = grpc.ssl_channel_credentials(
            root_certificates=trusted.read_bytes(),
            private_key=args.tls_key.read_bytes() if args.tls_key else None,
            certificate_chain=args.tls_cert.read_bytes() if args.tls_cert else None,
        )
        options = (
            [("grpc.ssl_target_name_override", args.tls_server_name)]
            if args.tls_server_name
            else []
        )
        channel = grpc.secure_channel(args.addr, credentials, options=options)
    with channel:
        status = check_health(channel, service=args.service, timeout=args.timeout)
    print(status)
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
