"""The stand-in's state (what a ComfyUI process keeps, what tests read, the mutable
``faults``), its prompt queue and worker, and :func:`run_fake_comfyui` serving it on a port."""

from __future__ import annotations

import asyncio
import copy
import heapq
import logging
import os
import shutil
import struct
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

from standins._server import AppServer
from standins.comfyui.catalog import RECORDED, FileResolver, NodeCatalog
from standins.comfyui.execution import OutputCache, PromptRun, QueueItem
from standins.comfyui.jobs import is_newer_api, valid_job_id
from standins.comfyui.routes import StoredUpload, create_app
from standins.comfyui.settings import FakeComfyUISettings, FaultSettings
from standins.comfyui.validation import NO_PROMPT_ERROR, PromptValidator

__all__ = ["Counters", "FakeComfyUI", "RunningFakeComfyUI", "SubmittedPrompt", "run_fake_comfyui"]

log = logging.getLogger("fake_comfyui")

MAXIMUM_HISTORY_SIZE = 10000


@dataclass
class Counters:
    """Cumulative counts for tests; they survive ``restart`` (the ComfyUI state does not)."""

    prompt_requests: int = 0
    prompts_submitted: int = 0
    prompts_started: int = 0
    prompts_succeeded: int = 0
    prompts_failed: int = 0
    prompts_interrupted: int = 0
    interrupts_received: int = 0
    queue_clears: int = 0
    uploads: int = 0
    ws_drops: int = 0
    http_500_injected: int = 0
    connections_refused: int = 0
    restarts: int = 0


@dataclass(frozen=True)
class SubmittedPrompt:
    """One ``POST /prompt`` with a JSON body, accepted (200) or rejected (400)."""

    prompt_id: str | None
    status: int
    number: int | float | None
    client_id: Any
    body: Any = field(repr=False)


