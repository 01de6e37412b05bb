"""Installed models (:class:`Catalogue`) and their :class:`Residency` on one simulated GPU, by
Ollama's scheduling rules: loads wait for a free slot (evicting an idle model), changed
load-time options reload, an idle model stays for its ``keep_alive``."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from standins.ollama.wire import MAX_DURATION_NS, parse_keep_alive

if TYPE_CHECKING:
    from standins.ollama.settings import FakeOllamaSettings

__all__ = [
    "Catalogue",
    "InstalledModel",
    "QueueFullError",
    "Residency",
    "canonical_name",
    "load_options",
]

# Ollama answers this, with 503, when OLLAMA_MAX_QUEUE requests already wait.
QUEUE_FULL_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
IMAGE_TOKENS = 576
"""Image tokens LLaVA spends on one picture (one 336 px CLIP view)."""


def canonical_name(name: str) -> str:
    """A model reference as Ollama resolves it: lower case, no default registry prefix,
    tag ``latest`` when none is given (``llava`` → ``llava:latest``)."""
    result = name.strip().lower().removeprefix("registry.ollama.ai/").removeprefix("library/")
    return result if ":" in result.rsplit("/", 1)[-1] else f"{result}:latest"


@dataclass(frozen=True)
class InstalledModel:
    """One model on disk, with what ``/api/tags`` and ``/api/show`` report about it."""

    name: str
    family: str
    families: tuple[str, ...]
    parameter_size: str
    quantization_level: str
    size: int
    context_length: int
    capabilities: tuple[str, ...]
    kv_bytes_per_token: int
    template: str
    parameters: str
    license: str = ""

    @property
    def digest(self) -> str:
        """Manifest digest (hex sha256), stable per name."""
        return hashlib.sha256(f"manifest:{self.name}".encode()).hexdigest()

    @property
    def vision(self) -> bool:
        """True when the model accepts images (LLaVA)."""
        return "vision" in self.capabilities

    @property
    def thinking(self) -> bool:
        """True when the model produces a reasoning trace (gpt-oss)."""
        return "thinking" in self.capabilities

    def details(self) -> dict[str, Any]:
        """The ``details`` object of ``/api/tags``, ``/api/ps`` and ``/api/show``."""
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": list(self.families),
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }

    def resident_bytes(self, num_ctx: int) -> int:
        """Memory a loaded runner takes: weights plus a KV cache that grows with num_ctx."""
        return self.size + self.kv_bytes_per_token * num_ctx


@functools.cache
def _families() -> list[dict[str, Any]]:
    """``models.json``: Ollama's metadata for the families our system uses, then defaults."""
    families: list[dict[str, Any]] = json.loads(
        resources.files("standins.ollama").joinpath("models.json").read_text("utf-8")
    )
    return families


def _describe(name: str) -> InstalledModel:
    base, _, tag = name.partition(":")
    stem = base.rsplit("/", 1)[-1]
    entry = next(e for e in _families() if stem.startswith(tuple(e["prefixes"])))
    values = {k: v for k, v in entry.items() if k not in ("prefixes", "tags")}
    values |= entry.get("tags", {}).get(tag, {})
    values |= {k: tuple(values[k]) for k in ("families", "capabilities")}
    return InstalledModel(name=name, **values)


class Catalogue:
    """The installed models (``names``), looked up the way Ollama resolves names."""

    modified_at_ns = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z
    """Their "pull" time: fixed, so ``/api/tags`` answers never change."""

    def __init__(self, names: Iterable[str]) -> None:
        self._models = {canonical_name(n): _describe(canonical_name(n)) for n in names}

    def __iter__(self) -> Iterator[InstalledModel]:
        return iter(self._models.values())

    def find(self, name: str) -> InstalledModel | None:
        """The installed model a request's ``model`` field names, or None."""
        return self._models.get(canonical_name(name))


