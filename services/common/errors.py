"""The domain errors of imagegen and their gRPC statuses.

Servicers raise these; the server interceptor turns each into exactly one gRPC status
carrying ``google.rpc`` details, so callers (and grpcurl) see why a call failed::

    ImagegenError                 (base; never raised itself)
    ├── InvalidArgumentError      INVALID_ARGUMENT    + BadRequest (field violations)
    ├── FailedPreconditionError   FAILED_PRECONDITION + ErrorInfo + PreconditionFailure
    ├── NotFoundError             NOT_FOUND           + ErrorInfo
    ├── BackendUnavailableError   UNAVAILABLE         + ErrorInfo(BACKEND_UNAVAILABLE)
    ├── ResourceExhaustedError    RESOURCE_EXHAUSTED  + ErrorInfo + RetryInfo
    ├── DeadlineExceededError     DEADLINE_EXCEEDED   + ErrorInfo
    ├── BackendFailedError        ABORTED             + ErrorInfo (the backend ran the job
    │                                                    and failed, e.g. a ComfyUI node)
    └── DownstreamError           the downstream service's own status and details,
                                  passed through unchanged (the gateway's relay)

Any other exception escaping a servicer becomes INTERNAL naming the exception type.
Clients read the details back with :func:`status_details`.

Messages and details often echo what a caller sent (a name, a prompt). gRPC carries
them in trailers, and trailers beyond about 8-16 KiB are dropped, leaving the caller a
retryable-looking RESOURCE_EXHAUSTED in place of the refusal. So :func:`to_rpc_status`
bounds every status it builds: each text (the message, every string of every detail)
is cut to :data:`MAX_TEXT_BYTES` and marked with an ellipsis and its full length
(``"xxxx… (1048576 chars)"``), and the whole serialized status is kept within
:data:`MAX_STATUS_BYTES`, shortening texts and lists further if needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn

import grpc
import grpc.aio
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "DOMAIN",
    "MAX_STATUS_BYTES",
    "MAX_TEXT_BYTES",
    "BackendFailedError",
    "BackendUnavailableError",
    "DeadlineExceededError",
    "DownstreamError",
    "FailedPreconditionError",
    "FieldViolation",
    "ImagegenError",
    "InvalidArgumentError",
    "NotFoundError",
    "PreconditionViolation",
    "ResourceExhaustedError",
    "abort",
    "status_details",
    "to_rpc_status",
]

DOMAIN = "imagegen"
"""The ``ErrorInfo.domain`` of every error raised by this system."""

MAX_TEXT_BYTES = 512
"""Longest text (UTF-8 bytes) of a status: its message and each string of its details."""
MAX_STATUS_BYTES = 4096
"""Largest serialized ``google.rpc.Status`` sent. Base64 in ``grpc-status-details-bin``
plus the percent-encoded ``grpc-message`` then stay under gRPC's 8 KiB trailer limit."""

_DETAILS_KEY = "grpc-status-details-bin"
# Ever tighter bounds (bytes per text, items per list) tried until a status fits.
_SHORTENINGS = ((MAX_TEXT_BYTES, 64), (256, 32), (128, 16), (64, 8), (32, 4))