class FakeComfyUI:
    """State of one stand-in ComfyUI server: ``faults`` (mutable at runtime), ``counters`` and
    the logs (``submitted``, ``deleted_ids``, ``interrupt_requests``, ``upload_records``,
    ``request_log``), ``history`` by prompt id."""

    def __init__(self, settings: FakeComfyUISettings | None = None) -> None:
        self.settings = settings or FakeComfyUISettings()
        self.faults: FaultSettings = self.settings.faults.model_copy(deep=True)
        self.faults.add_listener(self._fault_changed)
        self._owns_data_dir = self.settings.data_dir is None
        data_dir = self.settings.data_dir or tempfile.mkdtemp(prefix="fake-comfyui-")
        self.data_dir = os.path.abspath(str(data_dir))
        self.files = FileResolver(self.data_dir)
        self.input_dir, self.output_dir, self.temp_dir = self.files.dirs.values()
        for path in (self.input_dir, self.output_dir):
            os.makedirs(path, exist_ok=True)
        self.clean_temp()
        example = os.path.join(self.input_dir, "example.png")  # a fresh install ships it
        if not os.path.exists(example):
            Image.radial_gradient("L").resize((64, 64)).convert("RGB").save(example)
        self.catalog = NodeCatalog(self.settings, self.files)
        self.validator = PromptValidator(self.catalog, self.files)
        self.counters = Counters()
        self.submitted: list[SubmittedPrompt] = []
        self.deleted_ids: list[str] = []
        self.interrupt_requests: list[str | None] = []
        self.cancel_requests: list[str] = []
        self.upload_records: list[StoredUpload] = []
        self.request_log: list[tuple[str, str, int]] = []
        self._history_changed = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self.transports: dict[int, asyncio.Transport] = {}
        """The websockets' TCP connections by ``id(ws)``, for faults that abort them."""
        self._wake = asyncio.Event()
        self.reset_state()

    def _fault_changed(self, name: str, value: Any) -> None:
        if name == "hold_queue" and not value:
            self._wake.set()

    def reset_state(self) -> None:
        """Forget what a real ComfyUI keeps only in memory: queue, history, cache, sockets."""
        self.number = 0
        self._seq = 0
        self._queue: list[QueueItem] = []
        self._running: QueueItem | None = None
        self.history: dict[str, dict[str, Any]] = {}
        self.cache = OutputCache()
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self._interrupt = False
        self._free_requested = False
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.feature_flags: dict[str, dict[str, Any]] = {}
        self._outbox: asyncio.Queue[tuple[str, Any, Any, str | None]] = asyncio.Queue()

    def set_model_files(self, **lists: list[str]) -> None:
        """Change the model files it "has" (``loras=[...]``) or the node types it lacks
        (``unavailable_nodes=[...]``) at runtime, by settings field."""
        self.settings = self.settings.model_copy(update=lists)
        self.catalog = NodeCatalog(self.settings, self.files)
        self.validator.catalog = self.catalog

    def free_memory(self) -> None:
        """``POST /free {"free_memory": true}``: drop the cache (after the running prompt)."""
        self._free_requested = self._running is not None
        if not self._free_requested:
            self.cache = OutputCache()

    def clean_temp(self) -> None:
        """Empty temp/ (ComfyUI does it at start)."""
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        os.makedirs(self.temp_dir, exist_ok=True)

    async def start(self) -> None:
        """Start the prompt worker and the websocket publisher (idempotent)."""
        if not self._tasks:
            self._wake.set()
            self._tasks = [
                asyncio.create_task(self._worker(), name="fake-comfyui-worker"),
                asyncio.create_task(self._publisher(), name="fake-comfyui-publisher"),
            ]

    async def shutdown(self) -> None:
        """Stop worker and publisher and abort the websockets, as if the process died."""
        self.abort_websockets()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        """Remove the data dir if this instance created it."""
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def queued_ids(self) -> list[str]:
        """Pending prompt ids in the order the worker will take them."""
        return [item.prompt_id for item in sorted(self._queue)]

    @property
    def running_ids(self) -> list[str]:
        """The prompt id being executed (at most one)."""
        return [self._running.prompt_id] if self._running else []

    def queue_remaining(self) -> int:
        """Pending plus running prompts (``exec_info.queue_remaining``)."""
        return len(self._queue) + (self._running is not None)

    async def wait_for_history(self, prompt_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
        """Wait until the prompt has a history entry (finished, failed or interrupted)."""
        async with asyncio.timeout(timeout_s), self._history_changed:
            await self._history_changed.wait_for(lambda: prompt_id in self.history)
        return self.history[prompt_id]

    async def wait_until_idle(self, timeout_s: float = 30.0) -> None:
        """Wait until nothing is pending or running."""
        async with asyncio.timeout(timeout_s), self._history_changed:
            await self._history_changed.wait_for(lambda: self.queue_remaining() == 0)

    def system_stats(self, host: str | None, port: int | None) -> dict[str, Any]:
        """The ``GET /system_stats`` body: the recorded GPU machine, this version and address."""
        stats: dict[str, Any] = copy.deepcopy(RECORDED["system_stats"])
        stats["system"]["comfyui_version"] = self.settings.comfyui_version
        stats["system"]["argv"][2:] = [host or "127.0.0.1", "--port", str(port or 8188)]
        return stats

    def send(self, event: str, data: Any, sid: str | None = None) -> None:
        """Queue a JSON message for one client id, or for every socket when ``sid`` is None."""
        self._outbox.put_nowait(("json", event, data, sid))

    def send_binary(self, event_type: int, payload: bytes, sid: str | None = None) -> None:
        """Queue a binary frame (4-byte big-endian event type, then ``payload``)."""
        self._outbox.put_nowait(("bytes", event_type, payload, sid))

    def drop_websockets(self) -> None:
        """Abort every websocket once the messages queued before are delivered."""
        self._outbox.put_nowait(("drop", None, None, None))

    def abort_websockets(self) -> None:
        """Abort every websocket connection now (no close frame: the peer sees a reset)."""
        for transport in self.transports.values():
            transport.abort()
            self.counters.ws_drops += 1
        self.transports.clear()

    def supports_preview_metadata(self, sid: str | None) -> bool:
        """Whether that client sent ``feature_flags`` with ``supports_preview_metadata``."""
        return bool(self.feature_flags.get(sid or "", {}).get("supports_preview_metadata"))

    def queue_info(self) -> dict[str, Any]:
        """``{"exec_info": {"queue_remaining": N}}``."""
        return {"exec_info": {"queue_remaining": self.queue_remaining()}}

    def queue_updated(self) -> None:
        """Broadcast ``status`` (ComfyUI does it on every queue change)."""
        self.send("status", {"status": self.queue_info()})

    async def _publisher(self) -> None:
        # One ordered outbox for every socket, like ComfyUI's publish loop.
        while True:
            kind, event, data, sid = await self._outbox.get()
            if kind == "drop":
                self.abort_websockets()
                continue
            targets = list(self.sockets.values()) if sid is None else [self.sockets.get(sid)]
            for ws in targets:
                try:
                    if ws is not None and kind == "json":
                        await ws.send_json({"type": event, "data": data})
                    elif ws is not None:
                        await ws.send_bytes(struct.pack(">I", event) + data)
                except Exception as ex:  # a closing socket; the real server logs and goes on
                    log.debug("send error: %s", ex)

    def take_interrupt(self) -> bool:
        """Consume the interrupt flag (checked at node start and at every sampler step)."""
        interrupted, self._interrupt = self._interrupt, False
        return interrupted

    def interrupt(self, prompt_id: str | None = None) -> None:
        """``POST /interrupt``: targeted only if that prompt runs, global without an id."""
        self.counters.interrupts_received += 1
        self.interrupt_requests.append(prompt_id)
        if not prompt_id or prompt_id in self.running_ids:
            self._interrupt = True
        else:
            log.info("Prompt %s is not currently running, skipping interrupt", prompt_id)

    def queue_snapshot(self) -> dict[str, Any]:
        """The ``GET /queue`` body (pending in heap order, as the real server returns it)."""
        running = [self._running.public()] if self._running else []
        return {"queue_running": running, "queue_pending": [i.public() for i in self._queue]}

    def clear_queue(self) -> None:
        """``POST /queue {"clear": true}``: drop every pending prompt (the running one goes on)."""
        self.counters.queue_clears += 1
        self._queue = []
        self.queue_updated()

    def delete_queue_item(self, prompt_id: Any) -> None:
        """Remove a pending prompt; unknown or running ids are ignored."""
        for index, item in enumerate(self._queue):
            if item.prompt_id == prompt_id:
                self._queue.pop(index)
                heapq.heapify(self._queue)
                if not self._queue:  # the real server's wipe_queue() also says so
                    self.queue_updated()
                self.queue_updated()
                self.deleted_ids.append(item.prompt_id)
                return

    def get_history(
        self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1
    ) -> dict[str, Any]:
        """``GET /history`` (all, or ``max_items`` from ``offset``) or one entry."""
        if prompt_id is not None:
            entry = self.history.get(prompt_id)
            return {} if entry is None else {prompt_id: copy.deepcopy(entry)}
        if offset < 0 and max_items is not None:
            offset = len(self.history) - max_items
        ids = list(self.history)[max(offset, 0) :]
        return {key: self.history[key] for key in ids[:max_items]}

    def submit(self, body: Any) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) for a parsed ``POST /prompt`` body; the expressions are
        the real handler's, so odd bodies fail the same way (a number: TypeError, a 500)."""
        self.counters.prompt_requests += 1
        if "number" in body:
            number: int | float = float(body["number"])
        else:
            number = -self.number if "front" in body and body["front"] else self.number  # noqa: RUF019
            self.number += 1
        client_id = body.get("client_id") if isinstance(body, dict) else None

        def reply(status: int, prompt_id: str | None, answer: dict[str, Any]) -> tuple[int, Any]:
            self.submitted.append(SubmittedPrompt(prompt_id, status, number, client_id, body))
            return status, answer

        if "prompt" not in body:
            return reply(400, None, {"error": dict(NO_PROMPT_ERROR), "node_errors": {}})
        prompt = body["prompt"]
        newer = is_newer_api(self.settings.comfyui_version)
        if newer and body.get("prompt_id") is not None and not valid_job_id(body["prompt_id"]):
            return reply(400, None, {"error": RECORDED["invalid_prompt_id"], "node_errors": {}})
        if newer:  # absent or null: minted; 0.3.64 took any value ("None" for null)
            prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        else:
            prompt_id = str(body.get("prompt_id", uuid.uuid4()))
        valid, error, outputs, node_errors = self.validator.validate_prompt(
            prompt, body.get("partial_execution_targets")
        )
        extra_data = body["extra_data"] if "extra_data" in body else {}  # noqa: SIM401
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        if newer:
            extra_data["create_time"] = int(time.time() * 1000)
        if not valid:
            log.warning("invalid prompt: %s", error)
            return reply(400, prompt_id, {"error": error, "node_errors": node_errors})
        self._seq += 1
        item = QueueItem(number, prompt_id, self._seq, prompt, extra_data, outputs)
        heapq.heappush(self._queue, item)
        self.queue_updated()
        self._wake.set()
        self.counters.prompts_submitted += 1
        return reply(
            200, prompt_id, {"prompt_id": prompt_id, "number": number, "node_errors": node_errors}
        )

    async def _worker(self) -> None:
        # One prompt at a time, lowest number first (FIFO; `front` uses negative numbers).
        while True:
            while not self._queue or self.faults.hold_queue:
                self._wake.clear()
                await self._wake.wait()
            if self.faults.queue_delay_s:
                await asyncio.sleep(self.faults.queue_delay_s)
                if not self._queue or self.faults.hold_queue:
                    continue
            item = self._running = heapq.heappop(self._queue)
            self._interrupt = False
            self.queue_updated()
            self.counters.prompts_started += 1
            run = PromptRun(self, item)
            try:
                await run.run()
            except Exception:  # pragma: no cover - a bug in the stand-in, not a node failure
                log.exception("fake ComfyUI executor crashed on %s", item.prompt_id)
                run.success = False
            await self._finish(run)
            if self.client_id is not None:
                self.send("executing", {"node": None, "prompt_id": item.prompt_id}, self.client_id)
            if self._free_requested:
                self.free_memory()

    async def _finish(self, run: PromptRun) -> None:
        # History is written before the `status` broadcast and `executing {node: null}`.
        self._running = None
        if len(self.history) > MAXIMUM_HISTORY_SIZE:
            self.history.pop(next(iter(self.history)))
        if run.success:
            self.counters.prompts_succeeded += 1
        elif any(m[0] == "execution_interrupted" for m in run.messages):
            self.counters.prompts_interrupted += 1
        else:
            self.counters.prompts_failed += 1
        status = "success" if run.success else "error"
        outputs, meta = run.history()
        self.history[run.pid] = {
            "prompt": run.item.public(),
            "outputs": outputs,
            "status": {"status_str": status, "completed": run.success, "messages": run.messages},
            "meta": meta,
        }
        self.queue_updated()
        async with self._history_changed:
            self._history_changed.notify_all()


