"""The gRPC face of the vision service: proto in, domain call, proto out.

Errors are domain errors raised by the analyzer; the shared server interceptor turns
them into statuses with details.
"""

from __future__ import annotations

from typing import Any

import grpc.aio

from imagegen.common.v1 import common_pb2
from imagegen.vision.v1 import vision_pb2, vision_pb2_grpc
from services.common.llm import ModelProbe, ModelState, Release
from services.common.retry import deadline_from_context
from services.vision.analysis import Analysis, AnalysisSource
from services.vision.analyzer import Analyzer

__all__ = ["SERVICE_NAME", "VisionServicer", "analysis_to_proto", "release_to_proto"]

SERVICE_NAME: str = vision_pb2.DESCRIPTOR.services_by_name["VisionService"].full_name

_SOURCES = {
    AnalysisSource.MODEL: common_pb2.ANALYSIS_SOURCE_MODEL,
    AnalysisSource.METADATA_FALLBACK: common_pb2.ANALYSIS_SOURCE_METADATA_FALLBACK,
    AnalysisSource.USER: common_pb2.ANALYSIS_SOURCE_USER,
}


class VisionServicer(vision_pb2_grpc.VisionServiceServicer):
    """``imagegen.vision.v1.VisionService``.

    Args:
        analyzer: The analyzer shared by all calls.
        probe: The readiness probe of the vision model.
        backend: The kind of model server (``ollama``, ``openai``).
    """

    def __init__(self, analyzer: Analyzer, *, probe: ModelProbe, backend: str) -> None:
        self._analyzer = analyzer
        self._probe = probe
        self._backend = backend

    async def AnalyzeImage(
        self,
        request: vision_pb2.AnalyzeImageRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> vision_pb2.AnalyzeImageResponse:
        """Analyses one image (see the proto for statuses)."""
        analysis = await self._analyzer.analyze(
            request.image.data,
            description=request.description if request.HasField("description") else None,
            deadline=deadline_from_context(context),
        )
        return vision_pb2.AnalyzeImageResponse(analysis=analysis_to_proto(analysis))

    async def ReleaseModels(
        self,
        request: vision_pb2.ReleaseModelsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> vision_pb2.ReleaseModelsResponse:
        """Frees the GPU memory of the vision model (see the proto)."""
        release = await self._analyzer.release_model(deadline=deadline_from_context(context))
        return release_to_proto(release)

    async def GetModelInfo(
        self,
        request: vision_pb2.GetModelInfoRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> vision_pb2.GetModelInfoResponse:
        """Names the vision model and what its latest probe found; never calls the model."""
        probe = self._probe
        return vision_pb2.GetModelInfoResponse(
            model=probe.model,
            backend=self._backend,
            state=probe.state.value,
            reason="" if probe.state is ModelState.READY else probe.reason,
        )


def analysis_to_proto(analysis: Analysis) -> common_pb2.ImageAnalysis:
    """The wire form of an analysis."""
    return common_pb2.ImageAnalysis(
        description=analysis.description,
        subjects=analysis.subjects,
        colors=analysis.colors,
        materials=analysis.materials,
        style=analysis.style,
        lighting=analysis.lighting,
        composition=analysis.composition,
        source=_SOURCES[analysis.source],
        cached=analysis.cached,
        model=analysis.model,
        missing_fields=analysis.missing_fields,
        warnings=analysis.warnings,
        width=analysis.width,
        height=analysis.height,
        image_sha256=analysis.image_sha256,
    )


def release_to_proto(release: Release) -> vision_pb2.ReleaseModelsResponse:
    """The wire form of what a release did."""
    return vision_pb2.ReleaseModelsResponse(
        released_models=release.released,
        held_models=release.still_loaded,
        unsupported_reason=release.unsupported,
    )
