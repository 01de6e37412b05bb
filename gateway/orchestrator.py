"""The pipeline of a request: validate, analyse, plan, render, and say what happened.

``Generate`` is an async generator of ``GenerateResponse`` events, yielded the moment
each thing happens::

    validate ─► admit ─► analysis ──────► plan ─────────► render ─────────────► done
                  │         │                 │               │
               Accepted   StageStarted      StageStarted    StageStarted        Completed
                          Heartbeat …       Heartbeat …     queued / progress /  (timings)
                          AnalysisReady     PlanReady       preview / result /
                          + warnings        + warnings      warning per variant

The analysis runs for image-to-image only (a caller's description replaces the model).

- ``accepted`` goes out as soon as the request is valid and admitted (request id, seed,
  variants, mode, workflow), before any downstream call; ``stage`` marks the start of the
  analysis, the plan and the render (with the model and whether a cache serves it), and
  ``heartbeat`` repeats every ``heartbeat_interval_s`` while a model call runs.
- Every name the request gives (workflow, LoRA, ControlNet, sampler, scheduler) is
  checked against the capabilities (:mod:`gateway.capabilities`) before any model runs.
- The caller's limits are charged (:func:`gateway.limits.admit`) only once the request
  is valid, and before any model is asked.
- One analysis and one plan serve every variant; variant i renders seed + i, the seed
  picked here when the caller gave none, so it can be reported.
- An identical recent request (same image, instruction, description, overrides) reuses
  the analysis and plan without a model call (:mod:`gateway.reuse`).
- An approved plan (``GenerateRequest.plan``) is rendered as given: no model is asked.
  Its prompts, and the caller's ``prompt`` / ``negative_prompt`` overrides (which replace
  the planned ones), are cleaned by the planner's rules first (:mod:`gateway.caller_prompts`).
- Model calls go through the phase scheduler (:mod:`gateway.scheduler`), so concurrent
  requests share the GPU in phases rather than swapping models per request.
- The caller's deadline is split across the stages (:mod:`gateway.deadlines`) and handed
  to every downstream call; cancelling the caller cancels the downstream call in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import grpc
import grpc.aio
from google.rpc import error_details_pb2

from gateway.caller_prompts import CallerPrompts
from gateway.capabilities import Capabilities
from gateway.deadlines import Deadline, Stage, StageBudgets
from gateway.downstream import Downstream, relay_error
from gateway.edit_modes import (
    KONTEXT_MISSING_REASON,
    EditChoice,
    EditMode,
    KontextAvailability,
    choose_edit_mode,
    kontext_listed,
)
from gateway.jobs import GenerateJob, Mode, PlanInputs
from gateway.limits import admit
from gateway.notices import analysis_warnings, plan_warnings, warning
from gateway.provenance import build_provenance
from gateway.render_events import WORK_EVENTS, gateway_event
from gateway.reuse import PlanReuseCache, ReusedPlan, reuse_key
from gateway.scheduler import PhaseGate
from gateway.validation import RequestLimits, validate_generate, validate_plan, validated
from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from imagegen.planner.v1 import planner_pb2
from imagegen.render.v1 import render_pb2
from imagegen.vision.v1 import vision_pb2
from services.common.errors import BackendFailedError, DeadlineExceededError, DownstreamError
from services.common.logs import get_logger, request_id_var
from services.common.metrics import FALLBACKS_TOTAL, STAGE_SECONDS
from services.common.request_rules import enum_name
from services.common.sampler import overlay, overrides_from_proto, overrides_to_proto

__all__ = ["RANDOM_SEED_BOUND", "Orchestrator", "OrchestratorConfig", "StageTimer"]

RANDOM_SEED_BOUND = 2**32
"""Random seeds are drawn below this: plenty of variety, and short enough to type back."""

_SERVICE = "gateway"
_Response = TypeVar("_Response")
_Result = TypeVar("_Result")
_log = get_logger(__name__)


@dataclass(frozen=True)
class OrchestratorConfig:
    """The orchestrator's knobs (taken from the gateway settings).

    Attributes:
        limits: Request bounds.
        budgets: Shares of the deadline for analysis and planning.
        default_deadline_s: Deadline of a call whose caller set none.
        single_gpu: Renders run in an exclusive ``render`` phase of the scheduler.
        heartbeat_interval_s: A ``heartbeat`` event is sent this often while a model call runs.
        kontext_recheck_s: How long a render's refusal of the missing Kontext model is
            trusted before AUTO tries Kontext again.
    """

    limits: RequestLimits = field(default_factory=RequestLimits)
    budgets: StageBudgets = field(default_factory=StageBudgets)
    default_deadline_s: float = 900.0
    single_gpu: bool = False
    heartbeat_interval_s: float = 2.0
    kontext_recheck_s: float = 300.0


class StageTimer:
    """Wall-clock time per stage, reported in the ``completed`` event and as metrics."""

    ORDER = (Stage.VALIDATE, Stage.ANALYZE, Stage.PLAN, Stage.RENDER_WAIT, Stage.RENDER)

    def __init__(self) -> None:
        self._started = time.monotonic()
        self.millis: dict[Stage, float] = {}

    @contextlib.contextmanager
    def measure(self, stage: Stage) -> Iterator[None]:
        """Times the block as ``stage`` (added to what the stage already took)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.add(stage, time.monotonic() - started)

    def add(self, stage: Stage, seconds: float) -> None:
        """Records ``seconds`` spent in ``stage``."""
        self.millis[stage] = self.millis.get(stage, 0.0) + seconds * 1000.0
        STAGE_SECONDS.labels(service=_SERVICE, stage=stage.value).observe(seconds)

    def timings(self) -> list[gateway_pb2.StageTiming]:
        """Every stage in pipeline order (0 for a skipped one), ``total`` last."""
        total_s = time.monotonic() - self._started
        STAGE_SECONDS.labels(service=_SERVICE, stage="total").observe(total_s)
        timings = [
            gateway_pb2.StageTiming(stage=stage.value, millis=self.millis.get(stage, 0.0))
            for stage in self.ORDER
        ]
        timings.append(gateway_pb2.StageTiming(stage="total", millis=total_s * 1000.0))
        return timings


