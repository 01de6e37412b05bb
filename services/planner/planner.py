"""From an instruction (and an analysis) to a plan: model → validation → overrides → fallback.

::

    request ──validate──► INVALID_ARGUMENT (empty / too long instruction, NaN overrides)
       │
       ▼
    probe says the server is down? ──yes────────────────────────────┐
       │ no                                                       │
       ▼                                                          │
    ask the text model (format = plan schema, think level, pinned │
    num_ctx / num_predict; retries with backoff inside the        │
    deadline: connect, timeout, 5xx, "length", invalid JSON,      │
    empty prompt)                                                 │
       │ 404 ──► FAILED_PRECONDITION naming the model             │
       │ still failing ───────────────────────────────────────────┤
       ▼                                                          │
    a prompt word not in the Latin script? ──► one re-ask naming  │
       │ the words ──► still not English ─────────────────────────┤
       ▼                                                          ▼
    clamp denoise into the intent's range, steps,     rules: intent from keywords,
    guidance; validate both prompts                   denoise from the table, glossary
       │                                              prompt, transliterated to Latin
       │                                              (or UNAVAILABLE by policy)
       └──────────────────────┬───────────────────────────────────┘
                              ▼
                caller's overrides win (clamped) ──► plan + warnings
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Any

from services.common.clip_tokenizer import ClipTokenizer, default_tokenizer
from services.common.errors import (
    BackendUnavailableError,
    FieldViolation,
    InvalidArgumentError,
)
from services.common.llm import (
    ChatMessage,
    ChatModel,
    ChatRequest,
    ChatResponse,
    ModelError,
    ModelProbe,
    ModelState,
    Release,
    ThinkLevel,
    UnusableAnswerError,
    call_model_with_retries,
    release_model,
)
from services.common.logs import get_logger
from services.common.metrics import FALLBACKS_TOTAL, STAGE_SECONDS
from services.common.prompts import EmptyPromptError, ValidatedPrompt, clean_text, validate_prompt
from services.common.retry import remaining
from services.planner.intents import DENOISE_TABLE, UNRECOGNISED_DENOISE, Intent
from services.planner.plans import Mode, Plan, PlanRequest, PlanSource, SourceAnalysis
from services.planner.rules import (
    DEFAULT_NEGATIVE_PROMPT,
    compose_instruction,
    compose_prompt,
    detect_intent,
    latin_prompt,
    leading_words,
)
from services.planner.sampling import (
    FLUX_DEV_DEFAULTS,
    SamplerSettings,
    apply_overrides,
    settle_model_choices,
    validate_overrides,
)
from services.planner.schema import (
    PLAN_SCHEMA,
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    ModelPlan,
    english_reask,
    parse_plan,
    user_message,
)
from services.planner.scripts import non_latin_words, transliterate
from services.planner.settings import PlannerSettings, PlanPolicy

__all__ = ["INSTRUCTION_FIELD", "Planner", "resolve_mode"]

INSTRUCTION_FIELD = "instruction"
"""The request field named when the instruction is refused."""

_log = get_logger(__name__)

# Time kept back from the model calls so the rules can still answer within the deadline,
# also on a loaded host (the rules take milliseconds; the rest is scheduling slack).
_FALLBACK_RESERVE_S = 0.25
_SERVICE = "planner"


def resolve_mode(requested: Mode | None, analysis: SourceAnalysis | None) -> Mode:
    """The generation mode: as requested, else image-to-image exactly when there is an analysis.

    Args:
        requested: The request's mode; None when unspecified.
        analysis: The request's analysis, if any.

    Returns:
        The mode to plan for.
    """
    if requested is not None:
        return requested
    return Mode.IMAGE_TO_IMAGE if analysis is not None else Mode.TEXT_TO_IMAGE


@dataclass(frozen=True)
class _ModelAnswer:
    """One answer of the text model, parsed, its prompts validated."""

    content: str
    parsed: ModelPlan
    positive: ValidatedPrompt
    negative: ValidatedPrompt | None

    def non_latin_words(self) -> tuple[str, ...]:
        """Words of either prompt not in the Latin script, each once."""
        texts = [self.positive.text, self.negative.text if self.negative else ""]
        return tuple(dict.fromkeys(w for text in texts for w in non_latin_words(text)))


@dataclass(frozen=True)
class _Drafted:
    """A plan before the caller's overrides."""

    positive: str
    negative: str
    settings: SamplerSettings
    intent: Intent | None
    source: PlanSource
    warnings: tuple[str, ...]
    model: str = ""
    edit_instruction: str = ""


