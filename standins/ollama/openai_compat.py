"""Ollama's OpenAI-compatible ``/v1/chat/completions`` and ``/v1/models``: as its
``middleware/openai.go``, a body becomes an ``/api/chat`` request, the answer a
``chat.completion``, an error OpenAI's error object under the same status."""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from standins.ollama.routes import json_reply
from standins.ollama.wire import ChatRequest, Message, encode_json

if TYPE_CHECKING:
    from standins.ollama.routes import OllamaRoutes

__all__ = ["OpenAIRoutes", "openai_error"]

_IMAGE_PREFIXES = (
    "data:;base64,",
    *(f"data:image/{t};base64," for t in ("jpeg", "jpg", "png", "webp")),
)
# reasoning_effort → think (v0.32.11+); the levels themselves pass through.
_EFFORT_TO_THINK: dict[str, bool | str] = {"none": False, "minimal": "low", "xhigh": "max"}
_EFFORT_TO_THINK |= {"ultra": "max"} | {level: level for level in ("low", "medium", "high", "max")}
_ERROR_TYPES = {400: "invalid_request_error", 404: "not_found_error"}
# Request fields copied into options; max_completion_tokens is not read (Ollama ignores it).
_PASSED = ("seed", "temperature", "top_p", "frequency_penalty", "presence_penalty")
_OPTIONS = {"max_tokens": "num_predict"} | {name: name for name in _PASSED}


class _BadRequest(ValueError):
    """A body Ollama's OpenAI middleware rejects with 400."""


def openai_error(status: int, message: str) -> web.Response:
    """Ollama's ``openai.NewError``: the OpenAI error object under the given status."""
    kind = _ERROR_TYPES.get(status, "api_error")
    error = {"message": message, "type": kind, "param": None, "code": None}
    return json_reply(status, {"error": error})


def _decode_image_url(url: str) -> bytes:
    if url.startswith(("http://", "https://")):
        raise _BadRequest(
            "image URLs are not currently supported, please use base64 encoded data instead"
        )
    prefix = next((p for p in _IMAGE_PREFIXES if url.startswith(p)), None)
    try:
        if prefix is None:
            raise ValueError(url)
        return base64.b64decode(url.removeprefix(prefix), validate=True)
    except (binascii.Error, ValueError):
        raise _BadRequest("invalid image input") from None


def _messages(raw: list[Any]) -> tuple[Message, ...]:
    messages: list[Message] = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise _BadRequest("invalid message format")
        role, content = str(entry.get("role") or "").lower(), entry.get("content")
        if content is None or isinstance(content, str):
            messages.append(Message(role=role, content=content or ""))
            continue
        for part in content if isinstance(content, list) else [None]:
            kind = part.get("type") if isinstance(part, dict) else None
            image = part.get("image_url") if isinstance(part, dict) else None
            url = image.get("url") if isinstance(image, dict) else image
            if kind == "text" and isinstance(part.get("text"), str):  # type: ignore[union-attr]
                messages.append(Message(role=role, content=part["text"]))  # type: ignore[index]
            elif kind == "image_url" and isinstance(url, str):
                messages.append(Message(role=role, content="", images=(_decode_image_url(url),)))
            else:
                raise _BadRequest("invalid message format")
    return tuple(messages)


def _format(response_format: Any) -> Any:
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if str(kind).strip().lower() == "json_object":
        return "json"
    spec = response_format.get("json_schema") if kind == "json_schema" else None
    return spec.get("schema") if isinstance(spec, dict) else None


def _think(body: Mapping[str, Any]) -> bool | str | None:
    effort = body.get("reasoning_effort")
    if effort is not None and (not isinstance(effort, str) or effort not in _EFFORT_TO_THINK):
        raise _BadRequest(
            f"invalid reasoning value: '{effort}' "
            '(must be "none", "minimal", "low", "medium", "high", "xhigh" or "max")'
        )
    return None if effort is None else _EFFORT_TO_THINK[effort]


def decode_completion_request(raw: bytes) -> tuple[ChatRequest, bool, bool]:
    """Translate a chat-completions body into the ``/api/chat`` request it becomes
    (unstreamed: the finished answer is sent as events), whether the client asked for a
    stream, and whether it asked for a usage chunk; raise :class:`_BadRequest` for a 400."""
    try:
        body = json.loads(raw) if raw.strip() else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadRequest(f"invalid request body: {exc}") from None
    if not isinstance(body, dict):
        raise _BadRequest("EOF" if body is None else "invalid request body: expected an object")
    model, raw_messages = body.get("model"), body.get("messages") or []
    for name, value, kind, go_type in (
        ("model", model, str | None, "string"),
        ("messages", raw_messages, list, "[]openai.Message"),
    ):
        if not isinstance(value, kind):
            raise _BadRequest(
                f"json: cannot unmarshal into Go struct field ChatCompletionRequest.{name} "
                f"of type {go_type}"
            )
    messages = _messages(raw_messages)
    if not messages:
        raise _BadRequest("[] is too short - 'messages'")
    options: dict[str, Any] = {"temperature": 1.0, "top_p": 1.0}  # Ollama's /v1 defaults
    options |= {_OPTIONS[k]: v for k, v in body.items() if k in _OPTIONS and v is not None}
    usage = body.get("stream_options")
    request = ChatRequest(
        model=model or "",
        messages=messages,
        stream=False,
        format=_format(body.get("response_format")),
        options=options,
        keep_alive_ns=None,
        think=_think(body),
    )
    return (
        request,
        body.get("stream") is True,
        isinstance(usage, dict) and bool(usage.get("include_usage")),
    )


class OpenAIRoutes:
    """``/v1`` on top of the stand-in's Ollama routes (``ollama``)."""

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
        return json_reply(200, {"object": "list", "data": data})

    async def retrieve_model(self, request: web.Request) -> web.Response:
        """``GET /v1/models/{model}``: one model, or 404."""
        name = request.match_info["model"]
        model = self.ollama.fake.catalogue.find(name)
        if model is None:
            return openai_error(404, f"model '{name}' not found")
        return json_reply(200, self._model_card(model.name))

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
        head: dict[str, Any] = {
            "id": f"chatcmpl-{next(self._ids) % 999}",
            "object": "chat.completion",
        }
        head |= {"created": int(time.time()), "model": reply["model"]}
        head |= {"system_fingerprint": "fp_ollama"}
        thinking = reply["message"].get("thinking")
        message = {"role": "assistant", "content": reply["message"]["content"]}
        choice = {"index": 0, "message": message | ({"reasoning": thinking} if thinking else {})}
        if not stream:
            choice["finish_reason"] = reply.get("done_reason")
            return json_reply(200, head | {"choices": [choice], "usage": _usage(reply)})
        head["object"] = "chat.completion.chunk"

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return head | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        events = [chunk(message | {"content": "", "reasoning": thinking})] if thinking else []
        events += [chunk(message), chunk({}, reply.get("done_reason"))]
        if include_usage:
            events.append(head | {"choices": [], "usage": _usage(reply)})
        return await _send_events(request, events)


async def _send_events(request: web.Request, events: list[dict[str, Any]]) -> web.StreamResponse:
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
    prompt, completion = int(reply.get("prompt_eval_count", 0)), int(reply.get("eval_count", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion} | {
        "total_tokens": prompt + completion
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
