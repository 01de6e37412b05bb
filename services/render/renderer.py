"""One render request from validation to the last result, and its cleanup.

:meth:`Renderer.render` is an async generator of domain events::

    validate (nothing touched yet) → load the workflow → check the deadline budget
    → pick backends (least loaded, having the models) → upload the source once per
    backend → queue all variants → stream queued / progress / preview events
    → for each finished variant: fetch the image → resize to the output size
      → embed metadata → result
    finally: withdraw our prompts, then end the variant tasks (shielded)

The backends are reached only through :class:`~services.render.backend.RenderBackend`;
nothing here speaks a backend's wire format. Whatever ends the request early — the
caller cancels, the deadline passes, one variant fails — the ``finally`` withdraws every
prompt of the request from every backend and re-raises; ``CancelledError`` is never
swallowed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from services.common.errors import (
    BackendFailedError,
    BackendUnavailableError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    ImagegenError,
    InvalidArgumentError,
    PreconditionViolation,
    ResourceExhaustedError,
)
from services.common.logs import get_logger, request_id_var
from services.common.metrics import STAGE_SECONDS
from services.common.retry import RetryPolicy, retry_async
from services.common.sampler import SamplerSettings
from services.render.backend import (
    BackendError,
    ControlNetWiring,
    FollowPacing,
    GraphProblem,
    LoraLink,
    PromptFailedError,
    PromptFinished,
    PromptLostError,
    PromptPreview,
    PromptProgress,
    PromptQueued,
    PromptRefusedError,
    PromptStarted,
    RenderBackend,
    StoredResult,
    VariantSpec,
    VariantValues,
)
from services.render.backends import BackendLoad, BackendPool, assign_least_loaded
from services.render.catalog import RenderCatalog, read_catalog
from services.render.dimensions import Size
from services.render.jobs import (
    CheckedJob,
    ControlKind,
    JobLimits,
    RenderJob,
    RenderWarning,
    check_job,
)
from services.render.metrics import VARIANTS_PENDING
from services.render.result_images import (
    RESIZE_FILTER,
    FinishedImage,
    finish_result,
    preview_jpeg,
)
from services.render.result_metadata import (
    PARAMETERS_KEY,
    PROMPT_KEY,
    PROVENANCE_KEY,
    RenderRecord,
    parameters_text,
    provenance_json,
)
from services.render.workflows import EditKind, Mode, Workflow, WorkflowLibrary

__all__ = [
    "RenderEvent",
    "Renderer",
    "RendererConfig",
    "VariantDone",
    "VariantPreview",
    "VariantProgress",
    "VariantQueued",
]

_log = get_logger(__name__)

_FORMAT_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


@dataclass(frozen=True)
class RendererConfig:
    """How renders are run (built from the service settings).

    Attributes:
        limits: Request bounds.
        controlnet_models: Default ControlNet file per control type.
        union_marker: A ControlNet file whose name contains this (case-insensitive) is a
            Union model (the backend selects the mode in it).
        canny_low: Canny low threshold.
        canny_high: Canny high threshold.
        preview_interval_s: Shortest time between two previews of one variant.
        queue_poll_interval_s: How often a waiting variant re-reads its queue position
            when the backend reports nothing.
        history_poll_interval_s: How often a running variant asks whether it ended when
            the backend is quiet (its event socket may be down).
        min_time_budget_s: A request with less time left than this before its deadline
            is refused before any GPU work.
        render_timeout_s: Longest render when the caller set no deadline.
        cancel_timeout_s: Longest time spent withdrawing prompts after a cancel.
        upload_subfolder: Folder inside ComfyUI's input/ for uploaded sources.
        filename_prefix: ``SaveImage`` prefix of the results.
        retry: Retry policy for finding a reachable backend.
    """

    limits: JobLimits = field(default_factory=JobLimits)
    controlnet_models: Mapping[ControlKind, str] = field(default_factory=dict)
    union_marker: str = "union"
    canny_low: float = 0.4
    canny_high: float = 0.8
    preview_interval_s: float = 0.5
    queue_poll_interval_s: float = 1.0
    history_poll_interval_s: float = 5.0
    min_time_budget_s: float = 1.0
    render_timeout_s: float = 900.0
    cancel_timeout_s: float = 5.0
    upload_subfolder: str = "imagegen"
    filename_prefix: str = "imagegen/render"
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class VariantQueued:
    """A variant waits in its backend's queue with ``position`` prompts ahead."""

    variant: int
    position: int


@dataclass(frozen=True)
class VariantProgress:
    """A sampling step of a variant finished."""

    variant: int
    step: int
    total_steps: int


