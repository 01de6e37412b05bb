"""Interceptors: request ids, access logs, RPC metrics and error mapping.

Server side, :class:`ServerInterceptor` wraps every handler so that, for each call:

- the caller's ``x-request-id`` (or a fresh uuid4 hex) is set in
  :data:`~services.common.logs.request_id_var` and returned in trailing metadata, on
  success and on error alike;
- an :class:`~services.common.errors.ImagegenError` escaping the handler becomes its
  status with ``google.rpc`` details; any other exception becomes INTERNAL naming the
  exception type (never UNKNOWN); ``asyncio.CancelledError`` propagates untouched;
- a request that is not a valid protobuf message of the method's type is answered
  INVALID_ARGUMENT (reason ``MALFORMED_REQUEST``) before any handler runs, instead of
  grpc's bare UNKNOWN;
- one access-log line (method, code, reason, duration, peer, and whatever the handler
  added with :func:`annotate_call`, such as the gateway's caller name) is written and
  ``imagegen_rpc_seconds`` observed.

``intercept_service`` only sees the method name and metadata, so the work happens in a
wrapper around the handler's behaviour (unary or streaming, coroutine or async
generator) and its request deserializer. Synchronous behaviours, which grpc.aio runs in
a thread pool, are passed through unwrapped, deserializer included.

Client side, :func:`request_id_client_interceptors` forward the current request id on
every outgoing aio call, so one id follows a request through every hop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from services.common.errors import ImagegenError, InvalidArgumentError, abort
from services.common.logs import get_logger, request_id_var
from services.common.metrics import RPC_SECONDS, RPCS_IN_FLIGHT

__all__ = [
    "REQUEST_ID_KEY",
    "RequestIdStreamStreamInterceptor",
    "RequestIdStreamUnaryInterceptor",
    "RequestIdUnaryStreamInterceptor",
    "RequestIdUnaryUnaryInterceptor",
    "ServerInterceptor",
    "annotate_call",
    "request_id_client_interceptors",
]

REQUEST_ID_KEY = "x-request-id"
"""Metadata key carrying the request id, in both directions."""

# An incoming id is echoed into logs and trailers, so only plain tokens are accepted;
# anything else (too long, spaces, control characters) is replaced by a fresh id.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
# Probes and reflection are called every few seconds; their access lines go to DEBUG.
_QUIET_SERVICES = frozenset({"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"})

_log = get_logger(__name__)
_access_log = get_logger("imagegen.access")

Behaviour = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any]
Deserializer = Callable[[bytes], Any]


def annotate_call(**fields: str) -> None:
    """Adds fields to the access-log line of the call being handled.

    Outside a call it does nothing. The gateway names the authenticated caller this way,
    on served calls and refusals alike: ``annotate_call(caller="studio-web")``.

    Args:
        fields: Names and values added to the line.
    """
    scope = _current_scope.get()
    if scope is not None:
        scope.fields.update(fields)


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc ships no type hints
    """The one server interceptor every imagegen server installs (see the module doc)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED itself
            return handler
        method: str = handler_call_details.method
        request_id = _incoming_request_id(handler_call_details.invocation_metadata)
        return _wrap_handler(handler, _CallInfo.of(method, request_id))


