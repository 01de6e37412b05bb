"""Installed models and their residency on one simulated GPU.

:class:`Catalogue` answers "is this model installed, and what is it" (``/api/tags``,
``/api/show``). :class:`Residency` copies Ollama's scheduler closely enough for the
things our services depend on: a request for a model that is not loaded waits for a free
slot (evicting an idle model), pays the load delay and is counted; a request whose
load-time options differ from the loaded runner's forces a reload; an idle model stays for
its ``keep_alive`` and then goes; ``keep_alive: 0`` unloads asynchronously, so a model
lingers in ``/api/ps`` for a moment after the "unload" answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from standins.ollama.wire import MAX_DURATION_NS, ns_to_seconds

__all__ = [
    "Catalogue",
    "InstalledModel",
    "Lease",
    "LoadOptions",
    "QueueFullError",
    "Residency",
    "Runner",
    "canonical_name",
]

_REGISTRY_PREFIXES = ("registry.ollama.ai/library/", "registry.ollama.ai/")

# Ollama answers this, with 503, when OLLAMA_MAX_QUEUE requests already wait.
QUEUE_FULL_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"

# Image tokens LLaVA spends on one picture (one 336 px CLIP view).
IMAGE_TOKENS = 576


def canonical_name(name: str) -> str:
    """Normalise a model reference the way Ollama resolves it: lower case, no default
    registry prefix, tag ``latest`` when none is given (``llava`` → ``llava:latest``)."""
    result = name.strip().lower()
    for prefix in _REGISTRY_PREFIXES:
        if result.startswith(prefix):
            result = result[len(prefix) :]
            break
    if ":" not in result.rsplit("/", 1)[-1]:
        result += ":latest"
    return result


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

    def model_info(self) -> dict[str, Any]:
        """A short ``model_info`` map as ``/api/show`` returns it (GGUF metadata)."""
        info: dict[str, Any] = {
            "general.architecture": self.family,
            "general.basename": self.name.split(":", 1)[0],
            "general.parameter_count": _parameter_count(self.parameter_size),
            "general.quantization_version": 2,
            f"{self.family}.context_length": self.context_length,
            f"{self.family}.block_count": 32,
            f"{self.family}.embedding_length": 4096 if self.family == "llama" else 2880,
            "tokenizer.ggml.model": "gpt2" if self.thinking else "llama",
        }
        return info

    def projector_info(self) -> dict[str, Any] | None:
        """CLIP projector metadata, only for vision models."""
        if not self.vision:
            return None
        return {
            "general.architecture": "clip",
            "clip.has_llava_projector": True,
            "clip.vision.image_size": 336,
            "clip.vision.patch_size": 14,
            "clip.vision.embedding_length": 1024,
        }

    def resident_bytes(self, num_ctx: int) -> int:
        """Memory a loaded runner takes: weights plus a KV cache that grows with num_ctx."""
        return self.size + self.kv_bytes_per_token * num_ctx


def _parameter_count(parameter_size: str) -> int:
    number = float(parameter_size.rstrip("BM"))
    return int(number * (1e9 if parameter_size.endswith("B") else 1e6))


_LLAVA_TEMPLATE = "[INST] {{ if .System }}{{ .System }} {{ end }}{{ .Prompt }} [/INST]"
_GPT_OSS_TEMPLATE = "<|start|>system<|message|>{{ .System }}<|end|>{{- range .Messages }}…"


def _describe(name: str) -> InstalledModel:
    """Ollama's metadata for the families our system uses; plain defaults for others."""
    base, _, tag = name.partition(":")
    stem = base.rsplit("/", 1)[-1]
    if stem.startswith(("llava", "bakllava")):
        sizes = {"13b": ("13B", 8_011_256_494), "34b": ("34B", 20_166_497_526)}
        parameter_size, size = sizes.get(tag, ("7B", 4_733_363_377))
        return InstalledModel(
            name=name,
            family="llama",
            families=("llama", "clip"),
            parameter_size=parameter_size,
            quantization_level="Q4_0",
            size=size,
            context_length=32768,
            capabilities=("completion", "vision"),
            kv_bytes_per_token=131_072,
            template=_LLAVA_TEMPLATE,
            parameters='stop                           "[INST]"\n'
            'stop                           "[/INST]"',
            license="Apache License Version 2.0",
        )
    if stem.startswith("gpt-oss"):
        parameter_size, size = (
            ("116.8B", 65_290_180_000) if tag == "120b" else ("20.9B", 13_780_173_839)
        )
        return InstalledModel(
            name=name,
            family="gptoss",
            families=("gptoss",),
            parameter_size=parameter_size,
            quantization_level="MXFP4",
            size=size,
            context_length=131072,
            capabilities=("completion", "tools", "thinking"),
            kv_bytes_per_token=49_152,
            template=_GPT_OSS_TEMPLATE,
            parameters="temperature                    1",
            license="Apache License Version 2.0",
        )
    return InstalledModel(
        name=name,
        family="llama",
        families=("llama",),
        parameter_size="8.0B",
        quantization_level="Q4_K_M",
        size=4_920_753_328,
        context_length=8192,
        capabilities=("completion",),
        kv_bytes_per_token=131_072,
        template="{{ .Prompt }}",
        parameters="",
    )