@dataclass(frozen=True)
class VariantPreview:
    """A throttled preview of a variant."""

    variant: int
    step: int
    image: FinishedImage


@dataclass(frozen=True)
class VariantDone:
    """A finished variant."""

    index: int
    seed: int
    image: FinishedImage
    settings: SamplerSettings
    positive: str
    negative: str
    render_size: Size
    workflow: str
    prompt_id: str
    backend: str


RenderEvent = RenderWarning | VariantQueued | VariantProgress | VariantPreview | VariantDone


class Renderer:
    """Runs render requests on a pool of render backends.

    Args:
        pool: The backends.
        library: The workflow templates.
        config: Limits, defaults and pacing.
    """

    def __init__(self, pool: BackendPool, library: WorkflowLibrary, config: RendererConfig) -> None:
        self._pool = pool
        self._library = library
        self._config = config
        # Requests that have placed prompts and not yet withdrawn them; closing waits
        # for them, so a server stop never cuts a withdrawal off from its backends.
        self._unsettled: set[asyncio.Future[None]] = set()
        self._pending_variants = 0
        self._pending_listeners: list[Callable[[], None]] = []

    @property
    def pending_variants(self) -> int:
        """Variants accepted and not finished (waiting on a backend or sampling)."""
        return self._pending_variants

    def on_pending_change(self, listener: Callable[[], None]) -> None:
        """Calls ``listener`` each time :attr:`pending_variants` changes."""
        self._pending_listeners.append(listener)

    def _count_pending(self, delta: int) -> None:
        self._pending_variants += delta
        VARIANTS_PENDING.inc(delta)
        for listener in self._pending_listeners:
            listener()

    def open_run(self) -> asyncio.Future[None]:
        """A future the caller resolves once its request has nothing left on a backend."""
        settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unsettled.add(settled)
        settled.add_done_callback(self._unsettled.discard)
        return settled

    async def aclose(self) -> None:
        """Waits (bounded) for cancelled requests to withdraw their prompts, then closes
        the backends.

        A server stop cancels the handlers and then calls this at once, before the
        cancelled handlers have even run their ``finally``; waiting here lets them.
        """
        if self._unsettled:
            await asyncio.wait(set(self._unsettled), timeout=self._config.cancel_timeout_s + 1)
        await self._pool.aclose()

    async def catalog(self) -> RenderCatalog:
        """The templates, and what each backend lists now (see :mod:`services.render.catalog`)."""
        return await read_catalog(
            self._library,
            self._pool.backends,
            controlnet_defaults=self._config.controlnet_models,
            max_megapixels=self._config.limits.cap_mp,
        )

    async def render(self, job: RenderJob, *, deadline: float | None) -> AsyncIterator[RenderEvent]:
        """Renders every variant of ``job``, yielding events as they happen.

        Args:
            job: The request.
            deadline: The caller's deadline as a ``time.monotonic()`` instant, or ``None``.

        Yields:
            Warnings first, then queued, progress, preview and result events.

        Raises:
            InvalidArgumentError: A bad field (nothing was uploaded or queued).
            FailedPreconditionError: Unknown workflow, LoRA, ControlNet or model.
            DeadlineExceededError: Too little time left, or the render took too long.
            BackendUnavailableError: No backend reachable after retries.
            ResourceExhaustedError: ComfyUI ran out of memory.
            BackendFailedError: ComfyUI failed the prompt (the node is named).
        """
        checked = await asyncio.to_thread(
            check_job, job, self._config.limits, lambda name: self._library.get(name).output_size
        )
        workflow = self._library.get(checked.workflow)
        _check_workflow_fits(workflow, checked)
        controlnet = self._controlnet_wiring(checked)
        for warning in checked.warnings:
            yield warning
        until = self._effective_deadline(deadline)

        prototype = _spec(workflow, checked, 0, None, None, controlnet, self._config)
        backends = await self._place(checked, prototype, until)
        run = _Run(self, checked, workflow, controlnet, backends, until)
        async for event in run.stream():
            yield event

    def _effective_deadline(self, deadline: float | None) -> float:
        now = time.monotonic()
        if deadline is not None and deadline - now < self._config.min_time_budget_s:
            raise DeadlineExceededError(
                f"only {max(0.0, deadline - now):.2f} s left before the deadline; a render "
                f"needs at least {self._config.min_time_budget_s:g} s, so none was started"
            )
        local = now + self._config.render_timeout_s
        return local if deadline is None else min(deadline, local)

    def _controlnet_wiring(self, checked: CheckedJob) -> ControlNetWiring | None:
        cn = checked.controlnet
        if cn is None:
            return None
        model = cn.model or self._config.controlnet_models.get(cn.kind, "")
        if not model:
            raise FailedPreconditionError(
                f"no ControlNet model given and none configured for {cn.kind.value}",
                reason="CONTROLNET_NOT_CONFIGURED",
                metadata={"type": cn.kind.value},
                violations=[
                    PreconditionViolation(
                        "CONTROLNET", cn.kind.value, "set controlnet.model or configure a default"
                    )
                ],
            )
        if cn.control_image is None and cn.kind in (ControlKind.DEPTH, ControlKind.POSE):
            # Core ComfyUI has only a Canny preprocessor; depth and pose maps need
            # custom nodes, so the caller must send the map.
            raise FailedPreconditionError(
                f"{cn.kind.value} control needs controlnet.control_image: the server has "
                "no preprocessor for it",
                reason="PREPROCESSOR_MISSING",
                metadata={"type": cn.kind.value},
                violations=[
                    PreconditionViolation(
                        "PREPROCESSOR", cn.kind.value, "send a preprocessed control_image"
                    )
                ],
            )
        is_union = self._config.union_marker.lower() in model.lower()
        return ControlNetWiring(
            model=model,
            union_kind=cn.kind if is_union else None,
            canny=cn.kind is ControlKind.CANNY and cn.control_image is None,
            image=None,
            strength=cn.strength,
            start_percent=cn.start_percent,
            end_percent=cn.end_percent,
            canny_low=self._config.canny_low,
            canny_high=self._config.canny_high,
        )

    async def _place(
        self, checked: CheckedJob, prototype: VariantSpec, until: float
    ) -> list[RenderBackend]:
        """Picks a backend for each variant: reachable, having the models, least loaded."""

        async def reachable() -> list[BackendLoad]:
            loads, failed = await self._pool.loads()
            if not loads:
                detail = "; ".join(f"{name}: {e}" for name, e in failed.items())
                raise BackendError(
                    f"no ComfyUI backend answers ({detail})", backend=",".join(failed)
                )
            return loads

        try:
            loads = await retry_async(
                reachable,
                policy=self._config.retry,
                retryable=lambda e: isinstance(e, BackendError),
                deadline=until,
            )
        except BackendError as e:
            raise BackendUnavailableError(str(e), backend=e.backend) from e

        checks = await asyncio.gather(*(self._problems(load.backend, prototype) for load in loads))
        eligible = [load for load, problems in zip(loads, checks, strict=True) if problems == []]
        if not eligible:
            known = [problems for problems in checks if problems is not None]
            if not known:
                names = ",".join(load.backend.name for load in loads)
                raise BackendUnavailableError(
                    "no ComfyUI backend could list its nodes (/object_info)", backend=names
                )
            raise _refusal(known[0], prototype.workflow)
        picks = assign_least_loaded([load.load for load in eligible], len(checked.seeds))
        backends = [eligible[i].backend for i in picks]
        self._pool.reserve(backends)
        return backends

    async def _problems(
        self, backend: RenderBackend, spec: VariantSpec
    ) -> list[GraphProblem] | None:
        """What ``backend`` would refuse in the variant; ``None`` when it cannot be asked."""
        try:
            return await backend.problems(spec)
        except BackendError as e:
            _log.warning(
                "backend cannot list its nodes", extra={"backend": backend.name, "error": str(e)}
            )
            return None

    # -- used by _Run ----------------------------------------------------------------

    @property
    def config(self) -> RendererConfig:
        """The renderer's configuration."""
        return self._config

    @property
    def pool(self) -> BackendPool:
        """The backends."""
        return self._pool