@dataclass
class _Prepared:
    """The outcome of analysis and planning for one request."""

    analysis: common_pb2.ImageAnalysis | None = None
    plan: common_pb2.PromptPlan | None = None
    reused: bool = False


def _event(**kwargs: object) -> gateway_pb2.GenerateResponse:
    return gateway_pb2.GenerateResponse(**kwargs)  # type: ignore[arg-type]


def _user_analysis(inputs: PlanInputs) -> common_pb2.ImageAnalysis:
    """The analysis of a caller's own description: no model is asked."""
    assert inputs.image is not None and inputs.description is not None
    return common_pb2.ImageAnalysis(
        description=inputs.description,
        source=common_pb2.ANALYSIS_SOURCE_USER,
        width=inputs.image.width,
        height=inputs.image.height,
        image_sha256=inputs.image.sha256,
    )


class Orchestrator:
    """Runs requests through the vision, planner and render services.

    Args:
        downstream: Stubs of the three services.
        config: Limits, budgets and mode.
        scheduler: Groups model calls of concurrent requests into phases.
        reuse: Recent analyses and plans.
        capabilities: What the system has; a request's names are checked against it.
    """

    def __init__(
        self,
        downstream: Downstream,
        *,
        config: OrchestratorConfig,
        scheduler: PhaseGate,
        reuse: PlanReuseCache,
        capabilities: Capabilities,
    ) -> None:
        self._downstream = downstream
        self._config = config
        self._scheduler = scheduler
        self._reuse = reuse
        self._capabilities = capabilities
        self._kontext = KontextAvailability(config.kontext_recheck_s)

    # ------------------------------------------------------------------ the RPCs

    async def generate(
        self, request: gateway_pb2.GenerateRequest, *, time_remaining: float | None
    ) -> AsyncGenerator[gateway_pb2.GenerateResponse, None]:
        """Runs one ``Generate`` call.

        Args:
            request: The caller's request.
            time_remaining: The caller's deadline in seconds from now; None if it set none.

        Yields:
            The events, in the order they happen, ``completed`` last.

        Raises:
            ImagegenError: Invalid input, the caller over its limits, an exhausted
                deadline, or a downstream failure (relayed with its own status and details).
        """
        deadline = self._deadline(time_remaining)
        timer = StageTimer()
        with timer.measure(Stage.VALIDATE):
            job = await validated(validate_generate, request, self._config.limits)
        admit(job.variants)
        inputs = job.inputs
        seed = job.seed if job.seed is not None else secrets.randbelow(RANDOM_SEED_BOUND)
        request_id = request_id_var.get()
        _log.info(
            "generate",
            extra={
                "mode": inputs.mode.name,
                "instruction": inputs.instruction,
                "variants": job.variants,
                "seed": seed,
                "seed_chosen": job.seed is None,
                "image_sha256": inputs.image.sha256 if inputs.image else "",
                "approved_plan": job.approved_plan is not None,
            },
        )
        if self._capabilities.last is None:
            # Only the first request after a start waits for the catalog before
            # `accepted`: it names the default workflow.
            await self._capabilities.get()
        yield _event(
            accepted=gateway_pb2.Accepted(
                request_id=request_id,
                seed=seed,
                variants=job.variants,
                mode=inputs.mode.value,
                workflow=job.workflow or self._capabilities.default_workflow(inputs.mode.value),
            )
        )
        # Unknown names are refused before any model spends its time on the request.
        await self._capabilities.check(job)
        if inputs.mode is Mode.TEXT_TO_IMAGE and inputs.description is not None:
            yield _event(warning=_DESCRIPTION_IGNORED)
        for notice in job.caller_prompts.warnings:
            yield _event(warning=notice)

        prepared = _Prepared()
        if job.approved_plan is not None:
            for event in self._approved(job, prepared):
                yield event
        else:
            async for event in self._prepare(
                inputs, deadline, timer, prepared, caller=job.caller_prompts
            ):
                yield event
        assert prepared.plan is not None

        yield _stage("render")
        results = 0
        async for event in self._render_edit(job, seed, prepared, request_id, deadline, timer):
            results += event.HasField("result")
            yield event
        if results < job.variants:
            raise BackendFailedError(
                f"render service: the stream ended after {results} of {job.variants} variants",
                backend="render",
                reason="RENDER_INCOMPLETE",
            )

        timings = timer.timings()
        _log.info(
            "generated",
            extra={"seed": seed, "variants": job.variants}
            | {f"{t.stage}_ms": round(t.millis, 1) for t in timings},
        )
        yield _event(
            completed=gateway_pb2.Completed(
                timings=timings, request_id=request_id, seed=seed, variants=job.variants
            )
        )

    async def plan(
        self, request: gateway_pb2.PlanRequest, *, time_remaining: float | None
    ) -> gateway_pb2.PlanResponse:
        """Runs one ``Plan`` call: analysis and plan, no render.

        Args:
            request: The caller's request.
            time_remaining: The caller's deadline in seconds from now; None if it set none.

        Returns:
            The analysis, the plan, every warning, and whether they were reused.
        """
        deadline = self._deadline(time_remaining)
        timer = StageTimer()
        with timer.measure(Stage.VALIDATE):
            inputs = await validated(validate_plan, request, self._config.limits)
        admit(1)  # a plan runs both models, as a one-variant generation does
        response = gateway_pb2.PlanResponse()
        if inputs.mode is Mode.TEXT_TO_IMAGE and inputs.description is not None:
            response.warnings.append(_DESCRIPTION_IGNORED)
        prepared = _Prepared()
        async for event in self._prepare(inputs, deadline, timer, prepared):
            if event.HasField("warning"):
                response.warnings.append(event.warning)
        assert prepared.plan is not None
        if prepared.analysis is not None:
            response.analysis.CopyFrom(prepared.analysis)
        response.plan.CopyFrom(prepared.plan)
        response.reused = prepared.reused
        return response

    # ------------------------------------------------------------------ stages

    def _deadline(self, time_remaining: float | None) -> Deadline:
        return Deadline.start(
            time_remaining,
            default_s=self._config.default_deadline_s,
            budgets=self._config.budgets,
        )

    def _approved(
        self, job: GenerateJob, prepared: _Prepared
    ) -> Iterator[gateway_pb2.GenerateResponse]:
        """Takes the caller's approved plan as it is; no model is asked."""
        inputs = job.inputs
        plan = common_pb2.PromptPlan()
        assert job.approved_plan is not None
        plan.CopyFrom(job.approved_plan)
        plan.source = common_pb2.PLAN_SOURCE_USER
        plan.settings.CopyFrom(
            overrides_to_proto(
                overlay(overrides_from_proto(plan.settings), overrides_from_proto(inputs.overrides))
            )
        )
        if inputs.mode is Mode.IMAGE_TO_IMAGE:
            # The analysis only feeds the provenance here; an earlier Plan call of the
            # same inputs left it in the reuse cache, a description makes one for free.
            earlier = self._reuse.get(reuse_key(inputs))
            if earlier is not None and earlier.analysis is not None:
                prepared.analysis = earlier.analysis
                yield _stage("analysis", earlier.analysis.model, cached=True)
                yield _event(
                    analysis=gateway_pb2.AnalysisReady(analysis=earlier.analysis, reused=True)
                )
            elif inputs.description is not None:
                prepared.analysis = _user_analysis(inputs)
                yield _stage("analysis")
                yield _event(analysis=gateway_pb2.AnalysisReady(analysis=prepared.analysis))
        prepared.plan = plan
        _log.info("approved plan", extra=_plan_log(plan))
        yield _stage("plan")
        yield _event(plan=gateway_pb2.PlanReady(plan=plan))

    async def _prepare(
        self,
        inputs: PlanInputs,
        deadline: Deadline,
        timer: StageTimer,
        prepared: _Prepared,
        *,
        caller: CallerPrompts | None = None,
    ) -> AsyncIterator[gateway_pb2.GenerateResponse]:
        """Analysis and plan, reused when an identical request made them recently.

        The caller's prompt overrides replace the planned prompts in what is reported
        and rendered; the plan kept for reuse stays the planner's.
        """
        caller = caller or CallerPrompts()
        key = reuse_key(inputs)
        earlier = self._reuse.get(key)
        if earlier is not None:
            prepared.analysis, prepared.reused = earlier.analysis, True
            prepared.plan = caller.apply(earlier.plan)
            if earlier.analysis is not None:
                earlier.analysis.cached = True
                yield _stage("analysis", earlier.analysis.model, cached=True)
                yield _event(
                    analysis=gateway_pb2.AnalysisReady(analysis=earlier.analysis, reused=True)
                )
            yield _stage("plan", earlier.plan.model, cached=True)
            yield _event(plan=gateway_pb2.PlanReady(plan=prepared.plan, reused=True))
            _log.info("reused analysis and plan", extra=_plan_log(earlier.plan))
            return

        if inputs.mode is Mode.IMAGE_TO_IMAGE:
            analyses: list[common_pb2.ImageAnalysis] = []
            with timer.measure(Stage.ANALYZE):
                if inputs.description is not None:
                    yield _stage("analysis")
                    analyses.append(_user_analysis(inputs))
                else:
                    yield _stage("analysis", self._capabilities.model("vision"))
                    async for beat in self._beating(
                        "analysis", self._analyze(inputs, deadline), analyses
                    ):
                        yield beat
            analysis = analyses[0]
            prepared.analysis = analysis
            yield _event(analysis=gateway_pb2.AnalysisReady(analysis=analysis))
            for notice in analysis_warnings(analysis):
                yield _event(warning=notice)

        plans: list[common_pb2.PromptPlan] = []
        with timer.measure(Stage.PLAN):
            yield _stage("plan", self._capabilities.model("planner"))
            async for beat in self._beating(
                "plan", self._plan(inputs, prepared.analysis, deadline), plans
            ):
                yield beat
        plan = plans[0]
        prepared.plan = caller.apply(plan)
        yield _event(plan=gateway_pb2.PlanReady(plan=prepared.plan))
        for notice in plan_warnings(plan):
            yield _event(warning=notice)
        self._reuse.put(key, ReusedPlan(analysis=prepared.analysis, plan=plan))

    async def _beating(
        self, stage: str, call: Coroutine[object, object, _Result], out: list[_Result]
    ) -> AsyncIterator[gateway_pb2.GenerateResponse]:
        """Runs ``call``, yielding a ``heartbeat`` each interval it is still running.

        Its result is appended to ``out``; its exception is raised. Closing the
        generator (the caller went away) cancels the call.
        """
        started = time.monotonic()
        task = asyncio.ensure_future(call)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self._config.heartbeat_interval_s)
                if done:
                    break
                elapsed = (time.monotonic() - started) * 1000.0
                yield _event(heartbeat=gateway_pb2.Heartbeat(stage=stage, elapsed_millis=elapsed))
            out.append(task.result())
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _analyze(self, inputs: PlanInputs, deadline: Deadline) -> common_pb2.ImageAnalysis:
        assert inputs.image is not None
        request = vision_pb2.AnalyzeImageRequest(
            image=common_pb2.Image(data=inputs.image.data, mime_type=inputs.image.mime_type)
        )
        response: vision_pb2.AnalyzeImageResponse = await self._model_call(
            "vision", Stage.ANALYZE, deadline, self._downstream.vision.AnalyzeImage, request
        )
        analysis = response.analysis
        if analysis.source == common_pb2.ANALYSIS_SOURCE_METADATA_FALLBACK:
            FALLBACKS_TOTAL.labels(service=_SERVICE, kind="analysis").inc()
        _log.info(
            "analysed",
            extra={
                "analysis_source": enum_name(common_pb2.AnalysisSource, analysis.source),
                "model": analysis.model,
                "description": analysis.description,
            },
        )
        return analysis

    async def _plan(
        self,
        inputs: PlanInputs,
        analysis: common_pb2.ImageAnalysis | None,
        deadline: Deadline,
    ) -> common_pb2.PromptPlan:
        request = planner_pb2.PlanPromptRequest(
            instruction=inputs.instruction, mode=inputs.mode.value, overrides=inputs.overrides
        )
        if analysis is not None:
            request.analysis.CopyFrom(analysis)
        response: planner_pb2.PlanPromptResponse = await self._model_call(
            "planner", Stage.PLAN, deadline, self._downstream.planner.PlanPrompt, request
        )
        plan = response.plan
        if plan.source == common_pb2.PLAN_SOURCE_RULES:
            FALLBACKS_TOTAL.labels(service=_SERVICE, kind="plan").inc()
        _log.info("planned", extra=_plan_log(plan))
        return plan

    async def _model_call(
        self,
        service: str,
        stage: Stage,
        deadline: Deadline,
        method: Callable[..., Awaitable[_Response]],
        request: object,
    ) -> _Response:
        """One vision or planner call inside its scheduler phase and its stage budget."""
        budget = deadline.timeout_for(stage)
        stage_end = time.monotonic() + budget
        try:
            async with self._scheduler.phase(service, timeout_s=budget):
                timeout = stage_end - time.monotonic()
                if timeout <= 0:
                    raise TimeoutError
                try:
                    return await method(request, timeout=timeout)
                except grpc.aio.AioRpcError as e:
                    raise relay_error(service, e, timeout_s=budget) from e
        except TimeoutError as e:
            raise DeadlineExceededError(
                f"no time left for the {stage.value} stage: the {service} phase did not "
                f"start within its {budget:.1f} s budget",
                metadata={"service": service},
            ) from e

    def _edit_choice(self, job: GenerateJob, plan: common_pb2.PromptPlan) -> EditChoice | None:
        """How the edit is rendered; None for text-to-image or a caller-named workflow."""
        if job.inputs.mode is not Mode.IMAGE_TO_IMAGE or job.workflow:
            return None
        return choose_edit_mode(
            job.edit_mode,
            plan.intent,
            has_mask=job.mask is not None,
            has_controlnet=job.controlnet is not None,
            kontext_available=(
                self._kontext.available() and kontext_listed(self._capabilities.last)
            ),
        )

    async def _render_edit(
        self,
        job: GenerateJob,
        seed: int,
        prepared: _Prepared,
        request_id: str,
        deadline: Deadline,
        timer: StageTimer,
    ) -> AsyncIterator[gateway_pb2.GenerateResponse]:
        """Renders in the chosen edit mode; AUTO falls back when Kontext is refused.

        The Kontext attempt holds its warnings back until it is under way, so a refused
        attempt leaves no trace but the ``KONTEXT_UNAVAILABLE`` warning.
        """
        assert prepared.plan is not None
        choice = self._edit_choice(job, prepared.plan)
        if choice is not None and choice.kontext_unavailable:
            yield _event(warning=_kontext_unavailable(choice))
        request = self._render_request(job, seed, prepared, request_id, choice)
        auto = job.edit_mode in (common_pb2.EDIT_MODE_UNSPECIFIED, common_pb2.EDIT_MODE_AUTO)
        if choice is None or choice.mode is not EditMode.KONTEXT or not auto:
            async for event in self._render(request, deadline, timer):
                yield event
            return
        held: list[gateway_pb2.GenerateResponse] | None = []
        try:
            async for event in self._render(request, deadline, timer):
                if held is not None and event.HasField("warning"):
                    held.append(event)
                    continue
                for early in held or ():
                    yield early
                held = None
                yield event
            for early in held or ():
                yield early
            return
        except DownstreamError as e:
            if held is None or not _kontext_missing(e):
                raise
        self._kontext.mark_missing()
        _log.warning("render backends lack the Kontext model; falling back")
        fallback = choose_edit_mode(
            job.edit_mode,
            prepared.plan.intent,
            has_mask=job.mask is not None,
            has_controlnet=job.controlnet is not None,
            kontext_available=False,
        )
        yield _event(warning=_kontext_unavailable(fallback))
        request = self._render_request(job, seed, prepared, request_id, fallback)
        async for event in self._render(request, deadline, timer):
            yield event

    def _render_request(
        self,
        job: GenerateJob,
        seed: int,
        prepared: _Prepared,
        request_id: str,
        choice: EditChoice | None,
    ) -> render_pb2.RenderRequest:
        inputs = job.inputs
        assert prepared.plan is not None
        plan = prepared.plan
        kontext = choice is not None and choice.mode is EditMode.KONTEXT
        mask_sha256 = job.mask.sha256 if job.mask is not None else ""
        request = render_pb2.RenderRequest(
            # Kontext follows an instruction; img2img and inpainting a description of the
            # finished image.
            positive_prompt=(
                plan.edit_instruction if kontext and plan.edit_instruction else plan.positive_prompt
            ),
            negative_prompt=plan.negative_prompt,
            settings=plan.settings,
            seed=seed,
            variants=job.variants,
            width=job.width,
            height=job.height,
            loras=job.loras,
            workflow=job.workflow or (choice.workflow if choice is not None else ""),
            previews=job.previews,
            provenance=build_provenance(
                inputs,
                prepared.analysis,
                plan,
                request_id,
                edit_mode=(
                    choice.mode.value if choice is not None else common_pb2.EDIT_MODE_UNSPECIFIED
                ),
                mask_sha256=mask_sha256,
            ),
            output_format=job.output_format,
            output_quality=job.output_quality,
            scale=job.scale,
        )
        if inputs.image is not None:
            request.source_image.CopyFrom(
                common_pb2.Image(data=inputs.image.data, mime_type=inputs.image.mime_type)
            )
        if job.controlnet is not None:
            request.controlnet.CopyFrom(job.controlnet)
        if job.mask is not None:
            mask = job.mask.image
            request.mask.CopyFrom(common_pb2.Image(data=mask.data, mime_type=mask.mime_type))
        return request

    async def _render(
        self, request: render_pb2.RenderRequest, deadline: Deadline, timer: StageTimer
    ) -> AsyncIterator[gateway_pb2.GenerateResponse]:
        """Streams the render's events; in single-GPU mode inside the exclusive render phase."""
        started = time.monotonic()
        async with contextlib.AsyncExitStack() as stack:
            if self._config.single_gpu:
                try:
                    admission = await stack.enter_async_context(
                        self._scheduler.phase(
                            "render", timeout_s=deadline.timeout_for(Stage.RENDER)
                        )
                    )
                except TimeoutError as e:
                    raise DeadlineExceededError(
                        "no time left to render: the GPU was not handed over before the deadline"
                    ) from e
                for note in admission.warnings:
                    yield _event(warning=warning("GPU_NOT_FREED", note))
            timeout = deadline.timeout_for(Stage.RENDER)
            call = self._downstream.render.Render(request, timeout=timeout)
            first_work: float | None = None
            try:
                async for response in call:
                    if first_work is None and response.WhichOneof("event") in WORK_EVENTS:
                        first_work = time.monotonic()
                        timer.add(Stage.RENDER_WAIT, first_work - started)
                    event = gateway_event(response)
                    if event is not None:
                        yield event
            except grpc.aio.AioRpcError as e:
                raise relay_error("render", e, timeout_s=timeout) from e
            finally:
                # A caller that went away (or a deadline) must stop the GPU work too: the
                # render service deletes its queued prompts and interrupts the running one.
                call.cancel()
            finished = time.monotonic()
            if first_work is None:
                timer.add(Stage.RENDER_WAIT, finished - started)
            else:
                timer.add(Stage.RENDER, finished - first_work)