class Catalogue:
    """The installed models, looked up the way Ollama resolves names.

    Args:
        names: Installed model names, e.g. ``["llava:latest", "gpt-oss:20b"]``.
        modified_at_ns: When they were "pulled" (``modified_at``); fixed so answers are
            reproducible.
    """

    def __init__(self, names: Iterable[str], *, modified_at_ns: int) -> None:
        self._models: dict[str, InstalledModel] = {}
        for name in names:
            canonical = canonical_name(name)
            self._models[canonical] = _describe(canonical)
        self.modified_at_ns = modified_at_ns

    def __iter__(self) -> Iterator[InstalledModel]:
        return iter(self._models.values())

    def find(self, name: str) -> InstalledModel | None:
        """The installed model a request's ``model`` field names, or None."""
        return self._models.get(canonical_name(name))

    def resolve(self, name: str) -> str:
        """Canonical name of an installed model, or the normalised name if unknown."""
        return canonical_name(name)


@dataclass(frozen=True)
class LoadOptions:
    """The options fixed when a runner starts; any change needs a new runner (reload)."""

    num_ctx: int
    num_batch: int = 512
    num_gpu: int = -1
    main_gpu: int = 0
    use_mmap: bool | None = None
    num_thread: int = 0

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], model: InstalledModel, default_ctx: int
    ) -> LoadOptions:
        """Extract the load-time options of a request, filling Ollama's defaults.

        Args:
            options: The request's ``options`` (already type-checked).
            model: The model to load (vision models get at least 2048 tokens of context,
                and nobody gets more than the model was trained for).
            default_ctx: num_ctx when the request sets none.

        Returns:
            The options to compare with the loaded runner's.
        """
        num_ctx = int(options.get("num_ctx", default_ctx))
        if model.vision:
            num_ctx = max(num_ctx, 2048)
        num_ctx = max(1, min(num_ctx, model.context_length))
        use_mmap = options.get("use_mmap")
        return cls(
            num_ctx=num_ctx,
            num_batch=int(options.get("num_batch", 512)),
            num_gpu=int(options.get("num_gpu", -1)),
            main_gpu=int(options.get("main_gpu", 0)),
            use_mmap=None if use_mmap is None else bool(use_mmap),
            num_thread=int(options.get("num_thread", 0)),
        )

    def same_runner(self, other: LoadOptions) -> bool:
        """True when a runner started with ``other`` can serve a request asking for these.

        A negative ``num_gpu`` means "let Ollama decide", which never forces a reload.
        """
        if self.num_gpu < 0 or other.num_gpu < 0:
            return self._without_gpu() == other._without_gpu()
        return self == other

    def _without_gpu(self) -> tuple[Any, ...]:
        return (self.num_ctx, self.num_batch, self.main_gpu, self.use_mmap, self.num_thread)


class QueueFullError(Exception):
    """More requests wait for the scheduler than ``max_queue`` allows (503)."""

    def __init__(self) -> None:
        super().__init__(QUEUE_FULL_MESSAGE)


@dataclass(eq=False)
class Runner:
    """One loaded (or loading, or unloading) model."""

    model: InstalledModel
    options: LoadOptions
    session_ns: int
    slots: asyncio.Semaphore
    state: Literal["loading", "ready", "unloading"] = "loading"
    refcount: int = 0
    last_used: int = 0
    expires_at_ns: int | None = None
    timer: asyncio.TimerHandle | None = None
    unload_when_idle: bool = False
    gone: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class Lease:
    """A request's hold on a runner; give it back with :meth:`Residency.release`."""

    runner: Runner
    loaded: bool
    """True when this request had to load the model (a cold request)."""


