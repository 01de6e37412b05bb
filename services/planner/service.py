"""The gRPC face of the planner service: proto in, domain call, proto out.

Errors are domain errors raised by the planner; the shared server interceptor turns them
into statuses with details.
"""

from __future__ import annotations

from typing import Any

import grpc.aio

from imagegen.common.v1 import common_pb2
from imagegen.planner.v1 import planner_pb2, planner_pb2_grpc
from services.common.errors import FieldViolation
from services.common.llm import ModelProbe, ModelState, Release
from services.common.request_rules import check_enum, raise_if_any
from services.common.retry import deadline_from_context
from services.common.sampler import overrides_from_proto, settings_to_proto
from services.planner.intents import Intent
from services.planner.planner import Planner, resolve_mode
from services.planner.plans import Mode, Plan, PlanRequest, PlanSource, SourceAnalysis

__all__ = [
    "SERVICE_NAME",
    "PlannerServicer",
    "plan_to_proto",
    "release_to_proto",
    "request_from_proto",
    "settings_to_proto",
]

SERVICE_NAME: str = planner_pb2.DESCRIPTOR.services_by_name["PlannerService"].full_name

_INTENTS = {
    Intent.COLOR_CHANGE: common_pb2.EDIT_INTENT_COLOR_CHANGE,
    Intent.MATERIAL_CHANGE: common_pb2.EDIT_INTENT_MATERIAL_CHANGE,
    Intent.STYLE_TRANSFER: common_pb2.EDIT_INTENT_STYLE_TRANSFER,
    Intent.ADD_OBJECT: common_pb2.EDIT_INTENT_ADD_OBJECT,
    Intent.REMOVE_OBJECT: common_pb2.EDIT_INTENT_REMOVE_OBJECT,
    Intent.LIGHTING_CHANGE: common_pb2.EDIT_INTENT_LIGHTING_CHANGE,
    Intent.MINOR_EDIT: common_pb2.EDIT_INTENT_MINOR_EDIT,
    Intent.FULL_REIMAGINING: common_pb2.EDIT_INTENT_FULL_REIMAGINING,
    Intent.TEXT_TO_IMAGE: common_pb2.EDIT_INTENT_TEXT_TO_IMAGE,
}
_SOURCES = {
    PlanSource.MODEL: common_pb2.PLAN_SOURCE_MODEL,
    PlanSource.RULES: common_pb2.PLAN_SOURCE_RULES,
}
_MODES = {
    common_pb2.GENERATION_MODE_IMAGE_TO_IMAGE: Mode.IMAGE_TO_IMAGE,
    common_pb2.GENERATION_MODE_TEXT_TO_IMAGE: Mode.TEXT_TO_IMAGE,
}


class PlannerServicer(planner_pb2_grpc.PlannerServiceServicer):
    """``imagegen.planner.v1.PlannerService``.

    Args:
        planner: The planner shared by all calls.
        probe: The readiness probe of the text model.
        backend: The kind of model server (``ollama``, ``openai``).
    """

    def __init__(self, planner: Planner, *, probe: ModelProbe, backend: str) -> None:
        self._planner = planner
        self._probe = probe
        self._backend = backend

    async def PlanPrompt(
        self,
        request: planner_pb2.PlanPromptRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> planner_pb2.PlanPromptResponse:
        """Plans one generation (see the proto for statuses)."""
        plan = await self._planner.plan(
            request_from_proto(request), deadline=deadline_from_context(context)
        )
        return planner_pb2.PlanPromptResponse(plan=plan_to_proto(plan))

    async def ReleaseModels(
        self,
        request: planner_pb2.ReleaseModelsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> planner_pb2.ReleaseModelsResponse:
        """Frees the GPU memory of the text model (see the proto)."""
        release = await self._planner.release_model(deadline=deadline_from_context(context))
        return release_to_proto(release)

    async def GetModelInfo(
        self,
        request: planner_pb2.GetModelInfoRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> planner_pb2.GetModelInfoResponse:
        """Names the text model and what its latest probe found; never calls the model."""
        probe = self._probe
        return planner_pb2.GetModelInfoResponse(
            model=probe.model,
            backend=self._backend,
            state=probe.state.value,
            reason="" if probe.state is ModelState.READY else probe.reason,
        )


def request_from_proto(request: planner_pb2.PlanPromptRequest) -> PlanRequest:
    """The domain form of a ``PlanPromptRequest`` (mode resolved, presence kept).

    Raises:
        InvalidArgumentError: ``mode`` holds a number the contract does not define.
    """
    violations: list[FieldViolation] = []
    check_enum(request.mode, common_pb2.GenerationMode, "mode", violations, unspecified_ok=True)
    raise_if_any(violations, "plan request")
    analysis = _analysis_from_proto(request.analysis) if request.HasField("analysis") else None
    return PlanRequest(
        instruction=request.instruction,
        mode=resolve_mode(_MODES.get(request.mode), analysis),
        analysis=analysis,
        overrides=overrides_from_proto(request.overrides),
    )


def _analysis_from_proto(analysis: common_pb2.ImageAnalysis) -> SourceAnalysis:
    return SourceAnalysis(
        description=analysis.description,
        subjects=tuple(analysis.subjects),
        colors=tuple(analysis.colors),
        materials=tuple(analysis.materials),
        style=analysis.style,
        lighting=analysis.lighting,
        composition=analysis.composition,
    )


def plan_to_proto(plan: Plan) -> common_pb2.PromptPlan:
    """The wire form of a plan (an unrecognised intent is ``EDIT_INTENT_UNSPECIFIED``)."""
    return common_pb2.PromptPlan(
        positive_prompt=plan.positive_prompt,
        negative_prompt=plan.negative_prompt,
        settings=settings_to_proto(plan.settings),
        intent=_INTENTS[plan.intent] if plan.intent else common_pb2.EDIT_INTENT_UNSPECIFIED,
        source=_SOURCES[plan.source],
        warnings=plan.warnings,
        model=plan.model,
        edit_instruction=plan.edit_instruction,
    )


def release_to_proto(release: Release) -> planner_pb2.ReleaseModelsResponse:
    """The wire form of what a release did."""
    return planner_pb2.ReleaseModelsResponse(
        released_models=release.released,
        held_models=release.still_loaded,
        unsupported_reason=release.unsupported,
    )
