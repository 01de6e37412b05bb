"""The one Ollama adapter of the project: typed calls over one pooled ``httpx.AsyncClient``.

Only the handful of calls the services need (chat, show, ps, tags, version, ping, preload,
unload) with explicit timeouts, and every failure mapped to one error class in one place.
The official ``ollama`` package is not used in production: it has no default timeout and
raises three unrelated kinds of exception (its own ``ResponseError``, the built-in
``ConnectionError`` and raw httpx errors).

Usage::

    client = OllamaClient("http://127.0.0.1:11434", timeout_s=120.0)
    reply = await client.chat(
        ChatRequest(
            model="llava",
            messages=[ChatMessage(role="user", content="Describe it.", images=[b64])],
            format=Reply.model_json_schema(),  # any pydantic model of the answer
            options={"temperature": 0.1, "seed": 42, "num_ctx": 4096},
            keep_alive="10m",
        ),
        timeout_s=30.0,
    )
    reply.message.content  # the JSON text the schema asked for
    await client.aclose()

Errors::

    OllamaError
     ├─ OllamaUnavailableError    connect error, timeout, 5xx/408/429, cut stream (retryable)
     ├─ OllamaModelNotFoundError  404: the model is not pulled; says `ollama pull <model>`
     ├─ OllamaBadRequestError     400 (or another 4xx): the request itself is wrong
     └─ OllamaResponseError       an `error` line inside a 200 stream, or a reply that is not
                                  what was asked (e.g. done_reason "length" with empty
                                  content); retryable unless it says otherwise

:func:`is_retryable` tells which of them are worth another attempt.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.common.metrics import BACKEND_CALLS_TOTAL

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "ChatResponse",
    "LocalModel",
    "ModelDetails",
    "OllamaBadRequestError",
    "OllamaClient",
    "OllamaError",
    "OllamaModelNotFoundError",
    "OllamaResponseError",
    "OllamaUnavailableError",
    "RunningModel",
    "ShowResponse",
    "ThinkLevel",
    "is_retryable",
    "normalize_model_name",
]

_log = logging.getLogger(__name__)

_M = TypeVar("_M", bound=BaseModel)

_CALLS_OK = BACKEND_CALLS_TOTAL.labels(backend="ollama", outcome="ok")
_CALLS_ERROR = BACKEND_CALLS_TOTAL.labels(backend="ollama", outcome="error")
_CALLS_TIMEOUT = BACKEND_CALLS_TOTAL.labels(backend="ollama", outcome="timeout")

# A model load can take minutes before the first byte; connecting to a live server never
# should. Separate budgets let a dead host fail in seconds without cutting off a slow load.
_CONNECT_TIMEOUT_S = 5.0
_POOL_TIMEOUT_S = 10.0
_WRITE_TIMEOUT_S = 30.0
_PING_TIMEOUT_S = 3.0


# --------------------------------------------------------------------------- errors


class OllamaError(Exception):
    """Base of every error the adapter raises.

    Attributes:
        message: What went wrong, for logs and status messages.
        status_code: The HTTP status Ollama answered with, when there was one.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class OllamaUnavailableError(OllamaError):
    """Ollama could not be reached or did not finish: connect error, timeout, 5xx, cut stream.

    Always worth a retry (with backoff, inside the caller's deadline).
    """


class OllamaModelNotFoundError(OllamaError):
    """The model is not pulled on this Ollama server (HTTP 404). Not retryable.

    Attributes:
        model: The model name as it was requested.
    """

    def __init__(self, model: str, detail: str = "", *, status_code: int | None = 404) -> None:
        text = f"Ollama has no model {model!r}: run `ollama pull {model}` on the Ollama host"
        if detail:
            text += f" (server said: {detail})"
        super().__init__(text, status_code=status_code)
        self.model = model


class OllamaBadRequestError(OllamaError):
    """Ollama refused the request itself (HTTP 400, or another 4xx). Not retryable."""