class Residency:
    """Which models are loaded, with Ollama's scheduling rules on a single GPU.

    Args:
        max_loaded: Models resident at once.
        load_delay_s: Seconds a load takes.
        unload_delay_s: Seconds between an unload decision and the model leaving.
        default_keep_alive_ns: Residency of a model loaded without ``keep_alive``.
        num_parallel: Requests one runner serves at once.
        max_queue: Requests that may wait for the scheduler before 503.
    """

    def __init__(
        self,
        *,
        max_loaded: int,
        load_delay_s: float,
        unload_delay_s: float,
        default_keep_alive_ns: int,
        num_parallel: int,
        max_queue: int,
    ) -> None:
        self.max_loaded = max_loaded
        self.load_delay_s = load_delay_s
        self.unload_delay_s = unload_delay_s
        self.default_keep_alive_ns = default_keep_alive_ns
        self.num_parallel = num_parallel
        self.max_queue = max_queue
        self.loaded: dict[str, Runner] = {}
        self.load_count = 0
        self.loads_by_model: Counter[str] = Counter()
        self.unload_count = 0
        self.reload_count = 0
        self.eviction_count = 0
        self._use_clock = itertools.count(1)
        # One request is scheduled at a time, in arrival order (asyncio.Lock is FIFO), as
        # Ollama's scheduler takes pending requests one by one from its queue.
        self._queue = asyncio.Lock()
        self._waiting = 0
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self.load_started = asyncio.Event()

    async def acquire(
        self, model: InstalledModel, options: LoadOptions, keep_alive_ns: int | None
    ) -> Lease:
        """Get a ready runner for ``model``, loading (and evicting) as needed.

        Args:
            model: The requested model.
            options: Its load-time options for this request.
            keep_alive_ns: The request's ``keep_alive``, or None to keep the runner's.

        Returns:
            The lease; the caller must :meth:`release` it.

        Raises:
            QueueFullError: When ``max_queue`` requests are already waiting.
        """
        if self._waiting >= self.max_queue:
            raise QueueFullError
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
        self, model: InstalledModel, options: LoadOptions, keep_alive_ns: int | None
    ) -> Lease:
        async with self._changed:
            while True:
                runner = self.loaded.get(model.name)
                if runner is not None and runner.state == "ready":
                    if runner.options.same_runner(options):
                        self._use(runner, keep_alive_ns)
                        return Lease(runner=runner, loaded=False)
                    # Ollama restarts the runner when load-time options change.
                    if not runner.unload_when_idle:
                        self.reload_count += 1
                    self._unload_or_mark(runner)
                elif runner is None and len(self.loaded) < self.max_loaded:
                    break
                elif runner is None:
                    victim = self._pick_victim()
                    if victim is not None:
                        self.eviction_count += 1
                        self._begin_unload(victim)
                await self._changed.wait()
            session = self.default_keep_alive_ns if keep_alive_ns is None else keep_alive_ns
            runner = Runner(
                model=model,
                options=options,
                session_ns=session,
                slots=asyncio.Semaphore(self.num_parallel),
            )
            self.loaded[model.name] = runner
        self.load_started.set()
        if self.load_delay_s > 0:
            await asyncio.sleep(self.load_delay_s)
        async with self._changed:
            runner.state = "ready"
            self.load_count += 1
            self.loads_by_model[model.name] += 1
            self._use(runner, keep_alive_ns=None)
            self._changed.notify_all()
        return Lease(runner=runner, loaded=True)

    def _use(self, runner: Runner, keep_alive_ns: int | None) -> None:
        runner.refcount += 1
        runner.last_used = next(self._use_clock)
        runner.expires_at_ns = None
        if keep_alive_ns is not None:
            runner.session_ns = keep_alive_ns
        if runner.timer is not None:
            runner.timer.cancel()
            runner.timer = None

    def _pick_victim(self) -> Runner | None:
        # Ollama unloads an idle runner, shortest keep_alive first; among equals the one
        # used least recently goes.
        idle = [r for r in self.loaded.values() if r.state == "ready" and r.refcount == 0]
        if not idle:
            return None
        return min(idle, key=lambda r: (r.session_ns, r.last_used))

    async def release(self, lease: Lease) -> None:
        """Give a runner back; an idle runner starts its keep-alive countdown."""
        runner = lease.runner
        async with self._changed:
            runner.refcount -= 1
            runner.last_used = next(self._use_clock)
            if runner.refcount == 0 and runner.state == "ready":
                if runner.unload_when_idle or runner.session_ns == 0:
                    self._begin_unload(runner)
                elif runner.session_ns < MAX_DURATION_NS:
                    runner.expires_at_ns = time.time_ns() + runner.session_ns
                    runner.timer = asyncio.get_running_loop().call_later(
                        ns_to_seconds(runner.session_ns), self._begin_unload, runner
                    )
                else:
                    runner.expires_at_ns = time.time_ns() + runner.session_ns
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
        if runner.timer is not None:
            runner.timer.cancel()
            runner.timer = None
        task = asyncio.get_running_loop().create_task(self._finish_unload(runner))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish_unload(self, runner: Runner) -> None:
        if self.unload_delay_s > 0:
            await asyncio.sleep(self.unload_delay_s)
        async with self._changed:
            if self.loaded.get(runner.model.name) is runner:
                del self.loaded[runner.model.name]
                self.unload_count += 1
            runner.gone.set()
            self._changed.notify_all()

    async def wait_unloaded(self, model_name: str) -> None:
        """Return once ``model_name`` is no longer resident (at once if it is not)."""
        runner = self.loaded.get(model_name)
        if runner is not None:
            await runner.gone.wait()

    def expires_at_ns(self, runner: Runner) -> int:
        """When an idle runner will be unloaded; a busy one counts from now, as Ollama's
        ``/api/ps`` does for runners whose timer has not started yet."""
        if runner.expires_at_ns is not None:
            return runner.expires_at_ns
        return time.time_ns() + runner.session_ns

    def snapshot(self) -> list[Runner]:
        """The runners ``/api/ps`` lists: every one still in memory."""
        return list(self.loaded.values())

    def reset(self) -> None:
        """Forget every runner without counting unloads (the server process restarted)."""
        for runner in self.loaded.values():
            if runner.timer is not None:
                runner.timer.cancel()
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
