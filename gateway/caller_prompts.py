"""Prompts a caller wrote: cleaned by the planner's own rules before anything renders them.

A caller can bring its own prompts two ways:

- ``GenerateRequest.plan``, an approved plan: rendered as given, no model asked; its
  prompts are cleaned first.
- ``GenerateRequest.prompt`` / ``negative_prompt``: analysis and planning still run for
  the sampler settings; the planned prompts are replaced by the caller's, cleaned (over
  an approved plan, they replace the plan's).

Both go through :func:`services.common.prompts.validate_prompt`, the rules the planner
applies to its model's and its keyword rules' prompts: control characters, ``embedding:``
references and unbalanced brackets removed, weights held to 0–2, the CLIP token budget
kept. What changed is reported as one ``PROMPT_CLEANED`` warning per prompt, naming the
changes; a prompt with nothing left is refused (``INVALID_ARGUMENT`` naming the field).

The planner's prompt is replaced rather than the planner skipped: the settings it plans
(denoise from the intent, steps, guidance) depend on the instruction and the analysis,
not on the prompt's wording, and planning them needs the same model call either way.

The CLIP tokenizer loads its merges on the first prompt to count (under 0.1 s, once per
process), so a gateway whose callers never send prompts never loads them.
"""

from __future__ import annotations

from dataclasses import dataclass

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from services.common.clip_tokenizer import default_tokenizer
from services.common.errors import FieldViolation
from services.common.prompts import EmptyPromptError, validate_prompt

__all__ = ["PROMPT_CLEANED", "CallerPrompts", "check_caller_prompts"]

PROMPT_CLEANED = "PROMPT_CLEANED"
"""Warning code: a caller's prompt was changed before rendering."""


@dataclass(frozen=True)
class CallerPrompts:
    """The caller's prompt overrides, cleaned, and what cleaning changed.

    Attributes:
        positive: The cleaned ``prompt`` override; None when the caller sent none.
        negative: The cleaned ``negative_prompt`` override; None when the caller sent none.
        warnings: One ``PROMPT_CLEANED`` warning per prompt that cleaning changed
            (the overrides and the approved plan's prompts).
    """

    positive: str | None = None
    negative: str | None = None
    warnings: tuple[common_pb2.Warning, ...] = ()

    def apply(self, plan: common_pb2.PromptPlan) -> common_pb2.PromptPlan:
        """The plan with the caller's prompts in place of the planned ones.

        Args:
            plan: A planned (or approved) plan; never changed (it may sit in a cache).

        Returns:
            ``plan`` itself when there are no overrides, else a changed copy.
        """
        if self.positive is None and self.negative is None:
            return plan
        replaced = common_pb2.PromptPlan()
        replaced.CopyFrom(plan)
        if self.positive is not None:
            replaced.positive_prompt = self.positive
            # The caller's own words win in every edit mode, Kontext's instruction included.
            replaced.edit_instruction = self.positive
        if self.negative is not None:
            replaced.negative_prompt = self.negative
        return replaced


def check_caller_prompts(
    request: gateway_pb2.GenerateRequest,
    *,
    budget: int,
    violations: list[FieldViolation],
) -> tuple[CallerPrompts, common_pb2.PromptPlan | None]:
    """Cleans every prompt a ``Generate`` request carries.

    Args:
        request: The request as received.
        budget: Most CLIP tokens per prompt.
        violations: Where a prompt with nothing left after cleaning is reported.

    Returns:
        The cleaned overrides with the warnings of every cleaned prompt, and the
        approved plan with its prompts cleaned and the overrides applied (None when
        the request has no plan).
    """
    cleaner = _Cleaner(budget, violations)
    overrides = CallerPrompts(
        positive=cleaner.clean(request.prompt, "prompt", "prompt")
        if request.HasField("prompt")
        else None,
        negative=cleaner.clean(request.negative_prompt, "negative_prompt", "negative prompt")
        if request.HasField("negative_prompt")
        else None,
    )
    approved: common_pb2.PromptPlan | None = None
    if request.HasField("plan"):
        approved = common_pb2.PromptPlan()
        approved.CopyFrom(request.plan)
        # An override makes the plan's own prompt irrelevant: only the one rendered is checked.
        if overrides.positive is None:
            approved.positive_prompt = cleaner.clean(
                approved.positive_prompt,
                "plan.positive_prompt",
                "approved plan's positive prompt",
            )
        if overrides.negative is None:
            approved.negative_prompt = cleaner.clean(
                approved.negative_prompt,
                "plan.negative_prompt",
                "approved plan's negative prompt",
            )
        approved = overrides.apply(approved)
    prompts = CallerPrompts(
        positive=overrides.positive, negative=overrides.negative, warnings=tuple(cleaner.warnings)
    )
    return prompts, approved


class _Cleaner:
    """Cleans prompts one by one, collecting warnings and violations."""

    def __init__(self, budget: int, violations: list[FieldViolation]) -> None:
        self._budget = budget
        self._violations = violations
        self.warnings: list[common_pb2.Warning] = []

    def clean(self, text: str, field: str, what: str) -> str:
        """The cleaned ``text``; "" (and a violation) when nothing is left of it.

        A blank negative prompt is allowed (it means none); a blank positive prompt or
        one that cleaning empties is not.
        """
        if not text.strip():
            if "negative" not in field:
                self._violations.append(FieldViolation(field, "must not be blank"))
            return ""
        try:
            cleaned = validate_prompt(
                text, budget=self._budget, count=default_tokenizer().count, what=what
            )
        except EmptyPromptError:
            self._violations.append(
                FieldViolation(
                    field,
                    "has no text left once control characters, embedding references and "
                    "unbalanced brackets are removed",
                )
            )
            return ""
        if cleaned.changes:
            self.warnings.append(
                common_pb2.Warning(
                    code=PROMPT_CLEANED,
                    message=f"the {what} was cleaned before rendering: "
                    + "; ".join(cleaned.changes),
                )
            )
        return cleaned.text