# The detail messages a caller may meet, looked up by their Any type URL.
_DETAIL_TYPES: tuple[type[Message], ...] = (
    error_details_pb2.BadRequest,
    error_details_pb2.ErrorInfo,
    error_details_pb2.RetryInfo,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.QuotaFailure,
    error_details_pb2.ResourceInfo,
    error_details_pb2.RequestInfo,
    error_details_pb2.DebugInfo,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
)
_DETAIL_TYPE_BY_NAME = {t.DESCRIPTOR.full_name: t for t in _DETAIL_TYPES}


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, sent as a ``google.rpc.BadRequest`` violation.

    Attributes:
        field: Path of the field in the request, e.g. ``"source_image.data"``.
        description: What is wrong with it, for a person.
    """

    field: str
    description: str


@dataclass(frozen=True)
class PreconditionViolation:
    """One unmet precondition, sent as a ``google.rpc.PreconditionFailure`` violation.

    Attributes:
        type: Kind of precondition, e.g. ``"LORA"`` or ``"WORKFLOW"``.
        subject: What failed it, e.g. the LoRA file name.
        description: What is missing and how to fix it.
    """

    type: str
    subject: str
    description: str


class ImagegenError(Exception):
    """Base of all domain errors; each subclass maps to one gRPC status code.

    Attributes:
        code: The gRPC status code the error is sent with.
        message: The status message, for a person.
        reason: ``ErrorInfo.reason``, an UPPER_SNAKE constant a program can test.
        metadata: ``ErrorInfo.metadata``, e.g. ``{"backend": "comfyui"}``.
    """

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    default_reason: ClassVar[str] = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})

    def details(self) -> list[Message]:
        """The ``google.rpc`` detail messages sent with the status."""
        return [self._error_info()]

    def _error_info(self) -> error_details_pb2.ErrorInfo:
        return error_details_pb2.ErrorInfo(
            reason=self.reason, domain=DOMAIN, metadata=self.metadata
        )

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidArgumentError(ImagegenError):
    """The request is malformed; the violations name each bad field.

    Args:
        message: Summary, e.g. ``"source_image is not a usable image"``.
        violations: The bad fields.
        reason: Logged with the call (the status carries no ``ErrorInfo``), e.g.
            ``"MALFORMED_REQUEST"``.
    """

    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self, message: str, violations: Sequence[FieldViolation], *, reason: str | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        self.violations = tuple(violations)

    def details(self) -> list[Message]:
        """A ``BadRequest`` listing every field violation."""
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in self.violations
                ]
            )
        ]


class FailedPreconditionError(ImagegenError):
    """The system is not in a state to run the request: a missing model, LoRA or workflow.

    Args:
        message: Summary for a person.
        reason: ``ErrorInfo.reason``, e.g. ``"LORA_NOT_FOUND"``.
        metadata: ``ErrorInfo.metadata``.
        violations: The unmet preconditions.
    """

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        metadata: Mapping[str, str] | None = None,
        violations: Sequence[PreconditionViolation] = (),
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.violations = tuple(violations)

    def details(self) -> list[Message]:
        """``ErrorInfo`` plus a ``PreconditionFailure`` listing the violations."""
        failure = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type=v.type, subject=v.subject, description=v.description
                )
                for v in self.violations
            ]
        )
        return [self._error_info(), failure]


class NotFoundError(ImagegenError):
    """A named thing (a job, a file) does not exist."""

    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class BackendUnavailableError(ImagegenError):
    """A backend (Ollama, ComfyUI, a downstream service) could not be reached.

    Args:
        message: Summary for a person.
        backend: Which backend, e.g. ``"ollama"``; sent as ``ErrorInfo.metadata["backend"]``.
    """

    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "BACKEND_UNAVAILABLE"

    def __init__(self, message: str, *, backend: str) -> None:
        super().__init__(message, metadata={"backend": backend})
        self.backend = backend


class ResourceExhaustedError(ImagegenError):
    """A limit was hit: a queue is full, a quota is spent, an input is too large.

    Args:
        message: Summary for a person.
        retry_after_s: When set, sent as ``RetryInfo.retry_delay``.
        reason: ``ErrorInfo.reason``.
        metadata: ``ErrorInfo.metadata``.
    """

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None = None,
        reason: str = "RESOURCE_EXHAUSTED",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_after_s = retry_after_s

    def details(self) -> list[Message]:
        """``ErrorInfo``, plus ``RetryInfo`` when a retry delay is known."""
        details: list[Message] = [self._error_info()]
        if self.retry_after_s is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(round(self.retry_after_s * 1e9))
            details.append(error_details_pb2.RetryInfo(retry_delay=delay))
        return details


class DeadlineExceededError(ImagegenError):
    """The caller's deadline ran out (or would run out) before the work could finish."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    default_reason = "DEADLINE_EXCEEDED"