# Options fixed when a runner starts (a change needs a new runner), with Ollama's defaults.
_LOAD_DEFAULTS: dict[str, Any] = {"num_batch": 512, "num_gpu": -1, "main_gpu": 0}
_LOAD_DEFAULTS |= {"use_mmap": None, "num_thread": 0}


def load_options(
    options: Mapping[str, Any], model: InstalledModel, default_ctx: int
) -> dict[str, Any]:
    """A request's load-time options with Ollama's defaults: vision models get at least
    2048 tokens of context, nobody more than the model was trained for."""
    num_ctx = int(options.get("num_ctx", default_ctx))
    num_ctx = max(num_ctx, 2048) if model.vision else num_ctx
    fixed: dict[str, Any] = {"num_ctx": max(1, min(num_ctx, model.context_length))}
    for key, default in _LOAD_DEFAULTS.items():
        value = options.get(key)
        fixed[key] = default if value is None else bool(value) if key == "use_mmap" else int(value)
    return fixed


def _same_runner(started: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """True when a runner started with ``started`` serves ``wanted``; a negative
    ``num_gpu`` ("let Ollama decide") never forces a reload."""
    free_gpu = started["num_gpu"] < 0 or wanted["num_gpu"] < 0
    return all(started[k] == wanted[k] for k in started if not (free_gpu and k == "num_gpu"))


class QueueFullError(Exception):
    """More requests wait for the scheduler than ``max_queue`` allows (503)."""


@dataclass(eq=False)
class Runner:
    """One loaded (or loading, or unloading) model."""

    model: InstalledModel
    options: Mapping[str, Any]
    session_ns: int
    slots: asyncio.Semaphore
    state: Literal["loading", "ready", "unloading"] = "loading"
    refcount: int = 0
    last_used: int = 0
    expires_at_ns: int | None = None
    timer: asyncio.TimerHandle | None = None
    unload_when_idle: bool = False
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    def stop_timer(self) -> None:
        """Cancel the keep-alive countdown, if one runs."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class Residency:
    """Which models are loaded, with Ollama's scheduling rules on a single GPU."""

    def __init__(self, settings: FakeOllamaSettings) -> None:
        self.settings = settings
        self.default_keep_alive_ns = parse_keep_alive(settings.keep_alive)
        self.loaded: dict[str, Runner] = {}
        self.counts: Counter[str] = Counter()
        """``load_count``, ``reload_count``, ``eviction_count`` and ``unload_count``."""
        self.loads_by_model: Counter[str] = Counter()
        self._use_clock = itertools.count(1)
        # One request is scheduled at a time, in arrival order (asyncio.Lock is FIFO), as
        # Ollama's scheduler takes pending requests one by one from its queue.
        self._queue = asyncio.Lock()
        self._waiting = 0
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self.load_started = asyncio.Event()

    async def acquire(
        self, model: InstalledModel, options: Mapping[str, Any], keep_alive_ns: int | None
    ) -> Runner:
        """A ready runner for ``model``, loading (and evicting) as needed; ``keep_alive_ns``
        None keeps the runner's. The caller must :meth:`release` it. Raises
        :class:`QueueFullError` when ``max_queue`` requests are already waiting."""
        if self._waiting >= self.settings.max_queue:
            raise QueueFullError(QUEUE_FULL_MESSAGE)
        self._waiting += 1
        try:
            await self._queue.acquire()
        finally:
            self._waiting -= 1
        try:
            return await self._schedule(model, options, keep_alive_ns)
        finally:
            self._queue.release()

    async def _schedule(
        self, model: InstalledModel, options: Mapping[str, Any], keep_alive_ns: int | None
    ) -> Runner:
        async with self._changed:
            while True:
                runner = self.loaded.get(model.name)
                if runner is not None and runner.state == "ready":
                    if _same_runner(runner.options, options):
                        self._use(runner, keep_alive_ns)
                        return runner
                    # Ollama restarts the runner when load-time options change.
                    if not runner.unload_when_idle:
                        self.counts["reload_count"] += 1
                    self._unload_or_mark(runner)
                elif runner is None and len(self.loaded) < self.settings.max_loaded_models:
                    break
                elif runner is None:
                    victim = self._pick_victim()
                    if victim is not None:
                        self.counts["eviction_count"] += 1
                        self._begin_unload(victim)
                await self._changed.wait()
            session = self.default_keep_alive_ns if keep_alive_ns is None else keep_alive_ns
            runner = Runner(model, options, session, asyncio.Semaphore(self.settings.num_parallel))
            self.loaded[model.name] = runner
        self.load_started.set()
        await asyncio.sleep(self.settings.load_delay_s)
        async with self._changed:
            runner.state = "ready"
            self.counts["load_count"] += 1
            self.loads_by_model[model.name] += 1
            self._use(runner, keep_alive_ns=None)
            self._changed.notify_all()
        return runner

    def _use(self, runner: Runner, keep_alive_ns: int | None) -> None:
        runner.refcount += 1
        runner.last_used = next(self._use_clock)
        runner.expires_at_ns = None
        if keep_alive_ns is not None:
            runner.session_ns = keep_alive_ns
        runner.stop_timer()

    def _pick_victim(self) -> Runner | None:
        # Ollama unloads an idle runner, shortest keep_alive first; among equals the one
        # used least recently goes.
        idle = [r for r in self.loaded.values() if r.state == "ready" and r.refcount == 0]
        return min(idle, key=lambda r: (r.session_ns, r.last_used), default=None)

    async def release(self, runner: Runner) -> None:
        """Give a runner back; an idle runner starts its keep-alive countdown."""
        async with self._changed:
            runner.refcount -= 1
            runner.last_used = next(self._use_clock)
            if runner.refcount == 0 and runner.state == "ready":
                if runner.unload_when_idle or runner.session_ns == 0:
                    self._begin_unload(runner)
                else:
                    runner.expires_at_ns = time.time_ns() + runner.session_ns
                    if runner.session_ns < MAX_DURATION_NS:  # else: forever
                        runner.timer = asyncio.get_running_loop().call_later(
                            runner.session_ns / 1e9, self._begin_unload, runner
                        )
            self._changed.notify_all()

    def expire(self, model_name: str) -> None:
        """Handle ``keep_alive: 0`` with no messages: unload now, or after in-flight work."""
        runner = self.loaded.get(model_name)
        if runner is None or runner.state == "unloading":
            return
        runner.session_ns = 0
        self._unload_or_mark(runner)

    def _unload_or_mark(self, runner: Runner) -> None:
        if runner.refcount == 0 and runner.state == "ready":
            self._begin_unload(runner)
        else:
            runner.unload_when_idle = True

    def _begin_unload(self, runner: Runner) -> None:
        if runner.state == "unloading" or self.loaded.get(runner.model.name) is not runner:
            return
        runner.state = "unloading"
        runner.stop_timer()
        task = asyncio.get_running_loop().create_task(self._finish_unload(runner))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish_unload(self, runner: Runner) -> None:
        await asyncio.sleep(self.settings.unload_delay_s)
        async with self._changed:
            if self.loaded.get(runner.model.name) is runner:
                del self.loaded[runner.model.name]
                self.counts["unload_count"] += 1
            runner.gone.set()
            self._changed.notify_all()

    async def wait_unloaded(self, model_name: str) -> None:
        """Return once ``model_name`` is no longer resident (at once if it is not)."""
        runner = self.loaded.get(model_name)
        if runner is not None:
            await runner.gone.wait()

    def reset(self) -> None:
        """Forget every runner without counting unloads (the server process restarted)."""
        for runner in self.loaded.values():
            runner.stop_timer()
            runner.gone.set()
        self.loaded.clear()
        for task in self._tasks:
            task.cancel()

    async def close(self) -> None:
        """Cancel timers and pending unloads (the stand-in is shutting down)."""
        tasks = list(self._tasks)
        self.reset()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
