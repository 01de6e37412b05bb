"""Caller authentication, rights and per-caller limits at the gateway.

Callers send ``authorization: Bearer <token>`` metadata. The gateway knows no tokens,
only their SHA-256 digests, listed in a token file (``GATEWAY_AUTH_TOKENS_FILE``; mount it
as a Docker or Kubernetes secret), one caller token per line::

    # sha256(token) in hex                                            caller     rights
    e9ed9582e6065884cff61660315e140b65bf7838232bc74df010d68714f3da10 studio-web generate,plan
    2284eb694dd07dd9e3da2494b38aa4e6942a99c94e2fd1eaef906620bbe43121 reviewer   plan

- **digest**: 64 hex digits, ``sha256(token)`` of the token's UTF-8 bytes, e.g.
  ``printf %s "$TOKEN" | sha256sum``. A leaked file grants nothing.
- **caller**: a name for logs and limits (letters, digits, ``._@-``). Several lines may
  share a caller: that is how a token is rotated, the old and new token both valid
  until the old line is deleted. The caller's limits are counted across its tokens.
- **rights**: comma-separated method names in lower case (``generate``, ``plan``), or
  ``*`` for every method.
- **limits** (optional, after the rights): ``max_concurrent=N`` and
  ``variants_per_minute=N`` override the defaults for this caller (0 = no limit), e.g.
  ``... batch-jobs generate max_concurrent=4 variants_per_minute=120``; every line of
  one caller must agree.
- Blank lines and ``#`` comments are ignored.

The file is re-read at most every ``GATEWAY_AUTH_RELOAD_INTERVAL_S`` seconds and swapped
in when its content changed, so tokens are added, rotated and revoked without a restart.
A file that lists no token (empty, or only comments) is never taken: a gateway nobody
may call is a mistake, and an empty file is what a secret looks like half-written. So
a missing, malformed or empty file at boot stops the gateway naming the variable; a
file that becomes unreadable, malformed or empty later is logged as an error and
ignored, and the last good list stays in force. To shut every caller out, stop the
gateway (or list a token nobody holds).

Outcomes, each with ``google.rpc.ErrorInfo`` (domain ``imagegen``):

    no token, or not a Bearer token     UNAUTHENTICATED     reason TOKEN_MISSING
    a token not in the file             UNAUTHENTICATED     reason TOKEN_INVALID
    a token without the method's right  PERMISSION_DENIED   reason RIGHT_MISSING
    over the caller's limits            RESOURCE_EXHAUSTED  + RetryInfo (gateway.limits)

Every refusal reaches the access log with its reason, and with the caller's name once
the token is known (``"caller": "studio-web"``), as do the calls served.

A presented token is hashed and compared with every digest in the file using
``hmac.compare_digest``, never stopping at a match, so the time taken does not reveal
how close a guess came. Health (``grpc.health.v1``) is open by default so probes need
no token; reflection needs a valid token unless opened; neither needs a right.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
import grpc.aio
from pydantic_settings import BaseSettings

from gateway.limits import CallAdmission, CallerLimiter, CallerLimits, current_admission
from services.common.errors import ImagegenError
from services.common.interceptors import annotate_call
from services.common.logs import get_logger
from services.common.settings import env_name

__all__ = [
    "HEALTH_SERVICE",
    "REFLECTION_SERVICES",
    "AuthSettings",
    "Caller",
    "CallerAuthInterceptor",
    "PermissionDeniedError",
    "TokenFile",
    "TokenFileError",
    "UnauthenticatedError",
    "auth_interceptors",
    "current_caller",
    "hash_token",
    "parse_token_file",
    "right_for",
]

_log = get_logger(__name__)

HEALTH_SERVICE = "grpc.health.v1.Health"
REFLECTION_SERVICES = frozenset(
    {"grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"}
)

ALL_RIGHTS = "*"
_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_CALLER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_RIGHT = re.compile(r"[a-z][a-z0-9_]*")
_LIMIT_KEYS = frozenset({"max_concurrent", "variants_per_minute"})
_BEARER = re.compile(r"bearer\s+(\S+)\s*", re.IGNORECASE)


class UnauthenticatedError(ImagegenError):
    """The caller sent no valid token (UNAUTHENTICATED)."""

    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class PermissionDeniedError(ImagegenError):
    """The caller's token lacks the right the method needs (PERMISSION_DENIED)."""

    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class TokenFileError(ValueError):
    """The token file cannot be read or a line of it is malformed."""


