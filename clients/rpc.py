"""The client's gRPC plumbing: channels to a server, the caller's token, failed calls shown.

Only grpc, the generated code and the standard library: the command-line client never
loads server code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

__all__ = ["ChannelTLS", "call_metadata", "open_channel", "print_rpc_error", "status_details"]

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""The servers' default message limit; ``IMAGEGEN_MAX_MESSAGE_BYTES`` changes both."""

# The rich status of a failed call travels in this trailer (google.rpc.Status, binary).
_DETAILS_KEY = "grpc-status-details-bin"
_DETAIL_TYPES: tuple[type[Message], ...] = (
    error_details_pb2.BadRequest,
    error_details_pb2.ErrorInfo,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.RetryInfo,
    error_details_pb2.QuotaFailure,
)


@dataclass(frozen=True)
class ChannelTLS:
    """TLS towards the gateway: its CA, and optionally a client certificate (mutual TLS).

    Attributes:
        ca: PEM of the CA the gateway's certificate chains to.
        cert: PEM of the client certificate; None without one.
        key: PEM of its key.
    """

    ca: bytes
    cert: bytes | None = None
    key: bytes | None = None

    @classmethod
    def of(cls, ca: Path | None, cert: Path | None, key: Path | None) -> ChannelTLS | None:
        """Reads the files; None when no CA is given (plaintext).

        Raises:
            OSError: A file cannot be read.
            ValueError: A certificate without its key or the reverse, or either without a CA.
        """
        if (cert is None) != (key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if ca is None:
            if cert is not None:
                raise ValueError("a client certificate needs --tls-ca as well")
            return None
        return cls(
            ca.read_bytes(),
            cert.read_bytes() if cert is not None else None,
            key.read_bytes() if key is not None else None,
        )


def open_channel(target: str, tls: ChannelTLS | None = None) -> grpc.Channel:
    """A channel to a server, with the same message limit the servers use.

    Args:
        target: ``host:port`` of the server.
        tls: The CA (and client certificate) for TLS; None for plaintext.

    Returns:
        A synchronous channel; close it when done.
    """
    limit = int(os.environ.get("IMAGEGEN_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES))
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", limit),
        ("grpc.max_receive_message_length", limit),
    ]
    if tls is None:
        return grpc.insecure_channel(target, options=options)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert
    )
    return grpc.secure_channel(target, credentials, options=options)


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The metadata that carries the caller's token, if there is one."""
    return (("authorization", f"Bearer {token}"),) if token else ()


def status_details(error: grpc.RpcError) -> list[Message]:
    """The ``google.rpc`` details of a failed call (BadRequest, ErrorInfo …), unpacked.

    Args:
        error: The error a stub call raised.

    Returns:
        The details of the known types, in the order the server sent them; empty when it
        sent none or they cannot be read.
    """
    trailing = getattr(error, "trailing_metadata", None)
    by_name = {t.DESCRIPTOR.full_name: t for t in _DETAIL_TYPES}
    details: list[Message] = []
    for key, value in (trailing() if callable(trailing) else None) or ():
        if key != _DETAILS_KEY or not isinstance(value, bytes):
            continue
        for packed in status_pb2.Status.FromString(value).details:
            detail_type = by_name.get(packed.TypeName())
            if detail_type is not None:
                message = detail_type()
                packed.Unpack(message)
                details.append(message)
    return details


def print_rpc_error(error: grpc.RpcError, stream: TextIO) -> None:
    """Prints a failed call: status code, message, and each field or reason at fault."""
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    message = error.details() if callable(getattr(error, "details", None)) else str(error)
    print(f"error: {code.name}: {message}", file=stream)
    for detail in status_details(error):
        for line in _detail_lines(detail):
            print(f"  {line}", file=stream)
    stream.flush()


def _detail_lines(detail: Message) -> Sequence[str]:
    if isinstance(detail, error_details_pb2.BadRequest):
        return [f"field {v.field}: {v.description}" for v in detail.field_violations]
    if isinstance(detail, error_details_pb2.ErrorInfo):
        extra = ", ".join(f"{k}={v}" for k, v in sorted(detail.metadata.items()))
        return [f"reason {detail.reason}" + (f" ({extra})" if extra else "")]
    if isinstance(detail, error_details_pb2.PreconditionFailure):
        return [f"{v.type} {v.subject}: {v.description}" for v in detail.violations]
    if isinstance(detail, error_details_pb2.RetryInfo):
        return [f"retry after {detail.retry_delay.ToTimedelta().total_seconds():g} s"]
    if isinstance(detail, error_details_pb2.QuotaFailure):
        return [f"quota {v.subject}: {v.description}" for v in detail.violations]
    return []