def _incoming_request_id(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and _VALID_REQUEST_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex


@dataclass(frozen=True)
class _CallInfo:
    method: str
    service: str
    short_method: str
    request_id: str

    @classmethod
    def of(cls, method: str, request_id: str) -> _CallInfo:
        service, _, short = method.lstrip("/").partition("/")
        return cls(method, service, short, request_id)


def _wrap_handler(handler: grpc.RpcMethodHandler, call: _CallInfo) -> grpc.RpcMethodHandler:
    des, ser = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary is not None:
        behaviour, des = _wrap_behaviour(handler.unary_unary, des, call, request_streaming=False)
        return grpc.unary_unary_rpc_method_handler(behaviour, des, ser)
    if handler.unary_stream is not None:
        behaviour, des = _wrap_behaviour(handler.unary_stream, des, call, request_streaming=False)
        return grpc.unary_stream_rpc_method_handler(behaviour, des, ser)
    if handler.stream_unary is not None:
        behaviour, des = _wrap_behaviour(handler.stream_unary, des, call, request_streaming=True)
        return grpc.stream_unary_rpc_method_handler(behaviour, des, ser)
    if handler.stream_stream is not None:
        behaviour, des = _wrap_behaviour(handler.stream_stream, des, call, request_streaming=True)
        return grpc.stream_stream_rpc_method_handler(behaviour, des, ser)
    return handler


@dataclass(frozen=True)
class _MalformedRequest:
    """Handed on by the wrapped deserializer in place of a message it could not parse."""

    error: InvalidArgumentError


def _tolerant(deserializer: Deserializer | None, call: _CallInfo) -> Deserializer | None:
    """The deserializer, returning a :class:`_MalformedRequest` where it would raise.

    grpc answers a raising deserializer with UNKNOWN before any interceptor sees the
    call; handing the failure on lets the call scope answer, log and count it.
    """
    if deserializer is None:
        return None
    message_type = getattr(deserializer, "__self__", None)
    descriptor = getattr(message_type, "DESCRIPTOR", None)
    type_name = getattr(descriptor, "full_name", None) or f"request of {call.method}"

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as e:  # DecodeError, or whatever another deserializer raises
            return _MalformedRequest(
                InvalidArgumentError(
                    f"the request is not a valid {type_name} message ({type(e).__name__}); "
                    f"send a serialized {type_name}",
                    [],
                    reason="MALFORMED_REQUEST",
                )
            )

    return deserialize


async def _checked_requests(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """A request stream that raises at the first message that could not be parsed."""
    async for request in requests:
        if isinstance(request, _MalformedRequest):
            raise request.error
        yield request


def _wrap_behaviour(
    behaviour: Behaviour,
    deserializer: Deserializer | None,
    call: _CallInfo,
    *,
    request_streaming: bool,
) -> tuple[Behaviour, Deserializer | None]:
    """Wraps one handler function, keeping its kind (grpc.aio dispatches on it).

    Args:
        behaviour: The handler function.
        deserializer: Its request deserializer.
        call: The call it will handle.
        request_streaming: The handler takes a stream of requests, not one.

    Returns:
        The wrapped behaviour and the deserializer that goes with it.
    """

    def checked(request: Any) -> Any:
        if request_streaming:
            return _checked_requests(request)
        if isinstance(request, _MalformedRequest):
            raise request.error
        return request

    if inspect.isasyncgenfunction(behaviour):

        async def streaming_response(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            scope = _CallScope(call, context)
            try:
                responses = behaviour(checked(request), context)
            except BaseException as error:
                await scope.fail(error)
                raise
            try:
                async for response in responses:
                    yield response
            except BaseException as error:
                await scope.fail(error)
                raise
            finally:
                # A caller that cancels while this generator waits at its yield leaves it
                # to be finalised with GeneratorExit; close the handler's generator now so
                # its own cleanup (e.g. withdrawing ComfyUI prompts) runs at once.
                await responses.aclose()
            scope.succeed()

        return streaming_response, _tolerant(deserializer, call)

    if inspect.iscoroutinefunction(behaviour):

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            scope = _CallScope(call, context)
            try:
                response = await behaviour(checked(request), context)
            except BaseException as error:
                await scope.fail(error)
                raise
            scope.succeed()
            return response

        return unary, _tolerant(deserializer, call)

    return behaviour, deserializer


class _CallScope:
    """One call being handled: sets the request id, then logs and measures the outcome."""

    def __init__(self, call: _CallInfo, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self._call = call
        self._context = context
        self._started = time.perf_counter()
        self.fields: dict[str, str] = {}
        """Added to the access-log line (:func:`annotate_call`)."""
        # Read once, now: after a cancellation grpc may already have released the call,
        # and touching the context then crashes the process.
        self._peer = context.peer()
        # Each call is handled in its own asyncio task, so this value lives and dies with
        # the call; no reset is needed (and a reset from a generator finalised in another
        # task would fail).
        request_id_var.set(call.request_id)
        _current_scope.set(self)
        context.set_trailing_metadata(((REQUEST_ID_KEY, call.request_id),))
        RPCS_IN_FLIGHT.labels(call.service, call.short_method).inc()

    def succeed(self) -> None:
        self._keep_request_id_trailer()
        code = _context_code(self._context) or grpc.StatusCode.OK
        self._record(code)

    async def fail(self, error: BaseException) -> None:
        """Records a failure and, for domain and unexpected errors, aborts the call.

        Returns normally only for errors that must propagate as they are (cancellation,
        an abort the handler already made); otherwise raises ``grpc.aio.AbortError``.
        """
        if isinstance(error, asyncio.CancelledError | GeneratorExit):
            self._record(grpc.StatusCode.CANCELLED)
            return
        if isinstance(error, grpc.aio.AbortError):
            self._record(_context_code(self._context) or grpc.StatusCode.UNKNOWN)
            return
        if isinstance(error, ImagegenError):
            self._record(error.code, reason=error.reason)
            await abort(self._context, error)
        if isinstance(error, Exception):
            _log.error(
                "unhandled %s in %s",
                type(error).__name__,
                self._call.method,
                exc_info=error,
                extra={"method": self._call.method},
            )
            internal = ImagegenError(
                f"internal error ({type(error).__name__}); request id {self._call.request_id}",
                reason="INTERNAL",
            )
            self._record(internal.code, reason=internal.reason)
            await abort(self._context, internal)
        self._record(grpc.StatusCode.UNKNOWN)

    def _keep_request_id_trailer(self) -> None:
        # A handler may have replaced the trailing metadata; put the request id back.
        trailer = tuple(self._context.trailing_metadata() or ())
        if not any(key == REQUEST_ID_KEY for key, _ in trailer):
            self._context.set_trailing_metadata((*trailer, (REQUEST_ID_KEY, self._call.request_id)))

    def _record(self, code: grpc.StatusCode, *, reason: str | None = None) -> None:
        seconds = time.perf_counter() - self._started
        call = self._call
        RPCS_IN_FLIGHT.labels(call.service, call.short_method).dec()
        RPC_SECONDS.labels(call.service, call.short_method, code.name).observe(seconds)
        extra: dict[str, Any] = {
            **self.fields,
            "method": call.method,
            "code": code.name,
            "duration_ms": round(seconds * 1000, 3),
            "peer": self._peer,
        }
        if reason is not None:
            extra["reason"] = reason
        level = logging.DEBUG if call.service in _QUIET_SERVICES else logging.INFO
        _access_log.log(level, "rpc %s %s", call.method, code.name, extra=extra)


_current_scope: ContextVar[_CallScope | None] = ContextVar("call_scope", default=None)


def _context_code(context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode | None:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):  # some grpc versions report the raw integer
        return next((c for c in grpc.StatusCode if c.value[0] == code), None)
    return None


def _with_request_id(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    if REQUEST_ID_KEY not in metadata:
        request_id = request_id_var.get()
        metadata.add(REQUEST_ID_KEY, request_id if request_id != "-" else uuid.uuid4().hex)
    return grpc.aio.ClientCallDetails(
        method=details.method,
        timeout=details.timeout,
        metadata=metadata,
        credentials=details.credentials,
        wait_for_ready=details.wait_for_ready,
    )


class RequestIdUnaryUnaryInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc ships no type hints
    """Adds ``x-request-id`` (the current request's, or a new one) to unary calls."""

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(_with_request_id(client_call_details), request)


class RequestIdUnaryStreamInterceptor(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]  # grpc ships no type hints
    """Adds ``x-request-id`` to server-streaming calls."""

    async def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(_with_request_id(client_call_details), request)


class RequestIdStreamUnaryInterceptor(grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]  # grpc ships no type hints
    """Adds ``x-request-id`` to client-streaming calls."""

    async def intercept_stream_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(_with_request_id(client_call_details), request_iterator)


class RequestIdStreamStreamInterceptor(grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]  # grpc ships no type hints
    """Adds ``x-request-id`` to bidirectional calls."""

    async def intercept_stream_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(_with_request_id(client_call_details), request_iterator)


def request_id_client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """One request-id interceptor per call kind, for ``grpc.aio.*_channel(interceptors=)``.

    grpc.aio files each interceptor under the first call kind it implements, so one
    object cannot serve all four; hence four small classes.
    """
    return [
        RequestIdUnaryUnaryInterceptor(),
        RequestIdUnaryStreamInterceptor(),
        RequestIdStreamUnaryInterceptor(),
        RequestIdStreamStreamInterceptor(),
    ]