@dataclass(frozen=True)
class Caller:
    """An authenticated caller.

    Attributes:
        name: The caller's name from the token file.
        rights: Lower-case method names it may call, or ``{"*"}``.
        limits: Its own limits, or ``None`` for the gateway's defaults.
    """

    name: str
    rights: frozenset[str]
    limits: CallerLimits | None = None

    def may(self, right: str) -> bool:
        """Whether the caller holds ``right`` (or every right)."""
        return ALL_RIGHTS in self.rights or right in self.rights


current_caller: ContextVar[Caller | None] = ContextVar("current_caller", default=None)
"""The authenticated caller of the call being handled; ``None`` for open methods."""


def hash_token(token: str) -> str:
    """The token file's digest of ``token``: SHA-256 of its UTF-8 bytes, lower-case hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def right_for(method: str) -> str:
    """The right a full method name needs: its method name in lower case.

    ``/imagegen.gateway.v1.GatewayService/Generate`` needs ``generate``.
    """
    return method.rsplit("/", 1)[-1].lower()


def parse_token_file(text: str, *, source: str = "token file") -> list[tuple[bytes, Caller]]:
    """Parses a token file (format in the module doc).

    Args:
        text: The file's content.
        source: How to name the file in errors.

    Returns:
        ``(sha256 digest, caller)`` per token line, in file order.

    Raises:
        TokenFileError: A malformed line (named by number), a digest listed twice, one
            caller with different limits on different lines, or no token line at all.
    """
    entries: list[tuple[bytes, Caller]] = []
    seen: set[bytes] = set()
    limits_of: dict[str, CallerLimits | None] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}, line {number}"
        fields = line.split()
        if len(fields) < 3:
            raise TokenFileError(f"{where}: expected 'sha256hex caller rights [limits]'")
        digest_hex, name, rights_field, *limit_fields = fields
        if not _DIGEST.fullmatch(digest_hex):
            raise TokenFileError(f"{where}: the first field must be 64 hex digits (sha256)")
        if not _CALLER.fullmatch(name):
            raise TokenFileError(f"{where}: bad caller name {name!r}")
        rights = frozenset(rights_field.split(","))
        bad = sorted(r for r in rights if r != ALL_RIGHTS and not _RIGHT.fullmatch(r))
        if bad:
            raise TokenFileError(f"{where}: bad rights {bad}; use e.g. generate,plan or *")
        limits = _parse_limits(limit_fields, where)
        if name in limits_of and limits_of[name] != limits:
            raise TokenFileError(f"{where}: caller {name!r} has other limits on another line")
        limits_of[name] = limits
        digest = bytes.fromhex(digest_hex)
        if digest in seen:
            raise TokenFileError(f"{where}: this token digest is listed twice")
        seen.add(digest)
        entries.append((digest, Caller(name, rights, limits)))
    if not entries:
        raise TokenFileError(f"{source}: lists no token; a gateway nobody may call is a mistake")
    return entries


def _parse_limits(fields: Sequence[str], where: str) -> CallerLimits | None:
    if not fields:
        return None
    values: dict[str, int] = {}
    for field in fields:
        key, sep, value = field.partition("=")
        if not sep or key not in _LIMIT_KEYS or not value.isdigit():
            raise TokenFileError(
                f"{where}: bad limit {field!r}; use max_concurrent=N or variants_per_minute=N"
            )
        values[key] = int(value)
    return CallerLimits(**values)


class TokenFile:
    """The callers of a token file, re-read when it changes.

    Args:
        path: The token file.
        reload_interval_s: Least seconds between two reads of the file; 0 reads it
            before every authentication.
        clock: Monotonic seconds; injectable for tests.

    Raises:
        TokenFileError: The file cannot be read or is malformed (at construction only).
    """

    def __init__(
        self,
        path: Path,
        *,
        reload_interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._interval = reload_interval_s
        self._clock = clock
        self._content = self._read()
        self._entries = parse_token_file(self._content.decode(), source=str(path))
        self._next_check = clock() + reload_interval_s
        _log.info("caller tokens loaded", extra={"tokens_file": str(path), **self._summary()})

    def _read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as e:
            raise TokenFileError(f"{self.path}: cannot read: {e.strerror or e}") from e

    def _summary(self) -> dict[str, int]:
        return {"tokens": len(self._entries), "callers": len({c.name for _, c in self._entries})}

    @property
    def callers(self) -> list[Caller]:
        """The callers now in force, one per token line."""
        self.refresh()
        return [caller for _, caller in self._entries]

    def refresh(self) -> None:
        """Re-reads the file if the reload interval has passed and swaps in a changed list.

        A file that cannot be read or parsed, or lists no token, is logged as an error
        and ignored: the previous tokens stay in force.
        """
        now = self._clock()
        if now < self._next_check:
            return
        self._next_check = now + self._interval
        try:
            content = self._read()
            if content == self._content:
                return
            entries = parse_token_file(content.decode(), source=str(self.path))
        except (TokenFileError, UnicodeDecodeError) as e:
            _log.error("caller tokens not reloaded; the previous ones stay in force: %s", e)
            return
        self._content, self._entries = content, entries
        _log.info(
            "caller tokens reloaded", extra={"tokens_file": str(self.path), **self._summary()}
        )

    def authenticate(self, token: str) -> Caller | None:
        """The caller whose token this is, or ``None``.

        Every digest is compared, in constant time each, whatever matches.
        """
        self.refresh()
        digest = hashlib.sha256(token.encode()).digest()
        found: Caller | None = None
        for known, caller in self._entries:
            if hmac.compare_digest(known, digest):
                found = caller
        return found


Behaviour = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any]


class CallerAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc ships no type hints
    """Authenticates every call, checks the method's right and opens the caller's limits.

    Install it after the shared interceptor (``GrpcServer(..., interceptors=[...])``) so
    refusals are logged and counted like any other status. A served call runs with
    :data:`current_caller` set and, with a limiter, a :class:`~gateway.limits.CallAdmission`
    that the pipeline charges through :func:`~gateway.limits.admit` once the request is
    valid; its slot is given back when the call ends, however it ends.

    Args:
        tokens: The token file.
        limiter: Per-caller limits; ``None`` = no limits.
        open_health: Let health checks through without a token.
        open_reflection: Let reflection through without a token.
    """

    def __init__(
        self,
        tokens: TokenFile,
        *,
        limiter: CallerLimiter | None = None,
        open_health: bool = True,
        open_reflection: bool = False,
    ) -> None:
        self.tokens = tokens
        self.limiter = limiter
        self._open_services = ({HEALTH_SERVICE} if open_health else set()) | (
            set(REFLECTION_SERVICES) if open_reflection else set()
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED itself
            return handler
        method: str = handler_call_details.method
        service = method.lstrip("/").partition("/")[0]
        if service in self._open_services:
            return handler
        token = _bearer_token(handler_call_details.invocation_metadata)
        if token is None:
            return _refusal(
                handler,
                UnauthenticatedError(
                    "this call needs 'authorization: Bearer <token>' metadata",
                    reason="TOKEN_MISSING",
                ),
            )
        caller = self.tokens.authenticate(token)
        if caller is None:
            return _refusal(
                handler,
                UnauthenticatedError("the bearer token is not valid", reason="TOKEN_INVALID"),
            )
        # Health and reflection (when not open) need a valid token but no right.
        if service != HEALTH_SERVICE and service not in REFLECTION_SERVICES:
            right = right_for(method)
            if not caller.may(right):
                return _refusal(
                    handler,
                    PermissionDeniedError(
                        f"caller {caller.name!r} lacks the right {right!r} for {method}",
                        reason="RIGHT_MISSING",
                        metadata={"caller": caller.name, "right": right},
                    ),
                    caller,
                )
        return _map_behaviour(handler, lambda b: self._wrap(b, caller))

    def _wrap(self, behaviour: Behaviour, caller: Caller) -> Behaviour:
        """Sets :data:`current_caller` and the call's admission around the behaviour.

        The wrapper keeps the behaviour's kind (async generator or coroutine), since
        grpc.aio dispatches on it. Synchronous behaviours, which grpc.aio runs in a
        thread pool, are returned as they are: none of the gateway's methods is one.
        """

        def enter() -> CallAdmission | None:
            current_caller.set(caller)
            annotate_call(caller=caller.name)
            admission = (
                CallAdmission(self.limiter, caller.name, caller.limits)
                if self.limiter is not None
                else None
            )
            current_admission.set(admission)
            return admission

        if inspect.isasyncgenfunction(behaviour):

            async def streaming(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                admission = enter()
                try:
                    async for response in behaviour(request, context):
                        yield response
                finally:
                    if admission is not None:
                        admission.release()

            return streaming

        if inspect.iscoroutinefunction(behaviour):

            async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                admission = enter()
                try:
                    return await behaviour(request, context)
                finally:
                    if admission is not None:
                        admission.release()

            return unary

        return behaviour


def _bearer_token(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            match = _BEARER.fullmatch(value)
            return match.group(1) if match else None
    return None


def _refusal(
    handler: grpc.RpcMethodHandler, error: ImagegenError, caller: Caller | None = None
) -> grpc.RpcMethodHandler:
    """A handler of the same kind as ``handler`` that runs nothing and raises ``error``.

    The shared interceptor turns the error into its status and logs it with its reason
    (and the caller's name, when the token was valid).
    """

    async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if caller is not None:
            annotate_call(caller=caller.name)
        raise error

    return _map_behaviour(handler, lambda _: refuse)


def _map_behaviour(
    handler: grpc.RpcMethodHandler, change: Callable[[Behaviour], Behaviour]
) -> grpc.RpcMethodHandler:
    des, ser = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(change(handler.unary_unary), des, ser)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(change(handler.unary_stream), des, ser)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(change(handler.stream_unary), des, ser)
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(change(handler.stream_stream), des, ser)
    return handler


class AuthSettings(Protocol):
    """The gateway settings :func:`auth_interceptors` reads (fields of ``GatewaySettings``)."""

    @property
    def auth_tokens_file(self) -> Path | None: ...
    @property
    def auth_reload_interval_s(self) -> float: ...
    @property
    def auth_open_health(self) -> bool: ...
    @property
    def auth_open_reflection(self) -> bool: ...
    @property
    def limit_concurrent_generations(self) -> int: ...
    @property
    def limit_variants_per_minute(self) -> int: ...


def auth_interceptors(
    settings: AuthSettings, *, clock: Callable[[], float] = time.monotonic
) -> list[grpc.aio.ServerInterceptor]:
    """The gateway's caller interceptor, or none when no token file is configured.

    Args:
        settings: The gateway settings.
        clock: Monotonic seconds for token reloads and limits; injectable for tests.

    Returns:
        ``[CallerAuthInterceptor]`` with the settings' limits, or ``[]`` when
        ``auth_tokens_file`` is unset (every caller is let in, without limits).

    Raises:
        TokenFileError: The token file cannot be read or is malformed; the message
            names the environment variable.
    """
    path = settings.auth_tokens_file
    if path is None:
        _log.warning("caller authentication is off: no token file configured")
        return []
    try:
        tokens = TokenFile(path, reload_interval_s=settings.auth_reload_interval_s, clock=clock)
    except TokenFileError as e:
        variable = (
            env_name(type(settings), "auth_tokens_file")
            if isinstance(settings, BaseSettings)
            else "auth_tokens_file"
        )
        raise TokenFileError(f"{variable}: {e}") from e
    limiter = CallerLimiter(
        CallerLimits(
            max_concurrent=settings.limit_concurrent_generations,
            variants_per_minute=settings.limit_variants_per_minute,
        ),
        clock=clock,
    )
    return [
        CallerAuthInterceptor(
            tokens,
            limiter=limiter,
            open_health=settings.auth_open_health,
            open_reflection=settings.auth_open_reflection,
        )
    ]