class Planner:
    """Plans prompts; one per process, shared by all requests.

    Args:
        settings: The service's settings.
        client: The model's adapter (opened once per process).
        probe: The text model's readiness probe, kept current by the server.
        tokenizer: Counts prompt tokens; CLIP's BPE by default.
    """

    def __init__(
        self,
        settings: PlannerSettings,
        client: ChatModel,
        probe: ModelProbe,
        tokenizer: ClipTokenizer | None = None,
    ) -> None:
        self._settings = settings
        self._client = client
        self._probe = probe
        self._tokenizer = tokenizer or default_tokenizer()
        self._retry = settings.retry_policy()

    async def plan(self, request: PlanRequest, *, deadline: float | None = None) -> Plan:
        """Plans one generation.

        Args:
            request: The request as received (validated here).
            deadline: ``time.monotonic()`` instant by which to answer (the gRPC deadline);
                the ``request_timeout_s`` setting bounds it either way.

        Returns:
            The plan; ``source`` says who made it, ``warnings`` what was adjusted.

        Raises:
            InvalidArgumentError: The instruction or an override was refused.
            FailedPreconditionError: The model server does not have the text model.
            BackendUnavailableError: The model gave no plan and the policy forbids rules.
        """
        started = time.perf_counter()
        instruction = self._validate(request)
        request = replace(request, instruction=instruction)
        notes = _request_notes(request)
        _log.info(
            "plan request",
            extra={
                "instruction": instruction,
                "mode": request.mode.value,
                "has_analysis": request.analysis is not None,
                "overrides": {k: v for k, v in vars(request.overrides).items() if v is not None},
            },
        )
        drafted = await self._draft(request, self._settings.request_deadline(deadline))
        text_to_image = request.mode is Mode.TEXT_TO_IMAGE
        settings, override_notes = apply_overrides(
            drafted.settings, request.overrides, text_to_image=text_to_image
        )
        plan = Plan(
            positive_prompt=drafted.positive,
            negative_prompt=drafted.negative,
            settings=settings,
            intent=drafted.intent,
            source=drafted.source,
            warnings=(*notes, *drafted.warnings, *override_notes),
            model=drafted.model,
            edit_instruction=drafted.edit_instruction,
        )
        elapsed = time.perf_counter() - started
        STAGE_SECONDS.labels(service=_SERVICE, stage="plan").observe(elapsed)
        _log.info(
            "plan",
            extra={
                "instruction": instruction,
                "source": plan.source.value,
                "intent": plan.intent.value if plan.intent else None,
                "positive_prompt": plan.positive_prompt,
                "negative_prompt": plan.negative_prompt,
                "settings": vars(plan.settings),
                "warnings": list(plan.warnings),
                "model": plan.model,
                "elapsed_ms": round(elapsed * 1000, 1),
            },
        )
        return plan

    # ------------------------------------------------------------------ validation

    def _validate(self, request: PlanRequest) -> str:
        limit = self._settings.max_instruction_chars
        raw = request.instruction
        if not raw.strip():
            raise InvalidArgumentError(
                "instruction is empty",
                [FieldViolation(INSTRUCTION_FIELD, "is empty; say what to generate or change")],
            )
        if len(raw) > limit:
            raise InvalidArgumentError(
                "instruction is too long",
                [
                    FieldViolation(
                        INSTRUCTION_FIELD,
                        f"has {len(raw)} characters; at most {limit} are accepted",
                    )
                ],
            )
        instruction = clean_text(raw)
        if not instruction:
            raise InvalidArgumentError(
                "instruction has no printable text",
                [FieldViolation(INSTRUCTION_FIELD, "holds only control or invisible characters")],
            )
        validate_overrides(request.overrides)
        return instruction

    # ------------------------------------------------------------------ drafting

    async def _draft(self, request: PlanRequest, deadline: float) -> _Drafted:
        # The rules run in a worker thread: with a long instruction the glossary and the
        # token budget take milliseconds that would hold every other call on the loop.
        if self._probe.state is ModelState.BACKEND_DOWN:
            return await asyncio.to_thread(self._rules, request, self._probe.reason)
        started = time.perf_counter()
        # A missing model raises FailedPreconditionError, which is not a ModelError: the
        # request fails instead of going to the rules.
        try:
            return await self._ask_model(request, deadline)
        except ModelError as exc:
            return await asyncio.to_thread(self._rules, request, exc.message)
        finally:
            STAGE_SECONDS.labels(service=_SERVICE, stage="model").observe(
                time.perf_counter() - started
            )

    async def _ask_model(self, request: PlanRequest, deadline: float) -> _Drafted:
        settings = self._settings
        instruction = request.instruction
        warnings: list[str] = []
        limit = settings.model_instruction_chars
        if len(instruction) > limit:
            # Cut at the last space within the limit so no word reaches the model halved.
            cut = instruction[: limit + 1].rsplit(" ", 1)[0] or instruction[:limit]
            instruction = cut[:limit]
            warnings.append(
                f"the instruction has {len(request.instruction)} characters; the model was "
                f"given the first {len(instruction)} (PLANNER_MODEL_INSTRUCTION_CHARS={limit})"
            )
        analysis = request.analysis if request.mode is Mode.IMAGE_TO_IMAGE else None
        messages = [
            ChatMessage("system", SYSTEM_PROMPT),
            ChatMessage("user", user_message(instruction, request.mode, analysis)),
        ]
        # Never False: gpt-oss with think=false and a schema answers nothing.
        think = settings.think if self._probe.has_capability("thinking") is not False else None

        answer = await self._ask(messages, deadline, think=think, phase="plan", warnings=warnings)
        foreign = answer.non_latin_words()
        if foreign:
            # Flux reads English only: ask once more, naming the words, then give up.
            follow_up = [
                *messages,
                ChatMessage("assistant", answer.content),
                ChatMessage("user", english_reask(foreign)),
            ]
            answer = await self._ask(
                follow_up, deadline, think=think, phase="english re-ask", warnings=warnings
            )
            still = answer.non_latin_words()
            if still:
                raise UnusableAnswerError(
                    "the model's prompt was not in English even when asked again "
                    f"({', '.join(still[:6])})"
                )
            warnings.append(
                "the model's first prompt was not in English ("
                + ", ".join(foreign[:6])
                + "); it was asked again"
            )
        parsed, positive, negative = answer.parsed, answer.positive, answer.negative
        intent = self._model_intent(parsed.intent, request.mode, warnings)
        denoise = 1.0 if intent is Intent.TEXT_TO_IMAGE else parsed.denoise
        sampler, clamped = settle_model_choices(
            intent, denoise=denoise, steps=parsed.steps, guidance=parsed.guidance
        )
        warnings += clamped
        warnings += positive.warnings
        if negative is not None:
            warnings += negative.warnings
        return _Drafted(
            positive=positive.text,
            negative=negative.text if negative is not None else DEFAULT_NEGATIVE_PROMPT,
            settings=sampler,
            intent=intent,
            source=PlanSource.MODEL,
            warnings=tuple(warnings),
            model=settings.model,
            edit_instruction=self._edit_instruction(request, parsed.edit_instruction, warnings),
        )

    async def _ask(
        self,
        messages: list[ChatMessage],
        deadline: float,
        *,
        think: ThinkLevel | None,
        phase: str,
        warnings: list[str],
    ) -> _ModelAnswer:
        """One question to the text model, retried; its answer parsed and validated.

        What had to be cut from the messages to fit the model's context is added to
        ``warnings`` (once, however often it is asked).

        Raises:
            FailedPreconditionError: The server does not have the model.
            ModelError: No usable answer within the attempts and the deadline.
        """
        settings = self._settings

        def parse(reply: ChatResponse) -> _ModelAnswer:
            parsed = parse_plan(reply.content)
            positive, negative = self._validate_model_prompts(parsed)
            return _ModelAnswer(reply.content, parsed, positive, negative)

        chat = settings.chat_request(
            messages, json_schema=PLAN_SCHEMA, schema_name="prompt_plan", think=think
        )
        warnings += [note for note in chat.cut if note not in warnings]
        # A fixed seed makes plans reproducible (the helper moves it on after a bad answer,
        # which the same seed would give again).
        return await call_model_with_retries(
            self._client,
            chat,
            parse,
            policy=self._retry,
            # The rules must still be able to answer before the caller's deadline.
            deadline=deadline - _FALLBACK_RESERVE_S,
            call_timeout_s=settings.call_timeout_s,
            logger=_log,
            label="planner model",
            log_fields={"prompt_version": PROMPT_VERSION, "phase": phase},
            request_log=_request_log,
            probe=self._probe,
        )

    def _validate_model_prompts(
        self, parsed: ModelPlan
    ) -> tuple[ValidatedPrompt, ValidatedPrompt | None]:
        budget = self._settings.prompt_token_budget
        try:
            positive = validate_prompt(
                parsed.positive_prompt,
                budget=budget,
                count=self._tokenizer.count,
                what="positive prompt",
            )
        except EmptyPromptError as exc:
            # Retried like invalid JSON: another sample is likely to say something.
            raise UnusableAnswerError(f"the model's plan has an empty prompt ({exc})") from exc
        try:
            negative = validate_prompt(
                parsed.negative_prompt,
                budget=budget,
                count=self._tokenizer.count,
                what="negative prompt",
            )
        except EmptyPromptError:
            negative = None
        return positive, negative

    @staticmethod
    def _model_intent(intent: Intent, mode: Mode, warnings: list[str]) -> Intent:
        if mode is Mode.TEXT_TO_IMAGE:
            return Intent.TEXT_TO_IMAGE
        if intent is Intent.TEXT_TO_IMAGE:
            warnings.append(
                "the model chose text_to_image for an image-to-image request; "
                "planned as a full reimagining"
            )
            return Intent.FULL_REIMAGINING
        return intent

    async def release_model(self, *, deadline: float | None = None) -> Release:
        """Frees the GPU memory the text model holds (single-GPU hand-over).

        Args:
            deadline: ``time.monotonic()`` instant by which to answer; the
                ``call_timeout_s`` setting bounds the wait when there is none.

        Returns:
            What the server did; the model loads again on the next plan.

        Raises:
            BackendUnavailableError: The model server could not be asked.
        """
        timeout_s = remaining(deadline, self._settings.call_timeout_s)
        return await release_model(self._client, self._settings.model, timeout_s=timeout_s)

    # ------------------------------------------------------------------ the rules

    def _rules(self, request: PlanRequest, reason: str) -> _Drafted:
        settings = self._settings
        if settings.plan_policy is PlanPolicy.REQUIRE_MODEL:
            raise BackendUnavailableError(
                f"the text model {settings.model!r} gave no plan ({reason}); planning by "
                "rules is switched off (PLANNER_PLAN_POLICY=require_model)",
                backend=self._client.backend,
            )
        instruction = request.instruction
        warnings = [f"planned by keyword rules: the text model gave no plan ({reason})"]
        intent: Intent | None
        if request.mode is Mode.TEXT_TO_IMAGE:
            intent = Intent.TEXT_TO_IMAGE
            denoise = 1.0
        else:
            match = detect_intent(instruction)
            if match is None:
                intent, denoise = None, UNRECOGNISED_DENOISE
                warnings.append(
                    f"no edit intent recognised in the instruction; denoise "
                    f"{UNRECOGNISED_DENOISE:.2f}, the general default"
                )
            else:
                intent = match.intent
                denoise = DENOISE_TABLE[intent].typical
                warnings.append(
                    f"intent {intent.label} recognised from {match.keyword!r}; denoise "
                    f"{denoise:.2f} from the intent table"
                )
        analysis = request.analysis if request.mode is Mode.IMAGE_TO_IMAGE else None
        budget = settings.prompt_token_budget
        # Flux reads English only: the glossary translates the instruction and the
        # analysis, and what it leaves in another script is made Latin.
        change = leading_words(instruction, budget)
        composed = latin_prompt(instruction, compose_prompt(change, intent, analysis))
        warnings += composed.warnings
        try:
            positive = validate_prompt(
                composed.text, budget=budget, count=self._tokenizer.count, what="positive prompt"
            )
        except EmptyPromptError:
            # Only brackets or the like in the instruction: say something rather than nothing.
            fallback = (
                transliterate(analysis.description).text if analysis else ""
            ) or "A detailed, high quality image."
            positive = validate_prompt(
                fallback, budget=budget, count=self._tokenizer.count, what="positive prompt"
            )
            warnings.append("nothing usable was left of the instruction for the prompt")
        warnings += positive.warnings
        FALLBACKS_TOTAL.labels(service=_SERVICE, kind="rules").inc()
        _log.warning(
            "planned by rules",
            extra={
                "reason": reason,
                "intent": intent.value if intent else None,
                "transliterated": list(composed.transliterated),
            },
        )
        return _Drafted(
            positive=positive.text,
            negative=DEFAULT_NEGATIVE_PROMPT,
            settings=replace(FLUX_DEV_DEFAULTS, denoise=denoise),
            intent=intent,
            source=PlanSource.RULES,
            warnings=tuple(warnings),
            edit_instruction=self._edit_instruction(request, "", warnings),
        )

    def _edit_instruction(self, request: PlanRequest, proposed: str, warnings: list[str]) -> str:
        """The Kontext-shaped instruction: the model's, else the rules' from the instruction.

        Validated like the prompts (English, control characters, the token budget); a
        rules instruction only says to keep everything else, as the rules cannot know
        what exactly the change spares.
        """
        if request.mode is Mode.TEXT_TO_IMAGE:
            return ""
        if proposed.strip() and not non_latin_words(proposed):
            text = proposed
        else:
            words = leading_words(request.instruction, self._settings.prompt_token_budget)
            change = latin_prompt(request.instruction, words).text
            text = compose_instruction(change)
        try:
            checked = validate_prompt(
                text,
                budget=self._settings.prompt_token_budget,
                count=self._tokenizer.count,
                what="edit instruction",
            )
        except EmptyPromptError:
            return ""
        warnings += checked.warnings
        return checked.text


def _request_notes(request: PlanRequest) -> list[str]:
    if request.mode is Mode.IMAGE_TO_IMAGE and (
        request.analysis is None or request.analysis.is_empty
    ):
        return [
            "no analysis of the source image was given: the prompt describes only what the "
            "instruction says"
        ]
    if request.mode is Mode.TEXT_TO_IMAGE and request.analysis is not None:
        return ["the analysis is ignored for text-to-image"]
    return []


def _request_log(chat: ChatRequest) -> dict[str, Any]:
    # The system prompt and the pinned options are the same on every call: log what changes.
    return {"user_message": chat.messages[-1].content, "seed": chat.seed, "think": chat.think}
