"""Ollama's OpenAI-compatible routes: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Ollama serves ``/v1`` as a translation layer in front of its own handlers
(``middleware/openai.go``): the OpenAI body becomes an ``/api/chat`` request, the chat
answer becomes a ``chat.completion`` and an ``{"error": "…"}`` body becomes
``{"error": {"message", "type", "param", "code"}}`` with the same status. The stand-in does
the same, so the two APIs share models, residency, faults and the request log.

Translation rules copied from Ollama (``openai/openai.go``):

* every content part is its own message; ``image_url`` takes only ``data:image/{jpeg,jpg,
  png,webp};base64,`` or ``data:;base64,`` URLs (http URLs and others: 400);
* ``response_format`` ``json_object`` → ``format: "json"``, ``json_schema`` → its ``schema``
  (``name`` and ``strict`` ignored); other types are ignored;
* ``temperature`` and ``top_p`` default to 1.0; ``max_tokens`` → ``num_predict``;
  ``max_completion_tokens`` is not read;
* ``reasoning_effort`` → ``think`` (``none`` → false, ``minimal`` → low, ``xhigh`` → max);
* the reasoning trace comes back in ``message.reasoning``; ``finish_reason`` is the
  ``done_reason``; ``stream: true`` answers Server-Sent Events ending with ``data: [DONE]``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from standins.ollama.request_bodies import ChatRequest, Message
from standins.ollama.wire import encode_json

if TYPE_CHECKING:
    from standins.ollama.routes import OllamaRoutes

__all__ = ["OpenAIRoutes", "openai_error"]

_IMAGE_PREFIXES = tuple(f"data:image/{kind};base64," for kind in ("jpeg", "jpg", "png", "webp"))
_EFFORT_TO_THINK: dict[str, bool | str] = {
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "max": "max",
    "xhigh": "max",
    "ultra": "max",
}
_ERROR_TYPES = {400: "invalid_request_error", 404: "not_found_error"}
_JSON = "application/json; charset=utf-8"


class _BadRequest(ValueError):
    """A body Ollama's OpenAI middleware rejects with 400."""


def openai_error(status: int, message: str) -> web.Response:
    """Ollama's ``openai.NewError``: the OpenAI error object under the given status."""
    error = {
        "message": message,
        "type": _ERROR_TYPES.get(status, "api_error"),
        "param": None,
        "code": None,
    }
    return web.Response(
        status=status, body=encode_json({"error": error}), headers={"Content-Type": _JSON}
    )


def _decode_image_url(url: str) -> bytes:
    if url.startswith(("http://", "https://")):
        raise _BadRequest(
            "image URLs are not currently supported, please use base64 encoded data instead"
        )
    if url.startswith("data:;base64,"):
        data = url.removeprefix("data:;base64,")
    else:
        prefix = next((p for p in _IMAGE_PREFIXES if url.startswith(p)), None)
        if prefix is None:
            raise _BadRequest("invalid image input")
        data = url.removeprefix(prefix)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _BadRequest("invalid image input") from None


def _messages(raw: Any) -> tuple[Message, ...]:
    if not isinstance(raw, list):
        raise _BadRequest(
            "json: cannot unmarshal into Go struct field ChatCompletionRequest.messages "
            "of type []openai.Message"
        )
    messages: list[Message] = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise _BadRequest("invalid message format")
        role = str(entry.get("role") or "").lower()
        content = entry.get("content")
        if content is None or isinstance(content, str):
            messages.append(Message(role=role, content=content or ""))
            continue
        if not isinstance(content, list):
            raise _BadRequest("invalid message content type")
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                messages.append(Message(role=role, content=part["text"]))
            elif kind == "image_url":
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, dict) else image
                if not isinstance(url, str):
                    raise _BadRequest("invalid message format")
                messages.append(Message(role=role, content="", images=(_decode_image_url(url),)))
            else:
                raise _BadRequest("invalid message format")
    return tuple(messages)


def _format(response_format: Any) -> Any:
    if not isinstance(response_format, dict):
        return None
    kind = str(response_format.get("type") or "").strip().lower()
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        return spec.get("schema") if isinstance(spec, dict) else None
    return None