class BackendFailedError(ImagegenError):
    """A backend accepted the job and then failed it (e.g. a ComfyUI execution_error).

    Args:
        message: Summary for a person.
        backend: Which backend, sent as ``ErrorInfo.metadata["backend"]``.
        reason: ``ErrorInfo.reason``, e.g. ``"COMFYUI_EXECUTION_ERROR"``.
        metadata: More ``ErrorInfo.metadata``, e.g. the failing node.
    """

    code = grpc.StatusCode.ABORTED

    def __init__(
        self,
        message: str,
        *,
        backend: str,
        reason: str,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata={**(metadata or {}), "backend": backend})
        self.backend = backend


class DownstreamError(ImagegenError):
    """A downstream service's failure relayed with its own code, message and details.

    Build it with :meth:`from_rpc_error`; raising it makes this server answer exactly as
    the downstream service did, so the caller sees the original BadRequest, not a wrapper.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        packed_details: Sequence[any_pb2.Any] = (),
    ) -> None:
        super().__init__(message, reason=code.name)
        # An instance attribute shadows the class-level code: this error has no fixed one.
        self.code = code  # type: ignore[misc]
        self.packed_details = tuple(packed_details)

    @classmethod
    def from_rpc_error(cls, e: grpc.aio.AioRpcError | grpc.RpcError) -> DownstreamError:
        """Captures a failed downstream call.

        Args:
            e: The error raised by an aio (or sync) stub call.

        Returns:
            An error that re-raises the same code, message and details.
        """
        code, message = _code_and_message(e)
        status = _rich_status(e)
        packed = list(status.details) if status is not None else []
        return cls(code, message, packed)

    def details(self) -> list[Message]:
        """The downstream details, unpacked where the type is known."""
        return _unpack(self.packed_details)


def to_rpc_status(err: ImagegenError) -> grpc.Status:
    """The ``grpc.Status`` (code, message, details trailer) for a domain error.

    The status is bounded (see the module doc), so it always reaches the caller.

    Args:
        err: The error.

    Returns:
        A status for ``context.abort_with_status``.
    """
    if isinstance(err, DownstreamError):
        packed = list(err.packed_details)
    else:
        packed = []
        for detail in err.details():
            packed.append(any_pb2.Any())
            packed[-1].Pack(detail)
    return rpc_status.to_status(_bounded_status(err.code, err.message, packed))


def _bounded_text(text: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """``text`` cut to ``max_bytes`` of UTF-8, marked with an ellipsis and its length.

    Args:
        text: Any text, possibly echoing a caller's value.
        max_bytes: Most UTF-8 bytes of the result.

    Returns:
        ``text`` itself when it fits; otherwise its head and ``"… (N chars)"``.
    """
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    marker = f"… ({len(text)} chars)"
    room = max(0, max_bytes - len(marker.encode()))
    return encoded[:room].decode(errors="ignore") + marker


def _bounded_status(
    code: grpc.StatusCode, message: str, details: Sequence[any_pb2.Any]
) -> status_pb2.Status:
    """A ``google.rpc.Status`` of at most :data:`MAX_STATUS_BYTES` serialized.

    Texts are cut (:func:`_bounded_text`) and lists shortened, ever more tightly, until
    the status fits; details of types not known here cannot be shortened and are left
    out, last first, if it still does not.

    Args:
        code: The status code.
        message: The status message.
        details: The packed detail messages.

    Returns:
        The bounded status.
    """
    status = status_pb2.Status(code=code.value[0], message=_bounded_text(message))
    for max_bytes, max_items in _SHORTENINGS:
        del status.details[:]
        status.details.extend(_bounded_detail(d, max_bytes, max_items) for d in details)
        if status.ByteSize() <= MAX_STATUS_BYTES:
            return status
    while status.details and status.ByteSize() > MAX_STATUS_BYTES:
        del status.details[-1]
    return status


def _bounded_detail(packed: any_pb2.Any, max_bytes: int, max_items: int) -> any_pb2.Any:
    detail_type = _DETAIL_TYPE_BY_NAME.get(packed.TypeName())
    if detail_type is None:
        return packed
    detail = detail_type()
    packed.Unpack(detail)
    _bound_fields(detail, max_bytes, max_items)
    bounded = any_pb2.Any()
    bounded.Pack(detail)
    return bounded


def _bound_fields(message: Message, max_bytes: int, max_items: int) -> None:
    """Cuts every string of ``message`` (nested ones too) and shortens its lists, in place."""
    for field, value in message.ListFields():
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            value_field = entry.fields_by_name["value"]
            for key in list(value)[max_items:]:
                del value[key]
            for key in list(value):
                if value_field.type == FieldDescriptor.TYPE_STRING:
                    value[key] = _bounded_text(value[key], max_bytes)
                elif value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    _bound_fields(value[key], max_bytes, max_items)
        elif field.is_repeated:
            del value[max_items:]
            if field.type == FieldDescriptor.TYPE_STRING:
                value[:] = [_bounded_text(v, max_bytes) for v in value]
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                for item in value:
                    _bound_fields(item, max_bytes, max_items)
        elif field.type == FieldDescriptor.TYPE_STRING:
            setattr(message, field.name, _bounded_text(value, max_bytes))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            _bound_fields(value, max_bytes, max_items)


async def abort(context: grpc.aio.ServicerContext[Any, Any], err: ImagegenError) -> NoReturn:
    """Ends the current call with the status of ``err``.

    Trailing metadata already set on the call (such as the request id) is kept beside
    the details.

    Args:
        context: The servicer context of the call.
        err: The error to answer with.

    Raises:
        grpc.aio.AbortError: Always; let it propagate.
    """
    status = to_rpc_status(err)
    kept = tuple((k, v) for k, v in (context.trailing_metadata() or ()) if k != _DETAILS_KEY)
    await context.abort(status.code, status.details, kept + tuple(status.trailing_metadata))
    raise AssertionError("context.abort returned")  # it always raises; this satisfies NoReturn


def status_details(e: grpc.aio.AioRpcError | grpc.RpcError) -> list[Message]:
    """The ``google.rpc`` details of a failed call, unpacked.

    Args:
        e: The error raised by a stub call.

    Returns:
        Messages such as ``BadRequest``, ``ErrorInfo``, ``RetryInfo`` and
        ``PreconditionFailure``, in the order the server sent them; details of types
        not known here are skipped; empty when the server sent none.
    """
    status = _rich_status(e)
    return _unpack(status.details) if status is not None else []


def _code_and_message(e: grpc.aio.AioRpcError | grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    code = e.code() if callable(getattr(e, "code", None)) else grpc.StatusCode.UNKNOWN
    message = e.details() if callable(getattr(e, "details", None)) else str(e)
    return code, message or ""


def _rich_status(e: grpc.aio.AioRpcError | grpc.RpcError) -> status_pb2.Status | None:
    trailing = e.trailing_metadata() if callable(getattr(e, "trailing_metadata", None)) else None
    for key, value in trailing or ():
        if key == _DETAILS_KEY:
            return status_pb2.Status.FromString(value)
    return None


def _unpack(packed: Sequence[any_pb2.Any]) -> list[Message]:
    unpacked: list[Message] = []
    for any_detail in packed:
        detail_type = _DETAIL_TYPE_BY_NAME.get(any_detail.TypeName())
        if detail_type is not None:
            message = detail_type()
            any_detail.Unpack(message)
            unpacked.append(message)
    return unpacked