class OllamaResponseError(OllamaError):
    """Ollama answered 200 but the answer is unusable.

    Either the stream carried an ``{"error": …}`` line (a runner failure after the status
    was sent) or the reply is not what was asked (not JSON, ``done_reason: "length"`` with
    nothing generated).

    Attributes:
        retryable: Whether asking again may help (true unless the cause is deterministic).
    """

    def __init__(
        self, message: str, *, retryable: bool = True, status_code: int | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retryable = retryable


def is_retryable(exc: BaseException) -> bool:
    """Whether another attempt at the same Ollama call may succeed.

    Args:
        exc: Any exception raised around an Ollama call.

    Returns:
        True for :class:`OllamaUnavailableError` and a retryable
        :class:`OllamaResponseError`; false for everything else, including a missing model,
        a refused request and cancellation.
    """
    if isinstance(exc, OllamaUnavailableError):
        return True
    if isinstance(exc, OllamaResponseError):
        return exc.retryable
    return False


# --------------------------------------------------------------------------- models


class ChatMessage(BaseModel):
    """One message of a chat.

    | usage | example |
    |---|---|
    | instructions | ``ChatMessage(role="system", content="Answer in JSON.")`` |
    | a question about an image | ``ChatMessage(role="user", content="…", images=[b64])`` |
    | an earlier answer (re-ask) | ``ChatMessage(role="assistant", content=reply_text)`` |

    ``images`` holds plain base64 strings, never a ``data:`` URI (Ollama answers 400
    ``illegal base64 data`` to the prefix).
    """

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    images: list[str] | None = None
    thinking: str | None = None

    @field_validator("images")
    @classmethod
    def _plain_base64(cls, images: list[str] | None) -> list[str] | None:
        if images and any(image.startswith("data:") for image in images):
            raise ValueError("images must be plain base64 without a data: URI prefix")
        return images


ThinkLevel = Literal["low", "medium", "high", "max"]


class ChatRequest(BaseModel):
    """A ``POST /api/chat`` request.

    | field | meaning |
    |---|---|
    | ``format`` | ``"json"`` or a JSON-Schema object (pydantic's ``model_json_schema()``) |
    | ``options`` | sampling and load-time options; a changed ``num_ctx``… reloads the model |
    | ``keep_alive`` | ``"10m"``; ``-1`` forever; ``0`` unload after the call; ``"30"`` = 30 s |
    | ``think`` | ``True``/``False`` or a level; never ``True`` for a model without thinking (400) |
    | ``stream`` | how the adapter reads the reply; the result is the same |
    """

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    messages: list[ChatMessage]
    format: dict[str, Any] | Literal["json"] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    keep_alive: str | int | None = None
    think: bool | ThinkLevel | None = None
    stream: bool = True

    @field_validator("keep_alive")
    @classmethod
    def _keep_alive_has_unit(cls, value: str | int | None) -> str | int | None:
        # Ollama rejects "10" (a duration string without a unit) with 400, yet settings read
        # from the environment arrive as strings: a bare number means seconds, as Ollama's
        # own numeric form does.
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        return value

    def to_json(self) -> dict[str, Any]:
        """The request body as Ollama expects it (unset fields left out)."""
        body = self.model_dump(exclude_none=True)
        body["messages"] = [m.model_dump(exclude_none=True) for m in self.messages]
        return body

    def for_log(self) -> dict[str, Any]:
        """The request body with each image replaced by its size, for logs."""
        body = self.to_json()
        for message in body["messages"]:
            if "images" in message:
                message["images"] = [f"<{len(image)} base64 chars>" for image in message["images"]]
        return body


class ChatResponse(BaseModel):
    """The assembled reply of ``/api/chat`` (streamed deltas joined, final metrics kept).

    Durations are integer nanoseconds as Ollama sends them; every metric may be absent.
    ``load_duration`` tells a cold call (model loaded) from a warm one.
    """

    model_config = ConfigDict(extra="ignore")

    model: str = ""
    created_at: str | None = None
    message: ChatMessage = Field(default_factory=lambda: ChatMessage(role="assistant"))
    done: bool = False
    done_reason: str | None = None
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None

    @property
    def content(self) -> str:
        """The answer text (``message.content``)."""
        return self.message.content

    @property
    def thinking(self) -> str:
        """The thinking trace (``message.thinking``), empty for non-thinking models."""
        return self.message.thinking or ""

    def metrics_for_log(self) -> dict[str, Any]:
        """Done reason, token counts and durations in milliseconds, for logs."""

        def ms(ns: int | None) -> float | None:
            return None if ns is None else round(ns / 1e6, 1)

        return {
            "done_reason": self.done_reason,
            "total_ms": ms(self.total_duration),
            "load_ms": ms(self.load_duration),
            "prompt_eval_count": self.prompt_eval_count,
            "prompt_eval_ms": ms(self.prompt_eval_duration),
            "eval_count": self.eval_count,
            "eval_ms": ms(self.eval_duration),
        }


class ModelDetails(BaseModel):
    """``details`` of a model in ``/api/show``, ``/api/tags`` and ``/api/ps``."""

    model_config = ConfigDict(extra="ignore")

    parent_model: str = ""
    format: str = ""
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""


class ShowResponse(BaseModel):
    """What ``POST /api/show`` tells about a model (the fields the services read)."""

    model_config = ConfigDict(extra="ignore")

    capabilities: list[str] = Field(default_factory=list)
    details: ModelDetails = Field(default_factory=ModelDetails)
    model_info: dict[str, Any] = Field(default_factory=dict)
    projector_info: dict[str, Any] | None = None
    parameters: str = ""
    template: str = ""
    modified_at: str | None = None

    def has_capability(self, capability: str) -> bool:
        """Whether the model has ``capability`` ("vision", "thinking", "tools", …).

        Servers older than the ``capabilities`` field never list one; for "vision" a
        multimodal projector is then taken as the sign.
        """
        if self.capabilities:
            return capability in self.capabilities
        return capability == "vision" and bool(self.projector_info)


class LocalModel(BaseModel):
    """One pulled model, as ``GET /api/tags`` lists it."""

    model_config = ConfigDict(extra="ignore")

    name: str
    model: str = ""
    modified_at: str | None = None
    size: int = 0
    digest: str = ""
    details: ModelDetails = Field(default_factory=ModelDetails)
    capabilities: list[str] | None = None


class RunningModel(BaseModel):
    """One loaded model, as ``GET /api/ps`` lists it.

    ``size`` is the resident bytes, ``size_vram`` the part on the GPU (``size_vram <
    size`` means a partial, slow CPU offload).
    """

    model_config = ConfigDict(extra="ignore")

    name: str
    model: str = ""
    size: int = 0
    size_vram: int = 0
    digest: str = ""
    details: ModelDetails = Field(default_factory=ModelDetails)
    expires_at: str | None = None
    context_length: int | None = None


def normalize_model_name(name: str) -> str:
    """``LLaVA`` → ``llava:latest``: the form ``/api/ps`` and ``/api/tags`` list names in."""
    name = name.strip().lower()
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


# --------------------------------------------------------------------------- client


class OllamaClient:
    """Typed async client of one Ollama server over one pooled HTTP client.

    Args:
        base_url: The server, e.g. ``http://127.0.0.1:11434``.
        timeout_s: Default budget of one call, connection to last byte; a call may pass
            its own (e.g. what is left of the gRPC deadline).
        client: An ``httpx.AsyncClient`` to use instead of the adapter's own (tests pass
            one with ``httpx.MockTransport``); the adapter never closes a client it was given.
        max_connections: Pool size; requests beyond it wait for a free connection.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 120.0,
        client: httpx.AsyncClient | None = None,
        max_connections: int = 16,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=_timeouts(timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            # Ollama sits on the same host or network; a proxy taken from the environment
            # would carry image bytes through it (and break loopback in tests).
            trust_env=False,
        )

    async def aclose(self) -> None:
        """Close the pooled connections (only those of a client the adapter created)."""
        if self._owns_client:
            await self._client.aclose()

    # ----------------------------------------------------------------- chat

    async def chat(self, request: ChatRequest, *, timeout_s: float | None = None) -> ChatResponse:
        """Send ``/api/chat`` and return the whole answer.

        A streamed reply is read line by line: each line is checked for an ``error``
        object, content and thinking deltas are joined, and the final line's
        ``done_reason`` and metrics are kept. A stream that ends without its ``done`` line
        was cut off.

        Args:
            request: The chat request.
            timeout_s: Budget of this call; the client's default when None.

        Returns:
            The assembled reply.

        Raises:
            OllamaUnavailableError: Unreachable, timed out, 5xx, or the stream was cut.
            OllamaModelNotFoundError: The model is not pulled (404).
            OllamaBadRequestError: Ollama refused the request (400).
            OllamaResponseError: An error line in the stream, an unreadable line, or
                ``done_reason: "length"`` before any content was generated.
        """
        budget = self._budget(timeout_s)
        async with (
            self._call("chat", budget),
            self._client.stream(
                "POST",
                f"{self.base_url}/api/chat",
                json=request.to_json(),
                timeout=_timeouts(budget),
            ) as response,
        ):
            if response.status_code != 200:
                await response.aread()
                raise _status_error(response, model=request.model)
            if request.stream:
                reply = await _read_stream(response)
            else:
                await response.aread()
                reply = _reply_from_line(response.text)
            _check_reply(request, reply)
        return reply

    async def preload(
        self,
        model: str,
        *,
        keep_alive: str | int | None = None,
        options: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> ChatResponse:
        """Load ``model`` without generating (``messages: []``); returns when it is loaded.

        Pass the same load-time ``options`` (``num_ctx``…) the later calls will use, or
        the first real call reloads the model.
        """
        request = ChatRequest(
            model=model, messages=[], keep_alive=keep_alive, options=dict(options or {})
        )
        return await self.chat(request, timeout_s=timeout_s)

    async def unload(self, model: str, *, timeout_s: float | None = None) -> None:
        """Ask Ollama to unload ``model`` (``messages: []`` with ``keep_alive: 0``).

        Ollama answers at once but frees the memory asynchronously, after in-flight calls
        end: follow with :meth:`wait_unloaded` before handing the GPU to another program.

        Raises:
            OllamaModelNotFoundError: The model is not pulled.
            OllamaUnavailableError: Ollama could not be reached.
        """
        await self.chat(
            ChatRequest(model=model, messages=[], keep_alive=0, stream=False),
            timeout_s=timeout_s,
        )

    async def wait_unloaded(
        self, models: Iterable[str], *, timeout_s: float = 30.0, poll_s: float = 0.25
    ) -> bool:
        """Poll ``/api/ps`` until none of ``models`` is loaded.

        The driver releases VRAM shortly (0.5–1.5 s) after a model leaves the list; a
        caller about to load another GPU program may want a short margin on top.

        Args:
            models: Model names as requested (``llava`` matches ``llava:latest``).
            timeout_s: How long to wait in all.
            poll_s: Interval between polls.

        Returns:
            True when all are gone, False when some were still loaded at the timeout.

        Raises:
            OllamaUnavailableError: ``/api/ps`` could not be read.
        """
        wanted = {normalize_model_name(m) for m in models}
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            running = await self.ps(timeout_s=max(remaining, _PING_TIMEOUT_S))
            loaded = {normalize_model_name(n) for m in running for n in (m.name, m.model) if n}
            if not wanted & loaded:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _log.warning(
                    "models still loaded after %.1f s",
                    timeout_s,
                    extra={"models": sorted(wanted & loaded)},
                )
                return False
            await asyncio.sleep(min(poll_s, remaining))

    # ----------------------------------------------------------------- inspection

    async def show(self, model: str, *, timeout_s: float | None = None) -> ShowResponse:
        """``POST /api/show``: capabilities, details and parameters of ``model``.

        Raises:
            OllamaModelNotFoundError: The model is not pulled.
            OllamaUnavailableError: Ollama could not be reached.
        """
        body = await self._json("POST", "/api/show", {"model": model}, model, timeout_s)
        return _parse(ShowResponse, body, "/api/show")

    async def ps(self, *, timeout_s: float | None = None) -> list[RunningModel]:
        """``GET /api/ps``: the models loaded now (empty when none)."""
        body = await self._json("GET", "/api/ps", None, None, timeout_s)
        return _parse_models(RunningModel, body, "/api/ps")

    async def tags(self, *, timeout_s: float | None = None) -> list[LocalModel]:
        """``GET /api/tags``: the models pulled on the server."""
        body = await self._json("GET", "/api/tags", None, None, timeout_s)
        return _parse_models(LocalModel, body, "/api/tags")

    async def version(self, *, timeout_s: float | None = None) -> str:
        """``GET /api/version``: the server's version, e.g. ``"0.12.6"``."""
        body = await self._json("GET", "/api/version", None, None, timeout_s)
        version = body.get("version")
        if not isinstance(version, str):
            raise OllamaResponseError(f"/api/version answered without a version: {body!r}")
        return version

    async def ping(self, *, timeout_s: float = _PING_TIMEOUT_S) -> bool:
        """Whether the server answers ``GET /`` with 200; never raises an Ollama error."""
        try:
            async with self._call("ping", timeout_s):
                response = await self._client.get(f"{self.base_url}/", timeout=_timeouts(timeout_s))
        except OllamaError:
            return False
        return response.status_code == 200

    # ----------------------------------------------------------------- internals

    def _budget(self, timeout_s: float | None) -> float:
        budget = self.timeout_s if timeout_s is None else timeout_s
        if budget <= 0:
            raise OllamaUnavailableError("no time left for the Ollama call")
        return budget

    @asynccontextmanager
    async def _call(self, what: str, budget: float) -> AsyncIterator[None]:
        """Bound the call by ``budget``, map transport failures, count the outcome."""
        try:
            async with asyncio.timeout(budget):
                yield
        except TimeoutError as exc:
            _CALLS_TIMEOUT.inc()
            raise OllamaUnavailableError(
                f"Ollama {what} at {self.base_url} timed out after {budget:.1f} s"
            ) from exc
        except httpx.TimeoutException as exc:
            _CALLS_TIMEOUT.inc()
            raise OllamaUnavailableError(
                f"Ollama {what} at {self.base_url} timed out ({type(exc).__name__})"
            ) from exc
        except httpx.ConnectError as exc:
            _CALLS_ERROR.inc()
            raise OllamaUnavailableError(
                f"cannot connect to Ollama at {self.base_url}: {exc}"
            ) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            _CALLS_ERROR.inc()
            raise OllamaUnavailableError(
                f"Ollama {what} at {self.base_url} broke off mid-reply: {exc}"
            ) from exc
        except httpx.TransportError as exc:
            _CALLS_ERROR.inc()
            raise OllamaUnavailableError(
                f"Ollama {what} at {self.base_url} failed: {type(exc).__name__}: {exc}"
            ) from exc
        except OllamaError:
            _CALLS_ERROR.inc()
            raise
        else:
            _CALLS_OK.inc()

    async def _json(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        model: str | None,
        timeout_s: float | None,
    ) -> dict[str, Any]:
        budget = self._budget(timeout_s)
        async with self._call(path, budget):
            response = await self._client.request(
                method, f"{self.base_url}{path}", json=body, timeout=_timeouts(budget)
            )
            if response.status_code != 200:
                raise _status_error(response, model=model)
            try:
                data = response.json()
            except ValueError as exc:
                raise OllamaResponseError(f"{path} answered with invalid JSON: {exc}") from exc
            if not isinstance(data, dict):
                raise OllamaResponseError(
                    f"{path} answered with {type(data).__name__}, not an object"
                )
        return data


def _timeouts(budget: float) -> httpx.Timeout:
    """httpx timeouts for a call of ``budget`` seconds (read = gap between two chunks)."""
    return httpx.Timeout(
        budget,
        connect=min(_CONNECT_TIMEOUT_S, budget),
        pool=min(_POOL_TIMEOUT_S, budget),
        write=min(_WRITE_TIMEOUT_S, budget),
    )


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:500]
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return response.text.strip()[:500]


