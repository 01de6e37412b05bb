"""Fake ComfyUI: the server state, the single prompt worker, and running it on a port.

``FakeComfyUI`` holds what a ComfyUI process keeps (queue, history, cache, sockets) plus
what tests want to see (counters, logs) and the mutable ``faults``. ``create_app`` (in
``routes.py``) serves it; ``run_fake_comfyui`` runs it on a port::

    async with run_fake_comfyui(FakeComfyUISettings(step_delay_s=0)) as comfy:
        ...  # talk to comfy.url, read comfy.fake.counters, set comfy.fake.faults.*
        await comfy.restart()  # down and up again on the same port, memory lost
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import heapq
import logging
import os
import shutil
import struct
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

from standins.comfyui.catalog import NodeCatalog
from standins.comfyui.execution import OutputCache, PromptRun, QueueItem
from standins.comfyui.routes import create_app
from standins.comfyui.settings import FakeComfyUISettings, FaultSettings
from standins.comfyui.storage import StoredUpload
from standins.comfyui.validation import NO_PROMPT_ERROR, FileResolver, PromptValidator

__all__ = [
    "Counters",
    "FakeComfyUI",
    "RunningFakeComfyUI",
    "SubmittedPrompt",
    "UploadRecord",
    "create_app",
    "run_fake_comfyui",
]

log = logging.getLogger("fake_comfyui")

MAXIMUM_HISTORY_SIZE = 10000
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")


@dataclass
class Counters:
    """Cumulative counts for tests; they survive ``restart`` (the ComfyUI state does not)."""

    http_requests: int = 0
    prompt_requests: int = 0
    prompts_submitted: int = 0
    prompts_rejected: int = 0
    prompts_started: int = 0
    prompts_succeeded: int = 0
    prompts_failed: int = 0
    prompts_interrupted: int = 0
    interrupts_received: int = 0
    queue_deletes: int = 0
    queue_clears: int = 0
    uploads: int = 0
    ws_connections: int = 0
    ws_drops: int = 0
    http_500_injected: int = 0
    connections_refused: int = 0
    restarts: int = 0


@dataclass(frozen=True)
class UploadRecord:
    """One ``POST /upload/image`` that was accepted."""

    name: str
    subfolder: str
    type: str
    size: int
    written: bool


@dataclass(frozen=True)
class SubmittedPrompt:
    """One ``POST /prompt`` with a JSON body, accepted (200) or rejected (400)."""

    prompt_id: str | None
    status: int
    number: int | float | None
    client_id: Any
    body: Any = field(repr=False)


class FakeComfyUI:
    """State of one fake ComfyUI server.

    Args:
        settings: model files, delays, data dir and the faults in force at start.

    Attributes:
        faults: mutable at runtime (``fake.faults.http_delay_s = 2``).
        counters: cumulative counts; ``submitted``, ``deleted_ids``, ``interrupt_requests``,
            ``upload_records`` and ``request_log`` keep the details.
        history: the ``GET /history`` entries by prompt id.
    """

    def __init__(self, settings: FakeComfyUISettings | None = None) -> None:
        self.settings = settings or FakeComfyUISettings()
        self.faults_listeners: list[Callable[[str, Any], None]] = []
        self._faults = self.settings.faults.model_copy(deep=True)
        self._faults.add_listener(self._fault_changed)
        if self.settings.data_dir is None:
            self.data_dir = tempfile.mkdtemp(prefix="fake-comfyui-")
            self._owns_data_dir = True
        else:
            self.data_dir = os.path.abspath(str(self.settings.data_dir))
            self._owns_data_dir = False
        self.input_dir = os.path.join(self.data_dir, "input")
        self.output_dir = os.path.join(self.data_dir, "output")
        self.temp_dir = os.path.join(self.data_dir, "temp")
        for path in (self.input_dir, self.output_dir):
            os.makedirs(path, exist_ok=True)
        self.clean_temp()
        self._ensure_example_image()
        self.files = FileResolver(self.input_dir, self.output_dir, self.temp_dir)
        self.catalog = NodeCatalog(self.settings, self.input_dir)
        self.validator = PromptValidator(self.catalog, self.files)
        self.counters = Counters()
        self.submitted: list[SubmittedPrompt] = []
        self.deleted_ids: list[str] = []
        self.interrupt_requests: list[str | None] = []
        self.upload_records: list[UploadRecord] = []
        self.request_log: list[tuple[str, str, int]] = []
        self._history_changed = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self._transports: dict[int, asyncio.Transport] = {}
        self.reset_state()

    @property
    def faults(self) -> FaultSettings:
        """The faults in force; change fields at runtime (or assign a new FaultSettings)."""
        return self._faults

    @faults.setter
    def faults(self, value: FaultSettings) -> None:
        self._faults = value
        value.add_listener(self._fault_changed)
        for name in type(value).model_fields:
            self._fault_changed(name, getattr(value, name))

    def _fault_changed(self, name: str, value: Any) -> None:
        if name == "hold_queue" and not value and self._queue_event is not None:
            self._queue_event.set()
        for listener in list(self.faults_listeners):
            listener(name, value)

    # ------------------------------------------------------------------ lifecycle
    def reset_state(self) -> None:
        """Forget what a real ComfyUI keeps only in memory: queue, history, cache, sockets."""
        self.number = 0
        self._seq = 0
        self._queue: list[QueueItem] = []
        self._running: dict[int, QueueItem] = {}
        self._task_counter = 0
        self.history: dict[str, dict[str, Any]] = {}
        self.cache = OutputCache()
        self._node_states: dict[tuple[str, str], dict[str, Any]] = {}
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self._interrupt = False
        self._free_requested = False
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.sockets_metadata: dict[str, dict[str, Any]] = {}
        self._outbox: asyncio.Queue[tuple[str, Any, Any, str | None]] | None = None
        self._queue_event: asyncio.Event | None = None

    def set_model_files(self, **lists: list[str]) -> None:
        """Change the model files it "has" at runtime (like dropping files into models/).

        Takes the settings' field names: ``checkpoints``, ``loras``, ``controlnets``,
        ``upscale_models``, ``vae``, ``text_encoders``, ``diffusion_models``.
        """
        self.settings = self.settings.model_copy(update=lists)
        self.catalog = NodeCatalog(self.settings, self.input_dir)
        self.validator.catalog = self.catalog

    def free_memory(self) -> None:
        """``POST /free {"free_memory": true}``: drop the output cache, between two prompts."""
        if self._running:
            self._free_requested = True
            return
        self._free_requested = False
        self.cache = OutputCache()
        self._node_states.clear()

    def clean_temp(self) -> None:
        """Empty temp/ (ComfyUI does it at start)."""
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        os.makedirs(self.temp_dir, exist_ok=True)

    def _ensure_example_image(self) -> None:
        # A fresh ComfyUI install ships input/example.png; LoadImage lists it.
        path = os.path.join(self.input_dir, "example.png")
        if not os.path.exists(path):
            img = Image.new("RGB", (64, 64))
            img.putdata([(x * 4, y * 4, 128) for y in range(64) for x in range(64)])
            img.save(path)

    async def start(self) -> None:
        """Start the prompt worker and the websocket publisher (idempotent)."""
        if self._tasks:
            return
        self._outbox = asyncio.Queue()
        self._queue_event = asyncio.Event()
        if self._queue:
            self._queue_event.set()
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
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def close(self) -> None:
        """Remove the data dir if this instance created it."""
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def node_state(self, node_id: str, class_type: str) -> dict[str, Any]:
        """Per-node object state kept between prompts (ComfyUI's objects cache)."""
        return self._node_states.setdefault((node_id, class_type), {})

    def clean_node_states(self, prompt: dict[str, Any]) -> None:
        """Drop the state of nodes the new prompt does not have."""
        keep = {(nid, node.get("class_type")) for nid, node in prompt.items()}
        for key in [k for k in self._node_states if k not in keep]:
            del self._node_states[key]

    # ------------------------------------------------------------------ observability
    @property
    def queued_ids(self) -> list[str]:
        """Pending prompt ids in the order the worker will take them."""
        return [item.prompt_id for item in sorted(self._queue)]

    @property
    def running_ids(self) -> list[str]:
        """The prompt id being executed (at most one)."""
        return [item.prompt_id for item in self._running.values()]

    def queue_remaining(self) -> int:
        """Pending plus running prompts (``exec_info.queue_remaining``)."""
        return len(self._queue) + len(self._running)

    async def wait_for_history(self, prompt_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
        """Wait until the prompt has a history entry (finished, failed or interrupted)."""
        async with asyncio.timeout(timeout_s), self._history_changed:
            await self._history_changed.wait_for(lambda: prompt_id in self.history)
        return self.history[prompt_id]

    async def wait_until_idle(self, timeout_s: float = 30.0) -> None:
        """Wait until nothing is pending or running."""
        async with asyncio.timeout(timeout_s), self._history_changed:
            await self._history_changed.wait_for(lambda: self.queue_remaining() == 0)

    def record_upload(self, stored: StoredUpload, upload_type: str) -> None:
        """Count an accepted upload."""
        self.counters.uploads += 1
        self.upload_records.append(
            UploadRecord(stored.name, stored.subfolder, upload_type, stored.size, stored.written)
        )

    def system_stats(self, host: str | None, port: int | None) -> dict[str, Any]:
        """The ``GET /system_stats`` body (a GPU machine unless the settings say otherwise)."""
        s = self.settings
        argv = ["main.py", "--listen", host or "127.0.0.1", "--port", str(port or 8188)]
        return {
            "system": {
                "os": "posix",
                "ram_total": s.ram_total,
                "ram_free": int(s.ram_total * 0.8),
                "comfyui_version": s.comfyui_version,
                "required_frontend_version": "1.27.10",
                "installed_templates_version": "0.1.95",
                "required_templates_version": "0.1.95",
                "python_version": "3.11.7 (main, Dec  8 2023, 18:56:57) [GCC 12.2.0]",
                "pytorch_version": "2.8.0+cu128",
                "embedded_python": False,
                "argv": argv,
            },
            "devices": [
                {
                    "name": s.device_name,
                    "type": s.device_type,
                    "index": 0 if s.device_type == "cuda" else None,
                    "vram_total": s.vram_total,
                    "vram_free": int(s.vram_total * 0.9),
                    "torch_vram_total": s.vram_total // 2,
                    "torch_vram_free": s.vram_total // 4,
                }
            ],
        }

    # ------------------------------------------------------------------ websockets
    def send(self, event: str, data: Any, sid: str | None = None) -> None:
        """Queue a JSON message for one client id, or for every socket when ``sid`` is None."""
        if self._outbox is not None:
            self._outbox.put_nowait(("json", event, data, sid))

    def send_binary(self, event_type: int, payload: bytes, sid: str | None = None) -> None:
        """Queue a binary frame (4-byte big-endian event type, then ``payload``)."""
        if self._outbox is not None:
            self._outbox.put_nowait(("bytes", event_type, payload, sid))

    def drop_websockets(self) -> None:
        """Abort every websocket once the messages queued before are delivered."""
        if self._outbox is not None:
            self._outbox.put_nowait(("drop", None, None, None))

    def abort_websockets(self) -> None:
        """Abort every websocket connection now (no close frame: the peer sees a reset)."""
        for key, transport in list(self._transports.items()):
            transport.abort()
            self._transports.pop(key, None)
            self.counters.ws_drops += 1

    def track_transport(self, ws: web.WebSocketResponse, transport: Any) -> None:
        """Remember a websocket's TCP transport so faults can abort it."""
        if transport is not None:
            self._transports[id(ws)] = transport

    def untrack_transport(self, ws: web.WebSocketResponse) -> None:
        """Forget a closed websocket's transport."""
        self._transports.pop(id(ws), None)

    def supports_preview_metadata(self, sid: str | None) -> bool:
        """Whether that client sent ``feature_flags`` with ``supports_preview_metadata``."""
        if sid is None or sid not in self.sockets_metadata:
            return False
        flags = self.sockets_metadata[sid].get("feature_flags", {})
        return bool(flags.get("supports_preview_metadata", False))

    def queue_info(self) -> dict[str, Any]:
        """``{"exec_info": {"queue_remaining": N}}``."""
        return {"exec_info": {"queue_remaining": self.queue_remaining()}}

    def queue_updated(self) -> None:
        """Broadcast ``status`` (ComfyUI does it on every queue change)."""
        self.send("status", {"status": self.queue_info()})

    async def _publisher(self) -> None:
        # One ordered outbox for every socket, like ComfyUI's publish loop.
        assert self._outbox is not None
        while True:
            kind, event, data, sid = await self._outbox.get()
            if kind == "drop":
                self.abort_websockets()
                continue
            if sid is None:
                targets = list(self.sockets.values())
            else:
                targets = [self.sockets[sid]] if sid in self.sockets else []
            for ws in targets:
                try:
                    if kind == "json":
                        await ws.send_json({"type": event, "data": data})
                    else:
                        await ws.send_bytes(struct.pack(">I", event) + data)
                except Exception as ex:  # a closing socket; the real server logs and goes on
                    log.debug("send error: %s", ex)

    # ------------------------------------------------------------------ queue
    def take_interrupt(self) -> bool:
        """Consume the interrupt flag (checked at node start and at every sampler step)."""
        if self._interrupt:
            self._interrupt = False
            return True
        return False

    def clear_interrupt(self) -> None:
        """Reset the flag (done when a prompt starts)."""
        self._interrupt = False

    def interrupt(self, prompt_id: str | None = None) -> None:
        """``POST /interrupt``: targeted only if that prompt runs, global without an id."""
        self.counters.interrupts_received += 1
        self.interrupt_requests.append(prompt_id)
        if prompt_id:
            if any(item.prompt_id == prompt_id for item in self._running.values()):
                log.info("Interrupting prompt %s", prompt_id)
                self._interrupt = True
            else:
                log.info("Prompt %s is not currently running, skipping interrupt", prompt_id)
        else:
            log.info("Global interrupt (no prompt_id specified)")
            self._interrupt = True

    def queue_snapshot(self) -> dict[str, Any]:
        """The ``GET /queue`` body (pending in heap order, as the real server returns it)."""
        return {
            "queue_running": [item.public() for item in self._running.values()],
            "queue_pending": [item.public() for item in self._queue],
        }

    def wipe_queue(self, *, requested: bool = False) -> None:
        """Drop every pending prompt (the running one continues)."""
        if requested:
            self.counters.queue_clears += 1
        self._queue = []
        self.queue_updated()

    def delete_queue_item(self, prompt_id: Any) -> bool:
        """Remove a pending prompt; unknown or running ids are ignored."""
        for index, item in enumerate(self._queue):
            if item.prompt_id == prompt_id:
                if len(self._queue) == 1:
                    self.wipe_queue()
                else:
                    self._queue.pop(index)
                    heapq.heapify(self._queue)
                self.queue_updated()
                self.deleted_ids.append(item.prompt_id)
                self.counters.queue_deletes += 1
                return True
        return False

    def get_history(
        self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1
    ) -> dict[str, Any]:
        """``GET /history`` (all, or the last ``max_items`` from ``offset``) or one entry."""
        if prompt_id is None:
            out: dict[str, Any] = {}
            if offset < 0 and max_items is not None:
                offset = len(self.history) - max_items
            for i, key in enumerate(self.history):
                if i >= offset:
                    out[key] = self.history[key]
                    if max_items is not None and len(out) >= max_items:
                        break
            return out
        if prompt_id in self.history:
            return {prompt_id: copy.deepcopy(self.history[prompt_id])}
        return {}

    def submit(self, json_data: Any) -> tuple[int, dict[str, Any]]:
        """Handle a parsed ``POST /prompt`` body; returns (HTTP status, JSON body).

        The expressions follow the real handler, so odd bodies fail the same way (a number
        as body raises TypeError, i.e. HTTP 500).
        """
        self.counters.prompt_requests += 1
        if "number" in json_data:
            number: int | float = float(json_data["number"])
        else:
            number = self.number
            if "front" in json_data and json_data["front"]:  # noqa: RUF019
                number = -number
            self.number += 1

        if "prompt" not in json_data:
            self.counters.prompts_rejected += 1
            self.submitted.append(SubmittedPrompt(None, 400, number, None, json_data))
            return 400, {"error": dict(NO_PROMPT_ERROR), "node_errors": {}}

        prompt = json_data["prompt"]
        prompt_id = str(json_data.get("prompt_id", uuid.uuid4()))
        partial = json_data.get("partial_execution_targets", None)
        valid = self.validator.validate_prompt(prompt, partial)
        extra_data = json_data["extra_data"] if "extra_data" in json_data else {}  # noqa: SIM401
        if "client_id" in json_data:
            extra_data["client_id"] = json_data["client_id"]
        client_id = json_data.get("client_id")
        if not valid[0]:
            log.warning("invalid prompt: %s", valid[1])
            self.counters.prompts_rejected += 1
            self.submitted.append(SubmittedPrompt(prompt_id, 400, number, client_id, json_data))
            return 400, {"error": valid[1], "node_errors": valid[3]}
        sensitive = {}
        for key in SENSITIVE_EXTRA_DATA_KEYS:
            if key in extra_data:
                sensitive[key] = extra_data.pop(key)
        self._seq += 1
        item = QueueItem(number, prompt_id, self._seq, prompt, extra_data, valid[2], sensitive)
        heapq.heappush(self._queue, item)
        self.queue_updated()
        if self._queue_event is not None:
            self._queue_event.set()
        self.counters.prompts_submitted += 1
        self.submitted.append(SubmittedPrompt(prompt_id, 200, number, client_id, json_data))
        return 200, {"prompt_id": prompt_id, "number": number, "node_errors": valid[3]}

    async def _worker(self) -> None:
        # One prompt at a time, lowest number first (FIFO; `front` uses negative numbers).
        assert self._queue_event is not None
        while True:
            while not self._queue or self.faults.hold_queue:
                self._queue_event.clear()
                await self._queue_event.wait()
            if self.faults.queue_delay_s:
                await asyncio.sleep(self.faults.queue_delay_s)
                if not self._queue or self.faults.hold_queue:
                    continue
            item = heapq.heappop(self._queue)
            task_id = self._task_counter
            self._task_counter += 1
            self._running[task_id] = item
            self.queue_updated()
            self.counters.prompts_started += 1
            run = PromptRun(self, item)
            try:
                await run.run()
            except asyncio.CancelledError:
                raise
            except Exception:  # pragma: no cover - a bug in the fake, not a node failure
                log.exception("fake ComfyUI executor crashed on %s", item.prompt_id)
                run.success = False
            await self._task_done(task_id, run)
            if self.client_id is not None:
                self.send("executing", {"node": None, "prompt_id": item.prompt_id}, self.client_id)
            if self._free_requested:
                self.free_memory()

    async def _task_done(self, task_id: int, run: PromptRun) -> None:
        # History is written before the `status` broadcast and `executing {node: null}`.
        item = self._running.pop(task_id)
        if len(self.history) > MAXIMUM_HISTORY_SIZE:
            self.history.pop(next(iter(self.history)))
        events = [m[0] for m in run.status_messages]
        if run.success:
            self.counters.prompts_succeeded += 1
        elif "execution_interrupted" in events:
            self.counters.prompts_interrupted += 1
        else:
            self.counters.prompts_failed += 1
        entry: dict[str, Any] = {
            "prompt": item.public(),
            "outputs": {},
            "status": {
                "status_str": "success" if run.success else "error",
                "completed": run.success,
                "messages": run.status_messages,
            },
        }
        entry.update(run.history_result)
        self.history[item.prompt_id] = entry
        self.queue_updated()
        async with self._history_changed:
            self._history_changed.notify_all()


class RunningFakeComfyUI:
    """A fake ComfyUI listening on a TCP port; ``stop``/``restart`` keep the port.

    Attributes:
        fake: the state (counters, history, ``faults``).
        url: ``http://HOST:PORT``; ``ws_url`` is ``ws://HOST:PORT/ws``.
    """

    def __init__(self, fake: FakeComfyUI, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fake = fake
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._listener_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        fake.faults_listeners.append(self._on_fault_change)

    @property
    def url(self) -> str:
        """Base HTTP URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """Websocket URL (add ``?clientId=...``)."""
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def is_running(self) -> bool:
        """Whether the port is listening."""
        return self._runner is not None

    async def start(self) -> None:
        """Listen (port 0 picks a free port, kept for later restarts) and start the worker."""
        if self._runner is not None:
            return
        await self.fake.start()
        runner = web.AppRunner(
            create_app(self.fake), handle_signals=False, access_log=None, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self.fake.shutdown()
            raise
        self._runner = runner
        self._site = site
        self.port = int(runner.addresses[0][1])
        await self._sync_listener()

    async def stop(self) -> None:
        """Go down: stop listening, drop connections and websockets, stop the worker."""
        runner, self._runner, self._site = self._runner, None, None
        if runner is None:
            return
        await self.fake.shutdown()
        await runner.cleanup()

    async def refuse_connections(self, refuse: bool = True) -> None:
        """Set ``faults.refuse_connections`` and wait until the port is closed (or open again).

        While refusing, new connections are refused, connections opened before are dropped
        at their next request and websockets are aborted; queue and history are kept.
        """
        self.fake.faults.refuse_connections = refuse
        await self._sync_listener()

    def _on_fault_change(self, name: str, value: Any) -> None:
        if name != "refuse_connections" or self._runner is None:
            return
        try:
            task = asyncio.get_running_loop().create_task(self._sync_listener())
        except RuntimeError:  # set outside the event loop: applied at the next start()
            return
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _sync_listener(self) -> None:
        async with self._listener_lock:
            refusing = self.fake.faults.refuse_connections
            if refusing and self._site is not None:
                site, self._site = self._site, None
                await site.stop()
                self.fake.abort_websockets()
            elif not refusing and self._site is None and self._runner is not None:
                site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
                await site.start()
                self._site = site

    async def restart(self, *, fresh_state: bool = True, down_for_s: float = 0.0) -> None:
        """Stop, optionally stay down, and listen again on the same port.

        Args:
            fresh_state: forget queue, history, cache and sockets like a real restart
                (files on disk, counters and faults stay).
            down_for_s: seconds to stay down (connections are refused meanwhile).
        """
        await self.stop()
        if down_for_s:
            await asyncio.sleep(down_for_s)
        if fresh_state:
            self.fake.reset_state()
            self.fake.clean_temp()
        self.fake.counters.restarts += 1
        await self.start()

    async def close(self) -> None:
        """Stop and remove the temporary data dir."""
        await self.stop()
        self.fake.close()


@asynccontextmanager
async def run_fake_comfyui(
    settings: FakeComfyUISettings | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningFakeComfyUI]:
    """Run a fake ComfyUI for the duration of the block.

    Args:
        settings: defaults to ``FakeComfyUISettings()`` (reads ``FAKE_COMFYUI_*``).
        host: interface to bind.
        port: 0 picks a free port.

    Yields:
        The running server (``.url``, ``.fake``, ``stop()``, ``restart()``).
    """
    running = RunningFakeComfyUI(FakeComfyUI(settings), host, port)
    await running.start()
    try:
        yield running
    finally:
        await running.close()
