"""Ollama's routes, framed as gin frames them: ``c.JSON`` replies (an error is ``{"error": …}``),
NDJSON streams ending with a ``done: true`` line or an ``{"error": …}`` line."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web

from standins.ollama import answers, wire
from standins.ollama.faults import FaultPlan
from standins.ollama.models import InstalledModel, QueueFullError, load_options

if TYPE_CHECKING:
    from standins.ollama.server import FakeOllama

__all__ = ["OllamaRoutes", "error_reply", "json_reply"]

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
IMAGE_FAILURE_MESSAGE = "failed to process inputs: unable to make llava embedding from image"
# Synthetic per-token costs (a mid-range GPU), reported so clients can compute tokens/s.
_PROMPT_NS_PER_TOKEN = 150_000
_EVAL_NS_PER_TOKEN = 20_000_000

Frame = Callable[[], dict[str, Any]]


def json_reply(status: int, payload: Any, content_type: str = JSON_CONTENT_TYPE) -> web.Response:
    """A JSON response framed like gin's ``c.JSON``."""
    return web.Response(
        status=status, body=wire.encode_json(payload), headers={"Content-Type": content_type}
    )


def error_reply(status: int, message: str, *, streaming: bool = False) -> web.Response:
    """Ollama's error response; a stream's early failure is plain ``application/json``."""
    content_type = "application/json" if streaming else JSON_CONTENT_TYPE
    return json_reply(status, {"error": message}, content_type)


def _metrics(completion: answers.Completion, started_ns: int, load_ns: int) -> dict[str, int]:
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
    return {key: value for key, value in metrics.items() if value}  # Go's omitempty