def _status_error(response: httpx.Response, *, model: str | None) -> OllamaError:
    """Map a non-200 answer to its error class (on the status, never on the text)."""
    status = response.status_code
    detail = _error_text(response)
    path = response.request.url.path
    if status == 404 and model is not None:
        return OllamaModelNotFoundError(model, detail, status_code=status)
    if status >= 500 or status in (408, 429):
        return OllamaUnavailableError(
            f"Ollama {path} answered {status}: {detail}", status_code=status
        )
    if 400 <= status < 500:
        return OllamaBadRequestError(
            f"Ollama {path} refused the request ({status}): {detail}", status_code=status
        )
    return OllamaResponseError(
        f"Ollama {path} answered unexpected status {status}: {detail}",
        retryable=False,
        status_code=status,
    )


def _reply_from_line(line: str) -> ChatResponse:
    """Parse one reply object (a stream line or a whole non-streamed body)."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise OllamaResponseError(f"Ollama sent a line that is not JSON: {line[:200]!r}") from exc
    if not isinstance(data, dict):
        raise OllamaResponseError(f"Ollama sent a line that is not an object: {line[:200]!r}")
    if "error" in data:
        # A runner failure after the 200 was sent: it comes as a line, not a status.
        raise OllamaResponseError(f"Ollama failed mid-reply: {data['error']}", status_code=200)
    try:
        return ChatResponse.model_validate(data)
    except ValidationError as exc:
        raise OllamaResponseError(f"Ollama sent an unexpected reply line: {exc}") from exc


async def _read_stream(response: httpx.Response) -> ChatResponse:
    content: list[str] = []
    thinking: list[str] = []
    last: ChatResponse | None = None
    async for line in response.aiter_lines():
        if not line.strip():
            continue
        last = _reply_from_line(line)
        content.append(last.message.content)
        thinking.append(last.message.thinking or "")
        if last.done:
            break
    if last is None or not last.done:
        raise OllamaUnavailableError("Ollama's reply stream ended before its done line")
    message = last.message.model_copy(
        update={"content": "".join(content), "thinking": "".join(thinking) or None}
    )
    return last.model_copy(update={"message": message})


def _check_reply(request: ChatRequest, reply: ChatResponse) -> None:
    """Refuse a 200 reply that cannot be what was asked."""
    if not request.messages:  # a preload or unload: nothing is generated
        return
    if not reply.content.strip():
        why = (
            "hit the token limit before answering (num_predict or num_ctx too small)"
            if reply.done_reason == "length"
            else f"answered nothing (done_reason {reply.done_reason!r})"
        )
        raise OllamaResponseError(f"{request.model} {why}")


def _parse(model: type[_M], body: dict[str, Any], path: str) -> _M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise OllamaResponseError(f"{path} answered an unexpected shape: {exc}") from exc


def _parse_models(model: type[_M], body: dict[str, Any], path: str) -> list[_M]:
    items = body.get("models") or []
    if not isinstance(items, list):
        raise OllamaResponseError(f"{path} answered an unexpected shape: {body!r}")
    return [_parse(model, item, path) for item in items]