class RunningFakeComfyUI(AppServer):
    """A stand-in (``fake``) listening on a TCP port; ``stop``/``restart`` keep the port."""

    shutdown_timeout_s = 0.5

    def __init__(self, fake: FakeComfyUI, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.fake = fake
        self._listener_lock = asyncio.Lock()
        fake.faults.add_listener(self._fault_changed)

    @property
    def ws_url(self) -> str:
        """Websocket URL (add ``?clientId=...``)."""
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def is_running(self) -> bool:
        """Whether the server is up (listening unless it refuses connections)."""
        return self._runner is not None

    def banner(self) -> str:
        """What ``python -m standins.comfyui`` logs."""
        return (
            "fake ComfyUI stand-in (NOT a real ComfyUI: no models, no GPU, synthetic images) "
            f"listening on {self.url}, data dir {self.fake.data_dir}"
        )

    def make_app(self) -> web.Application:
        """ComfyUI's routes on ``fake``."""
        return create_app(self.fake)

    async def start(self) -> None:
        """Start the worker and listen (unless ``faults.refuse_connections`` is set)."""
        await self.fake.start()
        await super().start()
        await self._sync_listener()

    async def stop(self) -> None:
        """Go down: stop listening, drop connections and websockets, stop the worker."""
        await self.fake.shutdown()
        await super().stop()

    async def refuse_connections(self, refuse: bool = True) -> None:
        """Set ``faults.refuse_connections`` and wait until the port is closed (or open again);
        open connections are dropped at their next request, websockets at once."""
        self.fake.faults.refuse_connections = refuse
        await self._sync_listener()

    def _fault_changed(self, name: str, value: Any) -> None:
        if name == "refuse_connections" and self._runner is not None:
            self.spawn(self._sync_listener())

    async def _sync_listener(self) -> None:
        async with self._listener_lock:
            if not self.fake.faults.refuse_connections:
                await self.listen()
            elif self._site is not None:
                await self.unlisten()
                self.fake.abort_websockets()

    async def restart(self, *, fresh_state: bool = True, down_for_s: float | None = None) -> None:
        """Stop, stay down ``down_for_s`` (default: the ``restart_s`` setting), listen again on
        the same port; ``fresh_state`` forgets queue, history, cache and sockets."""
        await self.stop()
        await asyncio.sleep(self.fake.settings.restart_s if down_for_s is None else down_for_s)
        if fresh_state:
            self.fake.reset_state()
            self.fake.clean_temp()
        self.fake.counters.restarts += 1
        await self.start()

    async def close(self) -> None:
        """Stop and remove the temporary data dir."""
        await super().close()
        self.fake.close()


@asynccontextmanager
async def run_fake_comfyui(
    settings: FakeComfyUISettings | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningFakeComfyUI]:
    """Serve a stand-in ComfyUI on ``host``:``port`` (0: a free one) for an ``async with``."""
    running = RunningFakeComfyUI(FakeComfyUI(settings), host, port)
    await running.start()
    try:
        yield running
    finally:
        await running.close()