def _check_workflow_fits(workflow: Workflow, checked: CheckedJob) -> None:
    if workflow.mode is not checked.mode:
        wanted = "image-to-image" if checked.mode is Mode.IMG2IMG else "text-to-image"
        description = (
            f"workflow {workflow.name!r} is {workflow.mode.value} but the request is {wanted} "
            f"({'a' if checked.mode is Mode.IMG2IMG else 'no'} source image)"
        )
        raise InvalidArgumentError(
            f"workflow: {description}", [FieldViolation("workflow", description)]
        )
    if workflow.edit is EditKind.INPAINT and checked.mask is None:
        description = f"is required: workflow {workflow.name!r} inpaints inside a mask"
        raise InvalidArgumentError(f"mask: {description}", [FieldViolation("mask", description)])
    missing = []
    if checked.loras and not workflow.has("model"):
        missing.append("model (needed for LoRAs)")
    if checked.controlnet is not None and not (
        workflow.has("positive_conditioning") and workflow.has("negative_conditioning")
    ):
        missing.append("positive_conditioning/negative_conditioning (needed for a ControlNet)")
    if (
        checked.controlnet is not None
        and checked.controlnet.control_image is None
        and not workflow.has("source_pixels")
    ):
        missing.append("source_pixels (needed to derive the control image)")
    if missing:
        raise FailedPreconditionError(
            f"workflow {workflow.name!r} cannot do this request: it does not bind "
            + "; ".join(missing),
            reason="WORKFLOW_UNSUPPORTED",
            metadata={"workflow": workflow.name},
            violations=[PreconditionViolation("WORKFLOW", workflow.name, m) for m in missing],
        )


