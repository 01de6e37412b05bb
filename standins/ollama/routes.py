"""HTTP handlers of the stand-in: Ollama's routes, framed exactly as Ollama frames them.

Framing rules copied from Ollama's handlers (Go, gin):

* Plain replies and errors are ``c.JSON``: ``application/json; charset=utf-8``, compact
  JSON, no trailing newline; an error body is ``{"error": "<text>"}``.
* Streams are ``application/x-ndjson``, chunked, one object per ``\\n``-terminated line,
  thinking deltas before content deltas, then one ``done: true`` line with ``done_reason``
  and the metrics (zero metrics omitted). A failure before the first line is a real
  status with ``Content-Type: application/json``; after it, an ``{"error": …}`` line.
* Preload and unload answers are single JSON objects even when ``stream`` is true.
* Unknown paths answer gin's ``404 page not found`` in plain text.

Routes under ``/_fake/`` are the stand-in's own debug surface (stats, request log,
faults); they are not recorded in the request log.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from standins.ollama.answers import (
    ChatCall,
    Completion,
    FormatSpec,
    InvalidFormatError,
    UnreadableImageError,
    compose_reply,
    parse_format,
    split_pieces,
)
from standins.ollama.faults import (
    Fault,
    FaultKind,
    FaultPlan,
    drop_fields,
    malform_json,
    violate_schema,
)
from standins.ollama.models import InstalledModel, Lease, LoadOptions, QueueFullError
from standins.ollama.request_bodies import (
    ChatRequest,
    GenerateRequest,
    Message,
    check_options,
    decode_chat,
    decode_generate,
    decode_show,
)
from standins.ollama.wire import GoDecodeError, encode_json, rfc3339_nano

if TYPE_CHECKING:
    from standins.ollama.server import FakeOllama

__all__ = ["OllamaRoutes"]

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
# What Ollama's streamResponse sets before reporting an error that beat the first chunk.
STREAM_ERROR_CONTENT_TYPE = "application/json"
NDJSON_CONTENT_TYPE = "application/x-ndjson"
IMAGE_FAILURE_MESSAGE = "failed to process inputs: unable to make llava embedding from image"
PULL_FAILURE_MESSAGE = "pull model manifest: file does not exist"

# Synthetic per-token costs for the metrics (a mid-range GPU): the stand-in does not
# spend this time, it only reports it so clients can compute tokens per second.
_PROMPT_NS_PER_TOKEN = 150_000
_EVAL_NS_PER_TOKEN = 20_000_000

_FAULT_LIST = TypeAdapter(list[Fault])

Frame = Callable[[], dict[str, Any]]


def _now() -> str:
    return rfc3339_nano(time.time_ns())


def json_reply(status: int, payload: Any, content_type: str = JSON_CONTENT_TYPE) -> web.Response:
    """A JSON response framed like gin's ``c.JSON``."""
    return web.Response(
        status=status, body=encode_json(payload), headers={"Content-Type": content_type}
    )


def error_reply(status: int, message: str, *, streaming: bool = False) -> web.Response:
    """Ollama's error response: ``{"error": message}``."""
    content_type = STREAM_ERROR_CONTENT_TYPE if streaming else JSON_CONTENT_TYPE
    return json_reply(status, {"error": message}, content_type)


def _metrics(completion: Completion, started_ns: int, load_ns: int) -> dict[str, int]:
    prompt_ns = completion.prompt_eval_count * _PROMPT_NS_PER_TOKEN
    eval_ns = completion.eval_count * _EVAL_NS_PER_TOKEN
    metrics = {
        "total_duration": time.monotonic_ns() - started_ns + prompt_ns + eval_ns,
        "load_duration": max(1, load_ns),
        "prompt_eval_count": completion.prompt_eval_count,
        "prompt_eval_duration": prompt_ns,
        "eval_count": completion.eval_count,
        "eval_duration": eval_ns,
    }
    # Go's omitempty drops zero metrics.
    return {key: value for key, value in metrics.items() if value}


def _token_id(piece: str) -> int:
    return zlib.crc32(piece.encode()) % 32000