def _options(body: Mapping[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {
        "temperature": 1.0 if body.get("temperature") is None else body["temperature"],
        "top_p": 1.0 if body.get("top_p") is None else body["top_p"],
    }
    for name, option in (
        ("max_tokens", "num_predict"),
        ("seed", "seed"),
        ("frequency_penalty", "frequency_penalty"),
        ("presence_penalty", "presence_penalty"),
    ):
        if body.get(name) is not None:
            options[option] = body[name]
    stop = body.get("stop")
    if isinstance(stop, str):
        options["stop"] = [stop]
    elif isinstance(stop, list):
        options["stop"] = stop
    return options


def _think(body: Mapping[str, Any]) -> bool | str | None:
    effort = body.get("reasoning_effort")
    if effort is None and isinstance(body.get("reasoning"), dict):
        effort = body["reasoning"].get("effort")
    if effort is None:
        return None
    if not isinstance(effort, str) or effort not in _EFFORT_TO_THINK:
        raise _BadRequest(
            f"invalid reasoning value: '{effort}' "
            '(must be "none", "minimal", "low", "medium", "high", "xhigh" or "max")'
        )
    return _EFFORT_TO_THINK[effort]


def decode_completion_request(raw: bytes) -> tuple[ChatRequest, bool, bool]:
    """Translate an OpenAI chat-completions body into the ``/api/chat`` request it becomes.

    Args:
        raw: The request body.

    Returns:
        The chat request (never streamed: the stand-in streams the finished answer), whether
        the client asked for a stream, and whether it asked for a usage chunk.

    Raises:
        _BadRequest: What Ollama answers with 400.
    """
    try:
        body = json.loads(raw) if raw.strip() else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadRequest(f"invalid request body: {exc}") from None
    if not isinstance(body, dict):
        raise _BadRequest("EOF" if body is None else "invalid request body: expected an object")
    model = body.get("model")
    if not isinstance(model, str | None):
        raise _BadRequest(
            "json: cannot unmarshal into Go struct field ChatCompletionRequest.model of type string"
        )
    messages = _messages(body.get("messages") or [])
    if not messages:
        raise _BadRequest("[] is too short - 'messages'")
    stream = body.get("stream") is True
    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    request = ChatRequest(
        model=model or "",
        messages=messages,
        stream=False,
        format=_format(body.get("response_format")),
        options=_options(body),
        keep_alive_ns=None,
        think=_think(body),
    )
    return request, stream, include_usage


class OpenAIRoutes:
    """``/v1`` on top of the stand-in's Ollama routes.

    Args:
        ollama: The native routes the translated requests run through.
    """

    def __init__(self, ollama: OllamaRoutes) -> None:
        self.ollama = ollama
        self._ids = itertools.count()

    def register(self, app: web.Application) -> None:
        """Add the ``/v1`` routes to ``app``."""
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_get("/v1/models", self.list_models)
        app.router.add_get("/v1/models/{model:.+}", self.retrieve_model)

    def _model_card(self, name: str) -> dict[str, Any]:
        namespace = name.rsplit("/", 1)[0] if "/" in name else "library"
        created = self.ollama.fake.catalogue.modified_at_ns // 1_000_000_000
        return {"id": name, "object": "model", "created": created, "owned_by": namespace}

    async def list_models(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/models``: the installed models in OpenAI's list shape."""
        failed = await self.ollama.simple_faults("tags")
        if failed is not None:
            return _translated_error(failed)
        data = [self._model_card(model.name) for model in self.ollama.fake.catalogue]
        return web.Response(
            body=encode_json({"object": "list", "data": data}), headers={"Content-Type": _JSON}
        )

    async def retrieve_model(self, request: web.Request) -> web.Response:
        """``GET /v1/models/{model}``: one model, or 404."""
        name = request.match_info["model"]
        model = self.ollama.fake.catalogue.find(name)
        if model is None:
            return openai_error(404, f"model '{name}' not found")
        return web.Response(
            body=encode_json(self._model_card(model.name)), headers={"Content-Type": _JSON}
        )

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/chat/completions``."""
        started = time.monotonic_ns()
        try:
            chat, stream, include_usage = decode_completion_request(await request.read())
        except _BadRequest as exc:
            return openai_error(400, str(exc))
        answer = await self.ollama.run_chat(request, chat, started)
        if not isinstance(answer, web.Response) or answer.status != 200 or answer.body is None:
            return _translated_error(answer)
        reply = json.loads(answer.body)  # type: ignore[arg-type]
        completion_id = f"chatcmpl-{next(self._ids) % 999}"
        if stream:
            return await self._stream(request, completion_id, reply, include_usage)
        message: dict[str, Any] = {"role": "assistant", "content": reply["message"]["content"]}
        if reply["message"].get("thinking"):
            message["reasoning"] = reply["message"]["thinking"]
        completion = {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply["model"],
            "system_fingerprint": "fp_ollama",
            "choices": [
                {"index": 0, "message": message, "finish_reason": reply.get("done_reason")}
            ],
            "usage": _usage(reply),
        }
        return web.Response(body=encode_json(completion), headers={"Content-Type": _JSON})

    async def _stream(
        self,
        request: web.Request,
        completion_id: str,
        reply: Mapping[str, Any],
        include_usage: bool,
    ) -> web.StreamResponse:
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": reply["model"],
                "system_fingerprint": "fp_ollama",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        events: list[dict[str, Any]] = []
        thinking = reply["message"].get("thinking") or ""
        if thinking:
            events.append(chunk({"role": "assistant", "content": "", "reasoning": thinking}, None))
        events.append(chunk({"role": "assistant", "content": reply["message"]["content"]}, None))
        events.append(chunk({}, reply.get("done_reason")))
        if include_usage:
            events.append({**chunk({}, None), "choices": [], "usage": _usage(reply)})
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        try:
            for event in events:
                await response.write(b"data: " + encode_json(event) + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionError:
            pass
        return response


def _usage(reply: Mapping[str, Any]) -> dict[str, int]:
    prompt = int(reply.get("prompt_eval_count", 0))
    completion = int(reply.get("eval_count", 0))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _translated_error(answer: web.StreamResponse) -> web.StreamResponse:
    """An Ollama error response in OpenAI's shape (a dropped connection stays dropped)."""
    body = answer.body if isinstance(answer, web.Response) else None
    if not isinstance(body, bytes):
        return answer
    try:
        message = str(json.loads(body).get("error", ""))
    except (json.JSONDecodeError, AttributeError):
        message = body.decode("utf-8", errors="replace")
    return openai_error(answer.status, message)