def _spec(
    workflow: Workflow,
    checked: CheckedJob,
    index: int,
    image: str | None,
    control_image: str | None,
    controlnet: ControlNetWiring | None,
    config: RendererConfig,
    mask: str | None = None,
) -> VariantSpec:
    s = checked.settings
    # Before the upload the image names are unknown; backends do not check them.
    placeholder = "pending-upload.png"
    values = VariantValues(
        positive=checked.positive,
        negative=checked.negative,
        seed=checked.seeds[index],
        steps=s.steps,
        cfg=s.cfg,
        guidance=s.guidance,
        sampler=s.sampler_name,
        scheduler=s.scheduler,
        denoise=s.denoise,
        width=checked.render_size.width,
        height=checked.render_size.height,
        image=(image or placeholder) if checked.mode is Mode.IMG2IMG else None,
        filename_prefix=config.filename_prefix,
        mask=(mask or placeholder) if workflow.has("mask") else None,
    )
    wiring = controlnet
    if wiring is not None and checked.controlnet is not None and checked.controlnet.control_image:
        wiring = dataclasses.replace(wiring, image=control_image or placeholder)
    loras = tuple(LoraLink(lora.name, lora.strength) for lora in checked.loras)
    return VariantSpec(workflow, values, loras, wiring)


_MISSING_FILES = {
    "lora": ("LoRA", "LORA_NOT_FOUND"),
    "controlnet": ("ControlNet", "CONTROLNET_NOT_FOUND"),
    "model": ("model", "MODEL_NOT_FOUND"),
}
"""Kind of missing file → how a refusal names it, and its ``ErrorInfo.reason``."""


def _refusal(problems: list[GraphProblem], workflow: Workflow | None = None) -> ImagegenError:
    """The status for a variant a backend would refuse, naming request fields where it can."""
    missing = [p for p in problems if p.is_missing_model]
    kontext = [p for p in missing if p.missing_file == "model"]
    if workflow is not None and workflow.edit is EditKind.KONTEXT and kontext:
        # Its own reason: a caller (the gateway in AUTO) falls back to another edit mode.
        files = ", ".join(sorted({p.value for p in kontext}))
        return FailedPreconditionError(
            f"no render backend has the FLUX.1 Kontext model {files} that workflow "
            f"{workflow.name!r} loads; download it or pick another edit mode",
            reason="KONTEXT_MODEL_MISSING",
            metadata={"workflow": workflow.name, "models": files},
            violations=[
                PreconditionViolation("MODEL", p.value, "no backend has this file") for p in kontext
            ],
        )
    if missing:
        violations = []
        texts = []
        reasons = set()
        for p in missing:
            kind, reason = _MISSING_FILES[p.missing_file or "model"]
            reasons.add(reason)
            have = ", ".join(p.options) or "none"
            where = f" ({p.field})" if p.field else ""
            texts.append(f"unknown {kind} {p.value!r}{where}; the server has: {have}")
            violations.append(
                PreconditionViolation(kind.upper(), p.value, f"the server has: {have}")
            )
        reason = reasons.pop() if len(reasons) == 1 else "MODEL_NOT_FOUND"
        return FailedPreconditionError(
            "; ".join(texts),
            reason=reason,
            metadata={"available": ",".join(missing[0].options)},
            violations=violations,
        )
    request_fields = [(p.field, p) for p in problems if p.field is not None]
    if request_fields:
        return InvalidArgumentError(
            "the backend would refuse: "
            + "; ".join(f"{f}: {p.message}" for f, p in request_fields),
            [FieldViolation(f, p.message) for f, p in request_fields],
        )
    return FailedPreconditionError(
        "the workflow does not fit the ComfyUI server: " + "; ".join(str(p) for p in problems),
        reason="WORKFLOW_INCOMPATIBLE",
        violations=[PreconditionViolation("NODE", p.node, str(p)) for p in problems],
    )