def _frame(
    model: str, content: str, thinking: str = "", done: tuple[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """One chat reply object (a delta, or with ``done`` the last line), keys in Ollama's order."""
    message = {"role": "assistant", "content": content} | (
        {"thinking": thinking} if thinking else {}
    )
    body = {"model": model, "created_at": wire.rfc3339_nano(time.time_ns()), "message": message}
    return body | (
        {"done": False} if done is None else {"done_reason": done[0], "done": True, **done[1]}
    )


def _frames(model: str, completion: answers.Completion, metrics: Mapping[str, Any]) -> list[Frame]:
    """A streamed reply: thinking deltas, content deltas, the done line."""
    deltas = [("", piece) for piece in answers.split_pieces(completion.thinking)]
    deltas += [(piece, "") for piece in answers.split_pieces(completion.content)]
    frames: list[Frame] = [
        partial(_frame, model, content, thinking) for content, thinking in deltas
    ]
    return [*frames, partial(_frame, model, "", done=(completion.done_reason, metrics))]


def _row(
    model: InstalledModel, before: Mapping[str, Any], after: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A model as ``/api/tags`` and ``/api/ps`` list it, keys in Ollama's order."""
    head = {"name": model.name, "model": model.name, **before}
    return head | {"digest": model.digest, "details": model.details(), **(after or {})}


class OllamaRoutes:
    """Ollama's API on top of one :class:`~standins.ollama.server.FakeOllama`."""

    def __init__(self, fake: FakeOllama) -> None:
        self.fake = fake

    def register(self, app: web.Application) -> None:
        """Add every route and the recording / 404 middleware to ``app``."""
        app.middlewares.append(self._middleware)
        app.router.add_get("/", self.root)
        app.router.add_get("/api/version", self.version)
        app.router.add_get("/api/tags", self.tags)
        app.router.add_get("/api/ps", self.ps, allow_head=False)
        app.router.add_post("/api/show", self.show)
        app.router.add_post("/api/chat", self.chat)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.fake.record(request.method, request.path, await request.read())
        try:
            return await handler(request)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed):  # gin answers both alike
            return web.Response(
                status=404, body=b"404 page not found", headers={"Content-Type": "text/plain"}
            )

    async def simple_faults(self, route: str, model: str | None = None) -> web.Response | None:
        """Apply the delay and error faults of a request that generates no text."""
        plan = self.fake.faults.take(route, model, generating=False)
        if plan.delay_s:
            await asyncio.sleep(plan.delay_s)
        return error_reply(*plan.error) if plan.error else None

    async def root(self, request: web.Request) -> web.Response:
        """``GET /``: the liveness text."""
        return web.Response(text="Ollama is running", content_type="text/plain", charset="utf-8")

    async def version(self, request: web.Request) -> web.Response:
        """``GET /api/version``."""
        failed = await self.simple_faults("version")
        return failed or json_reply(200, {"version": self.fake.settings.version})

    async def tags(self, request: web.Request) -> web.Response:
        """``GET /api/tags``: installed models."""
        failed = await self.simple_faults("tags")
        modified = {"modified_at": wire.rfc3339_nano(self.fake.catalogue.modified_at_ns)}
        rows = [_row(m, modified | {"size": m.size}) for m in self.fake.catalogue]
        return failed or json_reply(200, {"models": rows})

    async def ps(self, request: web.Request) -> web.Response:
        """``GET /api/ps``: resident models, latest expiry first."""
        failed = await self.simple_faults("ps")
        if failed:
            return failed
        residency, rows = self.fake.residency, []
        for runner in residency.loaded.values():
            num_ctx = runner.options["num_ctx"]
            size = runner.model.resident_bytes(num_ctx)
            # A busy runner's timer has not started: Ollama counts its expiry from now.
            expires = runner.expires_at_ns or time.time_ns() + runner.session_ns
            after = {"expires_at": wire.rfc3339_nano(expires), "size_vram": size}
            after["context_length"] = num_ctx
            rows.append((expires // 10**9, _row(runner.model, {"size": size}, after)))
        rows.sort(key=lambda row: row[0], reverse=True)
        return json_reply(200, {"models": [row for _, row in rows]})

    async def show(self, request: web.Request) -> web.Response:
        """``POST /api/show``: model metadata with ``capabilities``."""
        try:
            name = wire.decode_show(await request.read())
        except wire.GoDecodeError as exc:
            return error_reply(400, str(exc))
        if not name:
            return error_reply(400, "model is required")
        model = self.fake.catalogue.find(name)
        if model is None:
            return error_reply(404, f"model '{name}' not found")
        failed = await self.simple_faults("show", model.name)
        return failed or json_reply(200, self._show_body(model))

    def _show_body(self, model: InstalledModel) -> dict[str, Any]:
        parameter_lines = "\n".join(f"PARAMETER {line}" for line in model.parameters.splitlines())
        modelfile = (
            f'# Modelfile generated by "ollama show"\n'
            f"# To build a new Modelfile based on this, replace FROM with:\n# FROM {model.name}\n\n"
            f"FROM /usr/share/ollama/.ollama/models/blobs/sha256-{model.digest}\n"
            f'TEMPLATE """{model.template}"""\n{parameter_lines}\n'
        )
        body: dict[str, Any] = {"license": model.license} if model.license else {}
        body["modelfile"] = modelfile
        if model.parameters:
            body["parameters"] = model.parameters
        body |= {"template": model.template, "details": model.details()}
        count = int(float(model.parameter_size.rstrip("B")) * 1e9)  # a short GGUF metadata map
        body["model_info"] = {
            "general.architecture": model.family,
            "general.parameter_count": count,
            f"{model.family}.context_length": model.context_length,
        }
        if model.vision:
            body["projector_info"] = {"general.architecture": "clip", "clip.vision.image_size": 336}
        body["capabilities"] = list(model.capabilities)
        return body | {"modified_at": wire.rfc3339_nano(self.fake.catalogue.modified_at_ns)}

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/chat``."""
        started = time.monotonic_ns()
        try:
            req = wire.decode_chat(await request.read())
        except wire.GoDecodeError as exc:
            return error_reply(400, str(exc))
        return await self.run_chat(request, req, started)

    async def run_chat(
        self, request: web.Request, req: wire.ChatRequest, started: int
    ) -> web.StreamResponse:
        """Answer a decoded chat request (also what ``/v1/chat/completions`` becomes);
        ``started`` is ``time.monotonic_ns()`` at arrival, for the metrics."""
        if not req.model:
            return error_reply(400, "model is required")
        model = self.fake.catalogue.find(req.model)
        if model is None:
            return error_reply(404, f"model '{req.model}' not found")
        is_load_request = not req.messages
        if is_load_request and req.keep_alive_ns == 0:
            self.fake.residency.expire(model.name)
            failed = await self.simple_faults("chat", model.name)
            return failed or json_reply(200, _frame(req.model, "", done=("unload", {})))
        if not model.thinking and req.think not in (None, False):
            return error_reply(400, f'"{req.model}" does not support thinking')
        plan = self.fake.faults.take("chat", model.name, generating=not is_load_request)
        if plan.delay_s:
            await asyncio.sleep(plan.delay_s)
        try:
            wire.check_options(req.options)
        except wire.GoDecodeError as exc:
            return error_reply(500, str(exc))
        options = load_options(req.options, model, self.fake.settings.context_length)
        try:
            runner = await self.fake.residency.acquire(model, options, req.keep_alive_ns)
        except QueueFullError as exc:
            return error_reply(503, str(exc))
        try:
            load_ns = time.monotonic_ns() - started
            if plan.error and is_load_request:
                return error_reply(*plan.error)
            if is_load_request:
                return json_reply(200, _frame(req.model, "", done=("load", {})))
            async with runner.slots:
                return await self._answer(request, model, req, plan, started, load_ns)
        finally:
            await self.fake.residency.release(runner)

    async def _answer(
        self,
        request: web.Request,
        model: InstalledModel,
        req: wire.ChatRequest,
        plan: FaultPlan,
        started: int,
        load_ns: int,
    ) -> web.StreamResponse:
        try:
            call = answers.ChatCall(
                model.name, req.messages, answers.parse_format(req.format), req.options
            )
            completion = answers.compose_reply(self.fake.script, call, model, req.think)
        except answers.InvalidFormatError as exc:
            return error_reply(500, str(exc), streaming=req.stream)
        except answers.UnreadableImageError:
            return error_reply(500, IMAGE_FAILURE_MESSAGE, streaming=req.stream)
        if plan.error:
            return error_reply(*plan.error, streaming=req.stream)
        completion = replace(completion, content=plan.spoil(completion.content, call.format))
        metrics = _metrics(completion, started, load_ns)
        if req.stream:
            return await self._stream(request, _frames(req.model, completion, metrics), plan)
        if plan.chunk_delay_s:
            await asyncio.sleep(plan.chunk_delay_s * completion.eval_count)
        if plan.truncate_after is not None:
            _drop_connection(request)
            return web.Response(status=500)
        if plan.stream_error is not None:  # unstreamed, Ollama turns it into a 500
            return error_reply(500, plan.stream_error[1])
        done = (completion.done_reason, metrics)
        return json_reply(200, _frame(req.model, completion.content, completion.thinking, done))

    async def _stream(
        self, request: web.Request, frames: list[Frame], plan: FaultPlan
    ) -> web.StreamResponse:
        last = len(frames) - 1
        error_at = None if plan.stream_error is None else min(plan.stream_error[0], last)
        cut_at = None if plan.truncate_after is None else min(plan.truncate_after, last)
        if error_at == 0 and plan.stream_error is not None:  # nothing sent: a real status
            return error_reply(500, plan.stream_error[1], streaming=True)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for index, frame in enumerate(frames):
                if index == cut_at:
                    _drop_connection(request)
                    return response
                if index == error_at and plan.stream_error is not None:
                    await response.write(wire.encode_json({"error": plan.stream_error[1]}) + b"\n")
                    break
                if index and plan.chunk_delay_s:
                    await asyncio.sleep(plan.chunk_delay_s)
                await response.write(wire.encode_json(frame()) + b"\n")
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away; Ollama stops generating then too
        return response


def _drop_connection(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()