class OllamaRoutes:
    """Ollama's API on top of one :class:`~standins.ollama.server.FakeOllama`.

    Args:
        fake: The state every handler reads and updates.
    """

    def __init__(self, fake: FakeOllama) -> None:
        self.fake = fake

    def register(self, app: web.Application) -> None:
        """Add every route and the recording / 404 middleware to ``app``."""
        app.middlewares.append(self._middleware)
        router = app.router
        router.add_get("/", self.root)
        router.add_get("/api/version", self.version)
        router.add_get("/api/tags", self.tags)
        router.add_get("/api/ps", self.ps, allow_head=False)
        router.add_post("/api/show", self.show)
        router.add_post("/api/chat", self.chat)
        router.add_post("/api/generate", self.generate)
        router.add_post("/api/pull", self.pull)
        router.add_get("/_fake/stats", self.debug_stats)
        router.add_get("/_fake/requests", self.debug_requests)
        router.add_get("/_fake/faults", self.debug_faults)
        router.add_post("/_fake/faults", self.debug_add_faults)
        router.add_delete("/_fake/faults", self.debug_clear_faults)
        router.add_post("/_fake/reset", self.debug_reset)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith("/_fake/"):
            body = await request.read()
            self.fake.record(request.method, request.path, body)
        try:
            return await handler(request)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
            # gin answers unknown routes and wrong methods alike.
            return web.Response(
                status=404, body=b"404 page not found", headers={"Content-Type": "text/plain"}
            )

    async def simple_faults(self, route: str, model: str | None = None) -> web.Response | None:
        """Apply the delay and error faults of a request that generates no text."""
        plan = self.fake.faults.take(route, model, generating=False)
        if plan.delay_s:
            await asyncio.sleep(plan.delay_s)
        if plan.error:
            return error_reply(*plan.error)
        return None

    # --- small routes -------------------------------------------------------------------

    async def root(self, request: web.Request) -> web.Response:
        """``GET /``: the liveness text."""
        return web.Response(text="Ollama is running", content_type="text/plain", charset="utf-8")

    async def version(self, request: web.Request) -> web.Response:
        """``GET /api/version``."""
        return await self.simple_faults("version") or json_reply(
            200, {"version": self.fake.settings.version}
        )

    async def tags(self, request: web.Request) -> web.Response:
        """``GET /api/tags``: installed models."""
        failed = await self.simple_faults("tags")
        if failed:
            return failed
        modified = rfc3339_nano(self.fake.catalogue.modified_at_ns)
        models = [
            {
                "name": model.name,
                "model": model.name,
                "modified_at": modified,
                "size": model.size,
                "digest": model.digest,
                "details": model.details(),
            }
            for model in self.fake.catalogue
        ]
        return json_reply(200, {"models": models})

    async def ps(self, request: web.Request) -> web.Response:
        """``GET /api/ps``: resident models, latest expiry first."""
        failed = await self.simple_faults("ps")
        if failed:
            return failed
        residency = self.fake.residency
        rows: list[tuple[int, dict[str, Any]]] = []
        for runner in residency.snapshot():
            size = runner.model.resident_bytes(runner.options.num_ctx)
            expires = residency.expires_at_ns(runner)
            rows.append(
                (
                    expires // 1_000_000_000,
                    {
                        "name": runner.model.name,
                        "model": runner.model.name,
                        "size": size,
                        "digest": runner.model.digest,
                        "details": runner.model.details(),
                        "expires_at": rfc3339_nano(expires),
                        "size_vram": size,
                        "context_length": runner.options.num_ctx,
                    },
                )
            )
        rows.sort(key=lambda row: row[0], reverse=True)
        return json_reply(200, {"models": [row for _, row in rows]})

    async def show(self, request: web.Request) -> web.Response:
        """``POST /api/show``: model metadata with ``capabilities``."""
        try:
            req = decode_show(await request.read())
        except GoDecodeError as exc:
            return error_reply(400, str(exc))
        if not req.model:
            return error_reply(400, "model is required")
        model = self.fake.catalogue.find(req.model)
        if model is None:
            return error_reply(404, f"model '{req.model}' not found")
        failed = await self.simple_faults("show", model.name)
        if failed:
            return failed
        return json_reply(200, self._show_body(model, verbose=req.verbose))

    def _show_body(self, model: InstalledModel, *, verbose: bool) -> dict[str, Any]:
        blob = f"sha256-{model.digest}"
        parameter_lines = "\n".join(f"PARAMETER {line}" for line in model.parameters.splitlines())
        modelfile = (
            '# Modelfile generated by "ollama show"\n'
            "# To build a new Modelfile based on this, replace FROM with:\n"
            f"# FROM {model.name}\n\n"
            f"FROM /usr/share/ollama/.ollama/models/blobs/{blob}\n"
            f'TEMPLATE """{model.template}"""\n'
            f"{parameter_lines}\n"
        )
        body: dict[str, Any] = {}
        if model.license:
            body["license"] = model.license
        body["modelfile"] = modelfile
        if model.parameters:
            body["parameters"] = model.parameters
        body["template"] = model.template
        body["details"] = model.details()
        body["model_info"] = model.model_info()
        projector = model.projector_info()
        if projector:
            body["projector_info"] = projector
        if verbose:
            body["tensors"] = [
                {
                    "name": "token_embd.weight",
                    "type": model.quantization_level,
                    "shape": [4096, 32000],
                }
            ]
        body["capabilities"] = list(model.capabilities)
        body["modified_at"] = rfc3339_nano(self.fake.catalogue.modified_at_ns)
        return body

    async def pull(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/pull``: installed models "pull" at once; others fail (no registry)."""
        try:
            fields = json.loads(await request.read() or b"{}")
        except json.JSONDecodeError as exc:
            return error_reply(400, str(exc))
        if not isinstance(fields, dict):
            fields = {}
        name = str(fields.get("model") or fields.get("name") or "")
        stream = fields.get("stream", True) is not False
        if not name:
            return error_reply(400, "model is required")
        model = self.fake.catalogue.find(name)
        failed = await self.simple_faults("pull", model.name if model else name)
        if failed:
            return failed
        if not stream:
            if model is None:
                return error_reply(500, PULL_FAILURE_MESSAGE)
            return json_reply(200, {"status": "success"})
        frames: list[Frame] = [lambda: {"status": "pulling manifest"}]
        if model is not None:
            digest = model.digest
            frames += [
                lambda: {
                    "status": f"pulling {digest[:12]}",
                    "digest": f"sha256:{digest}",
                    "total": model.size,
                    "completed": model.size,
                },
                lambda: {"status": "verifying sha256 digest"},
                lambda: {"status": "writing manifest"},
                lambda: {"status": "success"},
            ]
            return await self._stream(request, frames, FaultPlan())
        plan = FaultPlan(stream_error=(1, PULL_FAILURE_MESSAGE))
        return await self._stream(request, [*frames, lambda: {"status": "success"}], plan)

    # --- chat and generate --------------------------------------------------------------

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/chat``."""
        started = time.monotonic_ns()
        try:
            req = decode_chat(await request.read())
        except GoDecodeError as exc:
            return error_reply(400, str(exc))
        return await self.run_chat(request, req, started)

    async def run_chat(
        self, request: web.Request, req: ChatRequest, started: int
    ) -> web.StreamResponse:
        """Answer a decoded chat request (also what ``/v1/chat/completions`` becomes).

        Args:
            request: The HTTP request (streams and dropped connections write to it).
            req: The chat request.
            started: ``time.monotonic_ns()`` at arrival, for the metrics.

        Returns:
            The response, already sent when it is a stream.
        """
        return await self._complete(
            request,
            endpoint="chat",
            model_ref=req.model,
            messages=req.messages,
            is_load_request=not req.messages,
            req=req,
            started=started,
        )

    async def generate(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/generate``."""
        started = time.monotonic_ns()
        try:
            req = decode_generate(await request.read())
        except GoDecodeError as exc:
            return error_reply(400, str(exc))
        if req.raw and (req.template or req.system or req.context):
            return error_reply(400, "raw mode does not support template, system, or context")
        messages: list[Message] = []
        if req.system:
            messages.append(Message(role="system", content=req.system))
        messages.append(Message(role="user", content=req.prompt, images=req.images))
        return await self._complete(
            request,
            endpoint="generate",
            model_ref=req.model,
            messages=tuple(messages),
            is_load_request=not req.prompt,
            req=req,
            started=started,
        )

    async def _complete(
        self,
        request: web.Request,
        *,
        endpoint: Literal["chat", "generate"],
        model_ref: str,
        messages: tuple[Message, ...],
        is_load_request: bool,
        req: ChatRequest | GenerateRequest,
        started: int,
    ) -> web.StreamResponse:
        if not model_ref:
            return error_reply(400, "model is required")
        model = self.fake.catalogue.find(model_ref)
        if model is None:
            return error_reply(404, f"model '{model_ref}' not found")
        shape = _Shape(endpoint, model_ref)
        if is_load_request and req.keep_alive_ns == 0:
            self.fake.residency.expire(model.name)
            failed = await self.simple_faults(endpoint, model.name)
            return failed or json_reply(200, shape.final("", "unload", {}))
        if not model.thinking and req.think not in (None, False):
            return error_reply(400, f'"{model_ref}" does not support thinking')
        plan = self.fake.faults.take(endpoint, model.name, generating=not is_load_request)
        if plan.delay_s:
            await asyncio.sleep(plan.delay_s)
        try:
            check_options(req.options)
        except GoDecodeError as exc:
            return error_reply(500, str(exc))
        load_options = LoadOptions.from_options(
            req.options, model, self.fake.settings.context_length
        )
        try:
            lease = await self.fake.residency.acquire(model, load_options, req.keep_alive_ns)
        except QueueFullError as exc:
            return error_reply(503, str(exc))
        try:
            load_ns = time.monotonic_ns() - started
            if plan.error and is_load_request:
                return error_reply(*plan.error)
            if is_load_request:
                return json_reply(200, shape.final("", "load", {}))
            return await self._answer(
                request, model, lease, messages, req, plan, shape, started, load_ns
            )
        finally:
            await self.fake.residency.release(lease)

    async def _answer(
        self,
        request: web.Request,
        model: InstalledModel,
        lease: Lease,
        messages: tuple[Message, ...],
        req: ChatRequest | GenerateRequest,
        plan: FaultPlan,
        shape: _Shape,
        started: int,
        load_ns: int,
    ) -> web.StreamResponse:
        streaming = req.stream
        try:
            spec = parse_format(req.format)
        except InvalidFormatError as exc:
            return error_reply(500, str(exc), streaming=streaming)
        async with lease.runner.slots:
            try:
                call = ChatCall(model.name, shape.endpoint, messages, spec, req.options)
                completion = compose_reply(self.fake.script, call, model, req.think)
            except UnreadableImageError:
                return error_reply(500, IMAGE_FAILURE_MESSAGE, streaming=streaming)
            if plan.error:
                return error_reply(*plan.error, streaming=streaming)
            completion = _with_content_faults(completion, plan, spec)
            metrics: dict[str, Any] = _metrics(completion, started, load_ns)
            if isinstance(req, GenerateRequest) and not req.raw:
                metrics["context"] = [
                    *req.context,
                    *(_token_id(p) for m in messages for p in split_pieces(m.content)),
                    *(_token_id(p) for p in completion.content),
                ]
            if not streaming:
                return await self._single(request, shape, completion, metrics, plan)
            return await self._stream(request, list(shape.frames(completion, metrics)), plan)

    async def _single(
        self,
        request: web.Request,
        shape: _Shape,
        completion: Completion,
        metrics: dict[str, Any],
        plan: FaultPlan,
    ) -> web.StreamResponse:
        if plan.chunk_delay_s:
            await asyncio.sleep(plan.chunk_delay_s * completion.eval_count)
        if plan.truncate_after is not None:
            _drop_connection(request)
            return web.Response(status=500)
        if plan.stream_error is not None:
            # Unstreamed, Ollama collects the stream and turns a failure into a 500.
            return error_reply(500, plan.stream_error[1])
        return json_reply(
            200,
            shape.final(
                completion.content_text,
                completion.done_reason,
                metrics,
                thinking=completion.thinking_text,
            ),
        )

    async def _stream(
        self, request: web.Request, frames: list[Frame], plan: FaultPlan
    ) -> web.StreamResponse:
        last = len(frames) - 1
        error_at = None if plan.stream_error is None else min(plan.stream_error[0], last)
        cut_at = None if plan.truncate_after is None else min(plan.truncate_after, last)
        if error_at == 0 and plan.stream_error is not None:
            # Nothing sent yet: Ollama can still set a real status.
            return error_reply(500, plan.stream_error[1], streaming=True)
        response = web.StreamResponse(status=200, headers={"Content-Type": NDJSON_CONTENT_TYPE})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for index, frame in enumerate(frames):
                if cut_at is not None and index == cut_at:
                    _drop_connection(request)
                    return response
                if error_at is not None and index == error_at and plan.stream_error is not None:
                    await response.write(encode_json({"error": plan.stream_error[1]}) + b"\n")
                    break
                if index and plan.chunk_delay_s:
                    await asyncio.sleep(plan.chunk_delay_s)
                await response.write(encode_json(frame()) + b"\n")
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away; Ollama stops generating then too
        return response

    # --- debug surface ------------------------------------------------------------------

    async def debug_stats(self, request: web.Request) -> web.Response:
        """``GET /_fake/stats``: load counters and residency."""
        return json_reply(200, self.fake.stats())

    async def debug_requests(self, request: web.Request) -> web.Response:
        """``GET /_fake/requests[?path=/api/chat]``: the received-request log."""
        path = request.query.get("path")
        entries = [
            {"method": r.method, "path": r.path, "body": r.body, "received_at": r.received_at}
            for r in self.fake.requests
            if path is None or r.path == path
        ]
        return json_reply(200, {"requests": entries})

    async def debug_faults(self, request: web.Request) -> web.Response:
        """``GET /_fake/faults``: the faults in force."""
        return json_reply(200, {"faults": [a.as_json() for a in self.fake.faults.active]})

    async def debug_add_faults(self, request: web.Request) -> web.Response:
        """``POST /_fake/faults``: add one fault object or a list of them."""
        try:
            raw = json.loads(await request.read() or b"null")
            faults = _FAULT_LIST.validate_python(raw if isinstance(raw, list) else [raw])
        except (json.JSONDecodeError, ValidationError) as exc:
            return error_reply(400, str(exc))
        added = [self.fake.faults.add(fault).as_json() for fault in faults]
        return json_reply(200, {"faults": added})

    async def debug_clear_faults(self, request: web.Request) -> web.Response:
        """``DELETE /_fake/faults``: back to normal behaviour."""
        self.fake.faults.clear()
        return json_reply(200, {"faults": []})

    async def debug_reset(self, request: web.Request) -> web.Response:
        """``POST /_fake/reset``: clear the request log, the counters and the faults."""
        self.fake.reset()
        return json_reply(200, self.fake.stats())


class _Shape:
    """Builds reply objects in chat or generate form, keys in Ollama's order."""

    def __init__(self, endpoint: Literal["chat", "generate"], model_ref: str) -> None:
        self.endpoint = endpoint
        self.model_ref = model_ref

    def delta(self, content: str, thinking: str = "") -> dict[str, Any]:
        if self.endpoint == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            return {
                "model": self.model_ref,
                "created_at": _now(),
                "message": message,
                "done": False,
            }
        body: dict[str, Any] = {"model": self.model_ref, "created_at": _now(), "response": content}
        if thinking:
            body["thinking"] = thinking
        body["done"] = False
        return body

    def final(
        self, content: str, done_reason: str, metrics: Mapping[str, Any], thinking: str = ""
    ) -> dict[str, Any]:
        if self.endpoint == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            return {
                "model": self.model_ref,
                "created_at": _now(),
                "message": message,
                "done_reason": done_reason,
                "done": True,
                **metrics,
            }
        body: dict[str, Any] = {"model": self.model_ref, "created_at": _now(), "response": content}
        if thinking:
            body["thinking"] = thinking
        body |= {"done": True, "done_reason": done_reason}
        context = metrics.get("context")
        if context:
            body["context"] = context
        body |= {key: value for key, value in metrics.items() if key != "context"}
        return body

    def frames(self, completion: Completion, metrics: Mapping[str, Any]) -> Iterator[Frame]:
        for piece in completion.thinking:
            yield partial(self.delta, "", thinking=piece)
        for piece in completion.content:
            yield partial(self.delta, piece)
        yield partial(self.final, "", completion.done_reason, metrics)


def _with_content_faults(completion: Completion, plan: FaultPlan, spec: FormatSpec) -> Completion:
    if plan.content is None and not plan.missing_fields:
        return completion
    content = completion.content_text
    if plan.missing_fields:
        content = drop_fields(content, plan.missing_fields)
    if plan.content is FaultKind.MALFORMED_JSON:
        content = malform_json(content)
    elif plan.content is FaultKind.SCHEMA_VIOLATION:
        content = violate_schema(content, spec.schema)
    return Completion(
        thinking=completion.thinking,
        content=tuple(split_pieces(content)),
        done_reason=completion.done_reason,
        prompt_eval_count=completion.prompt_eval_count,
    )


def _drop_connection(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.close()