def _failure(error: PromptFailedError) -> ImagegenError:
    """The status of a prompt that ran and failed."""
    if error.out_of_memory:
        return ResourceExhaustedError(
            str(error), reason=error.reason, metadata={**error.metadata, "backend": error.backend}
        )
    return BackendFailedError(
        str(error), backend=error.backend, reason=error.reason, metadata=error.metadata
    )


class _Outbox:
    """Events waiting for the caller; a newer preview of a variant replaces a queued one,
    so a slow caller costs memory for at most one preview per variant."""

    def __init__(self) -> None:
        self._items: collections.deque[RenderEvent] = collections.deque()
        self._ready = asyncio.Event()
        self._error: BaseException | None = None

    def put(self, event: RenderEvent) -> None:
        if self._error is not None:
            return  # the request is failing: nothing more goes out
        if isinstance(event, VariantPreview):
            for i, queued in enumerate(self._items):
                if isinstance(queued, VariantPreview) and queued.variant == event.variant:
                    self._items[i] = event
                    return
        self._items.append(event)
        self._ready.set()

    def fail(self, error: BaseException) -> None:
        """Ends the stream with ``error`` after the results already finished."""
        if self._error is None:
            self._error = error
            finished = [e for e in self._items if isinstance(e, VariantDone)]
            self._items = collections.deque(finished)
        self._ready.set()

    async def get(self, timeout_s: float) -> RenderEvent:
        """The next event; results finished before a failure still go out before it."""
        while not self._items:
            if self._error is not None:
                raise self._error
            self._ready.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can return the event
            # and drop a cancel that lands at the same moment.
            async with asyncio.timeout(timeout_s):
                await self._ready.wait()
        return self._items.popleft()


