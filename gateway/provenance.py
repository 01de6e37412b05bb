"""What the gateway tells the render service to embed in every result PNG.

One file must tell how it was made: the source image's hash, the instruction, the
analysis (with the model or fallback that made it), the plan (model, intent, settings)
and the request id. The render service adds what only it knows (seed, render size,
resize, workflow) and writes all of it into the PNG's ``imagegen`` text chunk.
"""

from __future__ import annotations

from gateway.jobs import PlanInputs
from imagegen.common.v1 import common_pb2

__all__ = ["build_provenance"]


def build_provenance(
    inputs: PlanInputs,
    analysis: common_pb2.ImageAnalysis | None,
    plan: common_pb2.PromptPlan,
    request_id: str,
    *,
    edit_mode: common_pb2.EditMode = common_pb2.EDIT_MODE_UNSPECIFIED,
    mask_sha256: str = "",
) -> common_pb2.Provenance:
    """The provenance of a render.

    Args:
        inputs: The validated planning inputs (image hash, instruction).
        analysis: The analysis the plan was made from; None for text-to-image or when an
            approved plan was rendered without one.
        plan: The plan being rendered, exactly as sent to the render service.
        request_id: The id of the request, as in the logs.
        edit_mode: The mode the edit is rendered with (unset for text-to-image).
        mask_sha256: Hash of the caller's mask; empty without one.

    Returns:
        The message for ``RenderRequest.provenance``.
    """
    provenance = common_pb2.Provenance(
        source_sha256=inputs.image.sha256 if inputs.image is not None else "",
        instruction=inputs.instruction,
        plan=plan,
        request_id=request_id,
        edit_mode=edit_mode,
        mask_sha256=mask_sha256,
    )
    if analysis is not None:
        provenance.analysis.CopyFrom(analysis)
    return provenance
