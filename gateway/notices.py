"""The ``warning`` events a request's stages give rise to.

Downstream services report fallbacks and adjustments inside their answers (an
analysis's ``source`` and ``warnings``, a plan's ``source`` and ``warnings``); the
gateway turns each into a :class:`Warning` event with a stable code, so a caller can
tell at a glance that, say, the plan came from keyword rules rather than the model.

| code | when |
|---|---|
| ``ANALYSIS_FALLBACK`` | the vision model was unavailable; the analysis came from image metadata |
| ``ANALYSIS_INCOMPLETE`` | fields are empty: the model's even after a re-ask, or the fallback's |
| ``ANALYSIS_NOTE`` | any other note of the vision service |
| ``PLAN_FALLBACK`` | the planner model was unavailable; keyword rules planned |
| ``PLAN_ADJUSTED`` | the planner clamped, truncated or otherwise adjusted something |
| ``PROMPT_CLEANED`` | a caller's prompt (approved plan, override) was cleaned; names changes |
| ``DESCRIPTION_IGNORED`` | a description came with a text-to-image request |
| ``GPU_NOT_FREED`` | single-GPU mode could not confirm the language models left the GPU |
"""

from __future__ import annotations

from imagegen.common.v1 import common_pb2

__all__ = ["analysis_warnings", "plan_warnings", "warning"]


def warning(code: str, message: str) -> common_pb2.Warning:
    """A warning event payload."""
    return common_pb2.Warning(code=code, message=message)


def analysis_warnings(analysis: common_pb2.ImageAnalysis) -> list[common_pb2.Warning]:
    """The warnings an analysis gives rise to, fallback first."""
    found: list[common_pb2.Warning] = []
    notes = list(analysis.warnings)
    fallback = analysis.source == common_pb2.ANALYSIS_SOURCE_METADATA_FALLBACK
    if fallback:
        found.append(
            warning(
                "ANALYSIS_FALLBACK",
                _fallback_message(
                    "the image was described from its size, colours and metadata, "
                    "not by the vision model",
                    "not by the vision model",
                    notes,
                    "the vision model did not answer",
                ),
            )
        )
        notes = []
    if analysis.missing_fields:
        fields = ", ".join(analysis.missing_fields)
        found.append(
            warning(
                "ANALYSIS_INCOMPLETE",
                f"the metadata fallback cannot see {fields}; they are left empty, not guessed"
                if fallback
                else f"the vision model left {fields} empty, even when asked again for them",
            )
        )
    found += [warning("ANALYSIS_NOTE", note) for note in notes]
    return found


def plan_warnings(plan: common_pb2.PromptPlan) -> list[common_pb2.Warning]:
    """The warnings a plan gives rise to, fallback first."""
    notes = list(plan.warnings)
    if plan.source == common_pb2.PLAN_SOURCE_RULES:
        message = _fallback_message(
            "the prompt was planned by keyword rules",
            "planned by keyword rules",
            notes,
            "the planner model did not answer",
        )
        return [warning("PLAN_FALLBACK", message)]
    return [warning("PLAN_ADJUSTED", note) for note in notes]


def _fallback_message(headline: str, marker: str, notes: list[str], default: str) -> str:
    """What a fallback warning says: the service's own notes when they already name the
    fallback (``marker``), else ``headline`` followed by the notes (or ``default``).

    The fallback is named once: a service that says "planned by keyword rules: …" is
    not prefixed with the same words again.
    """
    text = "; ".join(notes)
    if marker in text:
        return text
    return f"{headline}: {text or default}"
