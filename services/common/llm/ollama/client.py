"""The Ollama adapter: the chat-model protocol over Ollama's own API (``/api/*``).

Typed calls over one pooled ``httpx.AsyncClient`` with explicit timeouts, every failure
mapped to one error of :mod:`services.common.llm.errors` in one place. The official
``ollama`` package is not used in production: it has no default timeout and raises three
unrelated kinds of exception (its own ``ResponseError``, the built-in ``ConnectionError``
and raw httpx errors).

Usage::

    client = OllamaClient("http://127.0.0.1:11434", timeout_s=120.0)
    reply = await client.chat(request, timeout_s=30.0)  # a services.common.llm.ChatRequest
    info = await client.inspect("llava", timeout_s=5.0)  # /api/show: capabilities
    await client.release("llava", timeout_s=60.0)  # keep_alive 0, then /api/ps until gone
    await client.aclose()

Beyond the protocol it offers Ollama's own calls (``api_chat``, ``show``, ``ps``, ``tags``,
``version``, ``ping``, ``preload``, ``unload``, ``wait_unloaded``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from services.common.llm.chat import (
    ChatRequest,
    ChatResponse,
    ModelInfo,
    Release,
)
from services.common.llm.errors import (
    ModelError,
    ModelNotFoundError,
    ModelRequestError,
    ModelUnavailableError,
    UnusableAnswerError,
)
from services.common.llm.ollama.wire import (
    LocalModel,
    OllamaChatRequest,
    OllamaChatResponse,
    OllamaMessage,
    RunningModel,
    ShowResponse,
    normalize_model_name,
)
from services.common.llm.transport import HttpBackend, timeouts

__all__ = ["OllamaClient"]

_log = logging.getLogger(__name__)

_M = TypeVar("_M", bound=BaseModel)

_PING_TIMEOUT_S = 3.0


class OllamaClient(HttpBackend):
    """Typed async client of one Ollama server; implements :class:`ChatModel`.

    Args:
        base_url: The server, e.g. ``http://127.0.0.1:11434``.
        timeout_s: Default budget of one call, connection to last byte.
        client: An ``httpx.AsyncClient`` to use instead of the adapter's own (tests);
            never closed by the adapter.
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
        super().__init__(
            base_url,
            backend="ollama",
            name="Ollama",
            timeout_s=timeout_s,
            client=client,
            max_connections=max_connections,
        )

    # ----------------------------------------------------------------- the protocol

    async def chat(self, request: ChatRequest, *, timeout_s: float | None = None) -> ChatResponse:
        """Asks through ``/api/chat`` (streamed) and returns the whole answer.

        Raises:
            ModelUnavailableError: Unreachable, timed out, 5xx, or the stream was cut.
            ModelNotFoundError: The model is not pulled (404).
            ModelRequestError: Ollama refused the request (400).
            UnusableAnswerError: An error line in the stream, an unreadable line, or
                ``done_reason: "length"`` before any content was generated.
        """
        reply = await self.api_chat(to_ollama(request), timeout_s=timeout_s)
        return ChatResponse(
            content=reply.content,
            reasoning=reply.thinking,
            model=reply.model,
            finish_reason=reply.done_reason,
            prompt_tokens=reply.prompt_eval_count,
            completion_tokens=reply.eval_count,
            timings=reply.timings_ms(),
        )

    async def inspect(self, model: str, *, timeout_s: float) -> ModelInfo:
        """``/api/show``: the model's capabilities (a projector counts as ``vision``)."""
        show = await self.show(model, timeout_s=timeout_s)
        return ModelInfo(model=model, capabilities=show.capability_list())

    async def server_version(self, *, timeout_s: float) -> str:
        """``/api/version``."""
        return await self.version(timeout_s=timeout_s)

    async def release(self, model: str, *, timeout_s: float) -> Release:
        """Unloads ``model`` if ``/api/ps`` lists it, then waits until it has left.

        Ollama loads it again by itself on the next call.
        """
        budget = self._budget(timeout_s)
        deadline = time.monotonic() + budget
        wanted = normalize_model_name(model)
        running = await self.ps(timeout_s=budget)
        if not any(wanted in _names(m) for m in running):
            return Release()
        await self.unload(model, timeout_s=max(deadline - time.monotonic(), 0.001))
        gone = await self.wait_unloaded([model], timeout_s=max(deadline - time.monotonic(), 0.0))
        return Release(released=(model,)) if gone else Release(still_loaded=(model,))

    # ----------------------------------------------------------------- Ollama's own calls

    async def api_chat(
        self, request: OllamaChatRequest, *, timeout_s: float | None = None
    ) -> OllamaChatResponse:
        """Send ``/api/chat`` as given and return the whole answer.

        A streamed reply is read line by line: each line is checked for an ``error``
        object, content and thinking deltas are joined, and the final line's
        ``done_reason`` and metrics are kept. A stream that ends without its ``done`` line
        was cut off.

        Raises:
            The errors of :meth:`chat`.
        """
        budget = self._budget(timeout_s)
        async with (
            self._call("chat", budget),
            self._client.stream(
                "POST",
                f"{self.base_url}/api/chat",
                json=request.to_json(),
                timeout=timeouts(budget),
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
    ) -> OllamaChatResponse:
        """Load ``model`` without generating (``messages: []``); returns when it is loaded.

        Pass the same load-time ``options`` (``num_ctx``…) the later calls will use, or
        the first real call reloads the model.
        """
        request = OllamaChatRequest(
            model=model, messages=[], keep_alive=keep_alive, options=dict(options or {})
        )
        return await self.api_chat(request, timeout_s=timeout_s)

    async def unload(self, model: str, *, timeout_s: float | None = None) -> None:
        """Ask Ollama to unload ``model`` (``messages: []`` with ``keep_alive: 0``).

        Ollama answers at once but frees the memory asynchronously, after in-flight calls
        end: follow with :meth:`wait_unloaded` before handing the GPU to another program.

        Raises:
            ModelNotFoundError: The model is not pulled.
            ModelUnavailableError: Ollama could not be reached.
        """
        await self.api_chat(
            OllamaChatRequest(model=model, messages=[], keep_alive=0, stream=False),
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
            ModelUnavailableError: ``/api/ps`` could not be read.
        """
        wanted = {normalize_model_name(m) for m in models}
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            running = await self.ps(timeout_s=max(remaining, _PING_TIMEOUT_S))
            loaded = {n for m in running for n in _names(m)}
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

    async def show(self, model: str, *, timeout_s: float | None = None) -> ShowResponse:
        """``POST /api/show``: capabilities, details and parameters of ``model``.

        Raises:
            ModelNotFoundError: The model is not pulled.
            ModelUnavailableError: Ollama could not be reached.
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
            raise UnusableAnswerError(f"/api/version answered without a version: {body!r}")
        return version

    async def ping(self, *, timeout_s: float = _PING_TIMEOUT_S) -> bool:
        """Whether the server answers ``GET /`` with 200; never raises a model error."""
        try:
            async with self._call("ping", timeout_s):
                response = await self._client.get(f"{self.base_url}/", timeout=timeouts(timeout_s))
        except ModelError:
            return False
        return response.status_code == 200

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
                method, f"{self.base_url}{path}", json=body, timeout=timeouts(budget)
            )
            if response.status_code != 200:
                raise _status_error(response, model=model)
            try:
                data = response.json()
            except ValueError as exc:
                raise UnusableAnswerError(f"{path} answered with invalid JSON: {exc}") from exc
            if not isinstance(data, dict):
                raise UnusableAnswerError(
                    f"{path} answered with {type(data).__name__}, not an object"
                )
        return data


def to_ollama(request: ChatRequest) -> OllamaChatRequest:
    """The ``/api/chat`` body of a protocol request (options left out when unset).

    Args:
        request: The backend-neutral request.

    Returns:
        The Ollama request, streamed.
    """
    options = {
        key: value
        for key, value in (
            ("num_ctx", request.context_tokens),
            ("num_predict", request.max_tokens),
            ("temperature", request.temperature),
            ("seed", request.seed),
        )
        if value is not None
    }
    return OllamaChatRequest(
        model=request.model,
        messages=[
            OllamaMessage(
                role=m.role,
                content=m.content,
                images=[image.base64 for image in m.images] or None,
            )
            for m in request.messages
        ],
        format=dict(request.json_schema) if request.json_schema is not None else None,
        options=options,
        keep_alive=request.keep_alive,
        think=request.think,
    )


def _names(model: RunningModel) -> set[str]:
    return {normalize_model_name(n) for n in (model.name, model.model) if n}


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:500]
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return response.text.strip()[:500]