class _Run:
    """The state of one request while its variants render."""

    def __init__(
        self,
        renderer: Renderer,
        checked: CheckedJob,
        workflow: Workflow,
        controlnet: ControlNetWiring | None,
        backends: list[RenderBackend],
        until: float,
    ) -> None:
        self.renderer = renderer
        self.config = renderer.config
        self.checked = checked
        self.workflow = workflow
        self.controlnet = controlnet
        self.backends = backends
        self.until = until
        self.outbox = _Outbox()
        # Prompts that may be on a backend: registered before their submission starts,
        # dropped once they ended there.
        self.outstanding: dict[str, RenderBackend] = {}
        # Prompts whose submission has not answered yet: the request may still land
        # after a first withdrawal.
        self.submitting: set[str] = set()
        self.unreleased = set(range(len(backends)))
        self.request_id = request_id_var.get()
        self.previews_warned = False
        self.upload_ms = 0.0
        self.settled = renderer.open_run()
        self.pacing = FollowPacing(
            queue_poll_s=self.config.queue_poll_interval_s,
            history_poll_s=self.config.history_poll_interval_s,
        )

    def release(self, index: int) -> None:
        if index in self.unreleased:
            self.unreleased.discard(index)
            self.renderer.pool.release(self.backends[index])

    async def stream(self) -> AsyncIterator[RenderEvent]:
        tasks: list[asyncio.Task[None]] = []
        try:
            names = await self._upload()
            for index, backend in enumerate(self.backends):
                task = asyncio.create_task(self._variant(index, backend, names[backend.name]))
                self.renderer._count_pending(1)
                task.add_done_callback(self._on_variant_done)
                tasks.append(task)
            finished = 0
            while finished < len(tasks):
                timeout = self.until - time.monotonic()
                try:
                    event = await self.outbox.get(max(0.0, timeout))
                except TimeoutError:
                    raise DeadlineExceededError(
                        f"the render did not finish within its time budget "
                        f"({self.config.render_timeout_s:g} s or the caller's deadline)"
                    ) from None
                if isinstance(event, VariantDone):
                    finished += 1
                yield event
            # Every result is out; the variants end as soon as the backend has forgotten
            # their prompts, and the request only after them.
            if tasks:
                await asyncio.wait(tasks, timeout=self.config.cancel_timeout_s)
        finally:
            for task in tasks:
                task.cancel()
            # Shielded: a second cancel of the handler must not end the withdrawal half-way
            # and leave prompts of this request on a GPU.
            cleanup = asyncio.create_task(self._cleanup(tasks))
            cleanup.add_done_callback(self._settle)
            await asyncio.shield(cleanup)

    def _settle(self, _: asyncio.Task[None]) -> None:
        if not self.settled.done():
            self.settled.set_result(None)

    def _on_variant_done(self, task: asyncio.Task[None]) -> None:
        self.renderer._count_pending(-1)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.outbox.fail(error)

    async def _cleanup(self, tasks: list[asyncio.Task[None]]) -> None:
        """Withdraws the prompts first, then ends the variant tasks.

        Withdrawing first: a variant task that swallowed its cancel (a library may) ends
        anyway once its prompt is gone, and none of this request's prompts waits for a
        task to end. The tasks are cancelled again until they are done, so one swallowed
        cancel cannot leave a task following a prompt nobody waits for. Prompts whose
        submission was in flight are withdrawn once more after their task ended.
        """
        outstanding = dict(self.outstanding)
        in_flight = {p: b for p, b in outstanding.items() if p in self.submitting}
        await self._withdraw(outstanding)
        pending = {task for task in tasks if not task.done()}
        reported_at = time.monotonic() + self.config.cancel_timeout_s
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.1)
            if pending and time.monotonic() > reported_at:
                reported_at = float("inf")
                _log.error(
                    "variant tasks ignore their cancellation; still cancelling",
                    extra={"tasks": len(pending), "timeout_s": self.config.cancel_timeout_s},
                )
        self.outstanding.clear()
        for index in list(self.unreleased):
            self.release(index)
        await self._withdraw(in_flight)

    async def _withdraw(self, outstanding: Mapping[str, RenderBackend]) -> None:
        if not outstanding:
            return
        by_backend: dict[str, tuple[RenderBackend, list[str]]] = {}
        for prompt_id, backend in outstanding.items():
            by_backend.setdefault(backend.name, (backend, []))[1].append(prompt_id)
        try:
            async with asyncio.timeout(self.config.cancel_timeout_s):
                await asyncio.gather(
                    *(_withdraw(b, ids) for b, ids in by_backend.values()), return_exceptions=True
                )
        except TimeoutError:
            _log.error(
                "could not withdraw every prompt in time",
                extra={"prompts": list(outstanding), "timeout_s": self.config.cancel_timeout_s},
            )

    async def _upload(self) -> dict[str, dict[str, str | None]]:
        """Uploads the source (and control image) once per backend used."""
        started = time.monotonic()
        checked = self.checked
        control = checked.controlnet.control_image if checked.controlnet is not None else None
        distinct = {backend.name: backend for backend in self.backends}

        # Named by content: the same source is stored once however often it is sent, and
        # the caller's file name never reaches the server's disk. The mask goes as the
        # one-channel PNG it was normalised to (white = change).
        files = {
            key: (image.data, f"{image.sha256}.{_FORMAT_EXTENSIONS[image.format]}")
            for key, image in (("source", checked.source), ("control", control))
            if image is not None
        }
        if checked.mask is not None and self.workflow.has("mask"):
            files["mask"] = (checked.mask.png, f"{checked.mask.sha256}-mask.png")

        async def one(backend: RenderBackend) -> tuple[str, dict[str, str | None]]:
            names: dict[str, str | None] = {"source": None, "control": None, "mask": None}
            for key, (data, filename) in files.items():
                names[key] = await backend.upload(
                    data,
                    filename,
                    folder=self.config.upload_subfolder,
                    deadline=self.until,
                )
            return backend.name, names

        try:
            uploaded = dict(await asyncio.gather(*(one(b) for b in distinct.values())))
        except BackendError as e:
            raise BackendUnavailableError(f"upload failed: {e}", backend=e.backend) from e
        self.upload_ms = (time.monotonic() - started) * 1000
        if checked.source is not None or control is not None:
            STAGE_SECONDS.labels(service="render", stage="upload").observe(self.upload_ms / 1000)
        return uploaded

    async def _variant(
        self, index: int, backend: RenderBackend, names: dict[str, str | None]
    ) -> None:
        checked = self.checked
        spec = _spec(
            self.workflow,
            checked,
            index,
            names["source"],
            names["control"],
            self.controlnet,
            self.config,
            names["mask"],
        )
        prompt_id = str(uuid.uuid4())
        seed = checked.seeds[index]
        s = checked.settings
        _log.info(
            "queueing variant",
            extra={
                "variant": index,
                "prompt_id": prompt_id,
                "backend": backend.name,
                "workflow": self.workflow.name,
                "seed": seed,
                "positive_prompt": checked.positive,
                "negative_prompt": checked.negative,
                "steps": s.steps,
                "cfg": s.cfg,
                "guidance": s.guidance,
                "sampler_name": s.sampler_name,
                "scheduler": s.scheduler,
                "denoise": s.denoise,
                "width": checked.render_size.width,
                "height": checked.render_size.height,
                "loras": [[lora.name, lora.strength] for lora in checked.loras],
                "controlnet": self.controlnet.__dict__ if self.controlnet is not None else None,
            },
        )
        try:
            timings = await self._follow(index, backend, prompt_id, spec)
            fetch_started = time.monotonic()
            try:
                raw = await backend.fetch(timings.result)
            except BackendError as e:
                raise BackendUnavailableError(
                    f"fetching the result failed: {e}", backend=e.backend
                ) from e
            record = self._record(index, backend, prompt_id, timings.models)
            metadata = {
                PARAMETERS_KEY: parameters_text(record),
                PROVENANCE_KEY: provenance_json(record),
                PROMPT_KEY: json.dumps(timings.recipe, ensure_ascii=False),
            }
            # One trip to a worker thread for everything that touches pixels.
            finished = await asyncio.to_thread(
                lambda: finish_result(
                    raw, checked.output_size, metadata, checked.encoding, _kept_source(checked)
                )
            )
            fetch_s = time.monotonic() - fetch_started
            STAGE_SECONDS.labels(service="render", stage="fetch").observe(fetch_s)
            _log.info(
                "variant rendered",
                extra={
                    "variant": index,
                    "prompt_id": prompt_id,
                    "backend": backend.name,
                    "seed": seed,
                    "upload_ms": round(self.upload_ms, 1),
                    "queue_wait_ms": round(timings.queue_wait_s * 1000, 1),
                    "sampling_ms": round(timings.sampling_s * 1000, 1),
                    "fetch_ms": round(fetch_s * 1000, 1),
                    "render_size": str(checked.render_size),
                    "output_size": str(checked.output_size),
                },
            )
            self.outbox.put(
                VariantDone(
                    index=index,
                    seed=seed,
                    image=finished,
                    settings=s,
                    positive=checked.positive,
                    negative=checked.negative,
                    render_size=checked.render_size,
                    workflow=self.workflow.name,
                    prompt_id=prompt_id,
                    backend=backend.name,
                )
            )
            if timings.forgotten is not None:
                # The history entry was deleted while the result was finished and sent;
                # the variant ends once it is gone (shielded: a cancel here does not
                # stop the deletion, the backend finishes it).
                await asyncio.shield(timings.forgotten)
        finally:
            self.release(index)

    async def _follow(
        self, index: int, backend: RenderBackend, prompt_id: str, spec: VariantSpec
    ) -> _Followed:
        """Submits the variant's prompt and streams its events until it ends."""
        queued_at = time.monotonic()
        started_at: float | None = None
        last_preview = float("-inf")
        sampled = previewed = False
        self.outstanding[prompt_id] = backend
        self.submitting.add(prompt_id)
        events = backend.follow(
            spec,
            prompt_id,
            labels={"request_id": self.request_id, "variant": index},
            deadline=self.until,
            pacing=self.pacing,
        )
        try:
            async with contextlib.aclosing(events):
                async for event in events:
                    self.submitting.discard(prompt_id)
                    if isinstance(event, PromptQueued):
                        self.outbox.put(VariantQueued(index, event.position))
                    elif isinstance(event, PromptStarted):
                        started_at = time.monotonic()
                    elif isinstance(event, PromptProgress):
                        sampled = True
                        self.outbox.put(VariantProgress(index, event.step, event.total))
                    elif isinstance(event, PromptPreview):
                        previewed = True
                        now = time.monotonic()
                        if not self.checked.previews or now - last_preview < (
                            self.config.preview_interval_s
                        ):
                            continue
                        last_preview = now
                        try:
                            image = await asyncio.to_thread(
                                preview_jpeg, event.image, event.mime_type
                            )
                        except OSError:
                            continue  # a broken preview is not worth failing the render
                        self.outbox.put(VariantPreview(index, event.step, image))
                    elif isinstance(event, PromptFinished):
                        self.outstanding.pop(prompt_id, None)
                        if sampled and not previewed:
                            self._previews_missing(backend)
                        end = time.monotonic()
                        begin = started_at if started_at is not None else end
                        STAGE_SECONDS.labels(service="render", stage="queue_wait").observe(
                            begin - queued_at
                        )
                        STAGE_SECONDS.labels(service="render", stage="sampling").observe(
                            end - begin
                        )
                        return _Followed(
                            event.result,
                            event.recipe,
                            begin - queued_at,
                            end - begin,
                            event.models,
                            event.forgotten,
                        )
        except PromptRefusedError as e:
            raise _backend_refusal(e, self.workflow) from e
        except PromptFailedError as e:
            self.outstanding.pop(prompt_id, None)
            raise _failure(e) from e
        except PromptLostError as e:
            self.outstanding.pop(prompt_id, None)
            raise BackendUnavailableError(str(e), backend=e.backend) from e
        except BackendError as e:
            raise BackendUnavailableError(str(e), backend=e.backend) from e
        finally:
            self.submitting.discard(prompt_id)
        raise BackendUnavailableError(
            f"prompt {prompt_id} ended without an outcome", backend=backend.name
        )

    def _previews_missing(self, backend: RenderBackend) -> None:
        """A variant sampled without a single preview: say so once per request."""
        if not self.checked.previews or self.previews_warned:
            return
        self.previews_warned = True
        self.outbox.put(
            RenderWarning(
                "PREVIEWS_UNAVAILABLE",
                f"previews were requested but {backend.name} sends none (ComfyUI started "
                "without --preview-method, or with it set to none)",
            )
        )

    def _record(
        self, index: int, backend: RenderBackend, prompt_id: str, models: tuple[str, ...] = ()
    ) -> RenderRecord:
        checked = self.checked
        cn = checked.controlnet
        controlnet = None
        if cn is not None and self.controlnet is not None:
            controlnet = {
                "type": cn.kind.value,
                "model": self.controlnet.model,
                "union": self.controlnet.union_kind is not None,
                "strength": cn.strength,
                "start_percent": cn.start_percent,
                "end_percent": cn.end_percent,
                "control_image_sha256": cn.control_image.sha256 if cn.control_image else "",
            }
        source_size = (
            Size(checked.source.width, checked.source.height)
            if checked.source is not None
            else None
        )
        return RenderRecord(
            positive=checked.positive,
            negative=checked.negative,
            settings=checked.settings,
            seed=checked.seeds[index],
            variant=index,
            workflow=self.workflow.name,
            # What the backend loaded (it chose among a template's alternatives), else
            # what the template names.
            models=list(models) or [value for _, _, value in self.workflow.required_models],
            loras=[(lora.name, lora.strength) for lora in checked.loras],
            controlnet=controlnet,
            source_size=source_size,
            render_size=checked.render_size,
            output_size=checked.output_size,
            resize_filter=RESIZE_FILTER,
            scaled_for_cap=checked.capped,
            source_sha256=checked.source.sha256 if checked.source is not None else "",
            backend=backend.name,
            prompt_id=prompt_id,
            provenance=checked.provenance,
            edit=self.workflow.edit.value if self.workflow.edit is not None else "",
            mask_sha256=checked.mask.sha256 if checked.mask is not None else "",
            kept_outside_mask=checked.mask is not None,
        )