_DESCRIPTION_IGNORED = warning(
    "DESCRIPTION_IGNORED",
    "the description was not used: it describes a source image, and this request has none "
    "(text-to-image)",
)


def _stage(name: str, model: str = "", *, cached: bool = False) -> gateway_pb2.GenerateResponse:
    return _event(stage=gateway_pb2.StageStarted(stage=name, model=model, cached=cached))


def _kontext_missing(error: DownstreamError) -> bool:
    return any(
        isinstance(d, error_details_pb2.ErrorInfo) and d.reason == KONTEXT_MISSING_REASON
        for d in error.details()
    )


def _kontext_unavailable(fallback: EditChoice) -> common_pb2.Warning:
    return warning(
        "KONTEXT_UNAVAILABLE",
        "no render backend has the FLUX.1 Kontext model; this local edit is rendered with "
        f"{fallback.mode.name.lower()} ({fallback.workflow}) instead",
    )


def _plan_log(plan: common_pb2.PromptPlan) -> dict[str, object]:
    settings = plan.settings
    return {
        "plan_source": enum_name(common_pb2.PlanSource, plan.source),
        "model": plan.model,
        "intent": enum_name(common_pb2.EditIntent, plan.intent),
        "positive_prompt": plan.positive_prompt,
        "negative_prompt": plan.negative_prompt,
        "denoise": settings.denoise,
        "steps": settings.steps,
        "cfg": settings.cfg,
        "guidance": settings.guidance,
        "sampler_name": settings.sampler_name,
        "scheduler": settings.scheduler,
    }
