"""From image bytes to an analysis: cache → vision model (retries, one re-ask) → fallback.

::

    bytes ──sha256──► cache hit? ──yes──► cached analysis (no validation, no model)
                          │ no
                          ▼  (one flight per image; concurrent requests share it)
                     decode (within the decode budget, else RESOURCE_EXHAUSTED)
                          │    └─► the model's JPEG; the pixels are freed
                          ▼
                     probe (first time) says down / no vision? ──► fallback (from the JPEG)
                          │
                          ▼
                     ask the model (retries: connect, timeout, 5xx, garbage)
                          │ 404 ──► FAILED_PRECONDITION (pull the model)
                          │ still failing ──► fallback (or UNAVAILABLE by policy)
                          ▼
                     gaps? ──► one targeted re-ask ──► what is still missing is reported
                          ▼
                     cache ◄── model analysis
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
from dataclasses import dataclass, replace

from PIL import Image

from services.common.errors import (
    BackendUnavailableError,
    FieldViolation,
    InvalidArgumentError,
)
from services.common.images import ValidatedImage, decode_image, decoded_header, read_header
from services.common.llm import (
    ChatImage,
    ChatMessage,
    ChatModel,
    ModelError,
    ModelProbe,
    ModelState,
    Release,
    call_model_with_retries,
    release_model,
)
from services.common.logs import get_logger
from services.common.memory import MemoryBudget, return_freed_memory
from services.common.metrics import FALLBACKS_TOTAL, STAGE_SECONDS
from services.common.retry import remaining
from services.vision.analysis import (
    ANALYSIS_SCHEMA,
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    USER_PROMPT,
    Analysis,
    AnalysisSource,
    ModelReply,
    find_gaps,
    merge_replies,
    parse_reply,
    reask_prompt,
)
from services.vision.cache import ByteBoundedLRU, SingleFlight
from services.vision.fallback import fallback_analysis, measure
from services.vision.model_image import ModelImage, encode_for_model
from services.vision.settings import AnalysisPolicy, VisionSettings

__all__ = ["IMAGE_FIELD", "Analyzer"]

IMAGE_FIELD = "image.data"
"""The request field named when the image is refused."""

_log = get_logger(__name__)

# Hashing in the event loop stays under a millisecond up to about this size.
_INLINE_HASH_BYTES = 1024 * 1024
# Time kept back from the model calls so the fallback can still answer within the deadline.
_FALLBACK_RESERVE_S = 0.25
# Side of the copy the fallback measures (the measurements work on 128 px).
_PREVIEW_SIDE = 256
_CACHE_NAME = "vision_analysis"
_MODEL_SECONDS = STAGE_SECONDS.labels(service="vision", stage="model")
_FALLBACK_SECONDS = STAGE_SECONDS.labels(service="vision", stage="fallback")
_FALLBACKS = FALLBACKS_TOTAL.labels(service="vision", kind="metadata")


@dataclass(frozen=True)
class _Prepared:
    """What is kept of a decoded image: never the full pixels."""

    image: ValidatedImage
    model_image: ModelImage


class Analyzer:
    """Analyses images; one per process, shared by all requests.

    Args:
        settings: The service's settings.
        client: The model's adapter (opened once per process).
        probe: The readiness probe of the vision model, kept current by the server.
    """

    def __init__(self, settings: VisionSettings, client: ChatModel, probe: ModelProbe) -> None:
        self._settings = settings
        self._client = client
        self._probe = probe
        self._retry = settings.retry_policy()
        self._cache: ByteBoundedLRU[str, Analysis] = ByteBoundedLRU(
            settings.cache_bytes, Analysis.size_bytes, name=_CACHE_NAME
        )
        self._flights: SingleFlight[str, Analysis] = SingleFlight(name=_CACHE_NAME)
        self._decode_budget = MemoryBudget(
            settings.decode_budget_bytes,
            wait_s=settings.decode_wait_s,
            name="vision decode budget",
        )

    async def analyze(
        self, data: bytes, *, description: str | None = None, deadline: float | None = None
    ) -> Analysis:
        """Analyse one encoded image.

        Args:
            data: The encoded image as received (validated here).
            description: The caller's own description; when given, the model is not asked.
            deadline: ``time.monotonic()`` instant by which to answer (the gRPC deadline);
                the ``request_timeout_s`` setting bounds it either way.

        Returns:
            The analysis; its ``source`` says who made it, ``cached`` whether it came from
            the cache.

        Raises:
            InvalidArgumentError: The image (or a blank description) was refused.
            FailedPreconditionError: The model server does not have the vision model.
            BackendUnavailableError: No model analysis and the policy forbids the fallback.
        """
        if description is not None:
            return await self._user_analysis(data, description)
        sha256 = await _sha256(data)
        key = f"{sha256}:{self._settings.model}:{PROMPT_VERSION}"
        # Only validated images reach the cache, so a hit on these exact bytes skips
        # validation as well as the model.
        hit = self._cache.get(key)
        if hit is not None:
            return replace(hit, cached=True)
        overall = self._settings.request_deadline(deadline)
        return await self._flights.run(key, lambda: self._analyze_fresh(key, data, overall))

    async def _user_analysis(self, data: bytes, description: str) -> Analysis:
        text = description.strip()
        if not text:
            raise InvalidArgumentError(
                "description is blank",
                [
                    FieldViolation(
                        "description", "is blank; leave it unset to have the image analysed"
                    )
                ],
            )
        image = (await self._decode(data, deadline=None)).image
        return Analysis(
            description=text,
            source=AnalysisSource.USER,
            width=image.width,
            height=image.height,
            image_sha256=image.sha256,
        )

    async def _decode(self, data: bytes, *, deadline: float | None) -> _Prepared:
        """Validates and decodes within the decode budget; keeps only small copies.

        Raises:
            InvalidArgumentError: The image was refused.
            ResourceExhaustedError: The decode budget stayed full for ``decode_wait_s``.
        """
        settings = self._settings
        max_bytes, max_side, fit = (
            settings.max_image_bytes,
            settings.max_image_side,
            settings.model_image_side,
        )
        # The header is a few hundred bytes into the file: read in the event loop.
        header = read_header(data, field=IMAGE_FIELD, max_bytes=max_bytes, max_side=max_side)

        def prepare() -> _Prepared:
            with decode_image(
                data, field=IMAGE_FIELD, max_bytes=max_bytes, max_side=max_side, fit=fit
            ) as decoded:
                model_image = encode_for_model(
                    decoded.pixels, max_side=fit, quality=settings.jpeg_quality
                )
            # The full pixels are gone; hand their pages back before the model call.
            return_freed_memory()
            return _Prepared(image=decoded.image, model_image=model_image)

        scaled = decoded_header(header, fit=fit)
        # Downscaling first reduces by a whole factor (at least 2 for a large image): that
        # working copy is at most a quarter of the decoded pixels.
        cost = scaled.decoded_bytes + scaled.decoded_width * scaled.decoded_height
        return await self._decode_budget.run_in_thread(cost, prepare, deadline=deadline)

    async def _analyze_fresh(self, key: str, data: bytes, deadline: float) -> Analysis:
        prepared = await self._decode(data, deadline=deadline)
        image = prepared.image
        if self._probe.state is ModelState.UNKNOWN:
            # Before the first readiness probe nothing says the model can see: a text-only
            # model would silently drop the image and invent an answer.
            await self._probe.check()
        if self._probe.state in (ModelState.BACKEND_DOWN, ModelState.LACKS_CAPABILITY):
            return await self._fallback(image, prepared.model_image, self._probe.reason)
        # A missing model raises FailedPreconditionError, which is not a ModelError: the
        # request fails instead of falling back.
        try:
            with _MODEL_SECONDS.time():
                analysis = await self._ask_model(image, prepared.model_image, deadline)
        except ModelError as exc:
            return await self._fallback(image, prepared.model_image, exc.message)
        self._cache.put(key, analysis)
        return analysis

    # ------------------------------------------------------------------ the model

    async def _ask_model(
        self, image: ValidatedImage, model_image: ModelImage, deadline: float
    ) -> Analysis:
        question = [
            ChatMessage("system", SYSTEM_PROMPT),
            ChatMessage("user", USER_PROMPT, images=(ChatImage(model_image.base64, "image/jpeg"),)),
        ]
        answer, reply = await self._ask(question, deadline, phase="analyse")
        gaps = find_gaps(reply)
        warnings: list[str] = []
        if gaps:
            follow_up = [
                *question,
                ChatMessage("assistant", answer),
                ChatMessage("user", reask_prompt(gaps)),
            ]
            try:
                _, second = await self._ask(follow_up, deadline, phase="re-ask")
            except ModelError as exc:
                # The first answer is a real (if partial) analysis: keep it, say why.
                warnings.append(f"the re-ask for the missing fields failed: {exc.message}")
            else:
                reply = merge_replies(reply, second, gaps)
                gaps = find_gaps(reply)
        warnings += [f"incomplete analysis: {gap.problem}" for gap in gaps]
        return Analysis(
            description=reply.description,
            source=AnalysisSource.MODEL,
            width=image.width,
            height=image.height,
            image_sha256=image.sha256,
            subjects=tuple(reply.subjects),
            colors=tuple(reply.colors),
            materials=tuple(reply.materials),
            style=reply.style,
            lighting=reply.lighting,
            composition=reply.composition,
            model=self._settings.model,
            missing_fields=tuple(gap.field for gap in gaps if gap.empty),
            warnings=tuple(warnings),
        )

    async def _ask(
        self, messages: list[ChatMessage], deadline: float, *, phase: str
    ) -> tuple[str, ModelReply]:
        """One question to the model, retried; returns the raw answer and its parse.

        Raises:
            FailedPreconditionError: The server does not have the model.
            ModelError: No usable answer within the attempts and the deadline.
        """
        # The seed is fixed so an image always gets the same analysis (the helper moves it
        # on after a garbage answer, which the same seed would give again).
        return await call_model_with_retries(
            self._client,
            self._settings.chat_request(
                messages, json_schema=ANALYSIS_SCHEMA, schema_name="image_analysis"
            ),
            lambda reply: (reply.content, parse_reply(reply.content)),
            policy=self._retry,
            # The model may use the time up to the deadline less what the fallback needs.
            deadline=deadline - _FALLBACK_RESERVE_S,
            call_timeout_s=self._settings.call_timeout_s,
            logger=_log,
            label="vision model",
            log_fields={"phase": phase},
            probe=self._probe,
        )

    async def release_model(self, *, deadline: float | None = None) -> Release:
        """Frees the GPU memory the vision model holds (single-GPU hand-over).

        Args:
            deadline: ``time.monotonic()`` instant by which to answer; the
                ``call_timeout_s`` setting bounds the wait when there is none.

        Returns:
            What the server did; the model loads again on the next analysis.

        Raises:
            BackendUnavailableError: The model server could not be asked.
        """
        timeout_s = remaining(deadline, self._settings.call_timeout_s)
        return await release_model(self._client, self._settings.model, timeout_s=timeout_s)

    # ------------------------------------------------------------------ the fallback

    async def _fallback(
        self, image: ValidatedImage, model_image: ModelImage, reason: str
    ) -> Analysis:
        settings = self._settings
        if settings.analysis_policy is AnalysisPolicy.REQUIRE_MODEL:
            raise BackendUnavailableError(
                f"the vision model {settings.model!r} gave no analysis ({reason}); the "
                "metadata fallback is switched off (VISION_ANALYSIS_POLICY=require_model)",
                backend=self._client.backend,
            )

        def measured() -> Analysis:
            # Measured on the model's copy: the full pixels were freed before the model
            # call, and only a fallback needs a preview.
            return fallback_analysis(
                measurements=measure(_preview(model_image)),
                width=image.width,
                height=image.height,
                image_sha256=image.sha256,
                exif=image.exif(),
                reason=reason,
            )

        with _FALLBACK_SECONDS.time():
            analysis = await asyncio.to_thread(measured)
        _FALLBACKS.inc()
        _log.warning(
            "vision analysis fallback",
            extra={"reason": reason, "image_sha256": image.sha256, "colors": analysis.colors},
        )
        return analysis


def _preview(model_image: ModelImage) -> Image.Image:
    """The fallback's small RGB copy, decoded from the JPEG sent to the model."""
    with Image.open(io.BytesIO(base64.b64decode(model_image.base64))) as copy:
        copy.draft("RGB", (_PREVIEW_SIDE, _PREVIEW_SIDE))
        preview = copy.convert("RGB")
    preview.thumbnail((_PREVIEW_SIDE, _PREVIEW_SIDE))
    return preview


async def _sha256(data: bytes) -> str:
    if len(data) <= _INLINE_HASH_BYTES:
        return hashlib.sha256(data).hexdigest()
    return await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