def _kept_source(checked: CheckedJob) -> tuple[Image.Image, Image.Image] | None:
    """``(source, mask)`` when the result must keep the source outside the mask."""
    if checked.mask is None or checked.source is None:
        return None
    return checked.source.open(), checked.mask.open()


@dataclass(frozen=True)
class _Followed:
    result: StoredResult
    recipe: Mapping[str, Any]
    queue_wait_s: float
    sampling_s: float
    models: tuple[str, ...] = ()
    forgotten: asyncio.Future[None] | None = None


def _backend_refusal(error: PromptRefusedError, workflow: Workflow) -> ImagegenError:
    """A variant the backend refused despite the pre-check (its own validation differs,
    or a model file went away since the backend's lists were read)."""
    if any(p.is_missing_model for p in error.problems):
        return _refusal(list(error.problems), workflow)
    violations = [FieldViolation(p.field, p.message) for p in error.problems if p.field]
    if violations:
        return InvalidArgumentError(str(error), violations)
    return FailedPreconditionError(
        str(error), reason=error.reason, metadata={"backend": error.backend}
    )


async def _withdraw(backend: RenderBackend, prompt_ids: list[str]) -> None:
    """Withdraws the prompts from ``backend``; the backend keeps watching those it still
    holds (an interrupt takes effect only when the running node ends)."""
    try:
        remaining = await backend.withdraw(prompt_ids)
    except Exception as e:
        # Includes a backend closed by a stopping server.
        _log.warning(
            "withdrawing prompts failed", extra={"backend": backend.name, "error": repr(e)}
        )
        return
    _log.info(
        "prompts withdrawn" if not remaining else "prompts being withdrawn",
        extra={"backend": backend.name, "prompts": prompt_ids, "still_held": list(remaining)},
    )