def _status_error(response: httpx.Response, *, model: str | None) -> ModelError:
    """Map a non-200 answer to its error class (on the status, never on the text)."""
    status = response.status_code
    detail = _error_text(response)
    path = response.request.url.path
    if status == 404 and model is not None:
        return ModelNotFoundError(
            model,
            backend="ollama",
            server="Ollama",
            remedy=f"run `ollama pull {model}` on the Ollama host",
            detail=detail,
            status_code=status,
        )
    if status >= 500 or status in (408, 429):
        return ModelUnavailableError(
            f"Ollama {path} answered {status}: {detail}", status_code=status
        )
    if 400 <= status < 500:
        return ModelRequestError(
            f"Ollama {path} refused the request ({status}): {detail}", status_code=status
        )
    return UnusableAnswerError(
        f"Ollama {path} answered unexpected status {status}: {detail}",
        retryable=False,
        status_code=status,
    )


def _reply_from_line(line: str) -> OllamaChatResponse:
    """Parse one reply object (a stream line or a whole non-streamed body)."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise UnusableAnswerError(f"Ollama sent a line that is not JSON: {line[:200]!r}") from exc
    if not isinstance(data, dict):
        raise UnusableAnswerError(f"Ollama sent a line that is not an object: {line[:200]!r}")
    if "error" in data:
        # A runner failure after the 200 was sent: it comes as a line, not a status.
        raise UnusableAnswerError(f"Ollama failed mid-reply: {data['error']}", status_code=200)
    try:
        return OllamaChatResponse.model_validate(data)
    except ValidationError as exc:
        raise UnusableAnswerError(f"Ollama sent an unexpected reply line: {exc}") from exc


async def _read_stream(response: httpx.Response) -> OllamaChatResponse:
    content: list[str] = []
    thinking: list[str] = []
    last: OllamaChatResponse | None = None
    async for line in response.aiter_lines():
        if not line.strip():
            continue
        last = _reply_from_line(line)
        content.append(last.message.content)
        thinking.append(last.message.thinking or "")
        if last.done:
            break
    if last is None or not last.done:
        raise ModelUnavailableError("Ollama's reply stream ended before its done line")
    message = last.message.model_copy(
        update={"content": "".join(content), "thinking": "".join(thinking) or None}
    )
    return last.model_copy(update={"message": message})


def _check_reply(request: OllamaChatRequest, reply: OllamaChatResponse) -> None:
    """Refuse a 200 reply that cannot be what was asked."""
    if not request.messages:  # a preload or unload: nothing is generated
        return
    if not reply.content.strip():
        why = (
            "hit the token limit before answering (num_predict or num_ctx too small)"
            if reply.done_reason == "length"
            else f"answered nothing (done_reason {reply.done_reason!r})"
        )
        raise UnusableAnswerError(f"{request.model} {why}")


def _parse(model: type[_M], body: dict[str, Any], path: str) -> _M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise UnusableAnswerError(f"{path} answered an unexpected shape: {exc}") from exc


def _parse_models(model: type[_M], body: dict[str, Any], path: str) -> list[_M]:
    items = body.get("models") or []
    if not isinstance(items, list):
        raise UnusableAnswerError(f"{path} answered an unexpected shape: {body!r}")
    return [_parse(model, item, path) for item in items]
