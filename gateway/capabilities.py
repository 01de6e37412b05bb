"""What the system can do right now, and the check of a request's names against it.

``GetCapabilities`` merges three answers, asked concurrently and kept for a short while
(``capabilities_ttl_s``)::

    render  GetCatalog    ─► workflows, and per backend LoRAs, ControlNets, samplers,
                             schedulers, edit modes; the ControlNet defaults; the megapixel cap
    vision  GetModelInfo  ─┐
    planner GetModelInfo  ─┴► the language models (name, kind of server, probe state)
    gateway settings      ─► the request limits

Every name a ``Generate`` gives (workflow, LoRA, ControlNet, sampler, scheduler) is
checked against it before any model runs (:func:`check_names`), refused with the same
status as the render service's own refusal would have:

| name | status | detail, listing the names that exist |
|---|---|---|
| sampler, scheduler | ``INVALID_ARGUMENT`` | a ``BadRequest`` naming the field |
| workflow, LoRA, ControlNet | ``FAILED_PRECONDITION`` | a ``PreconditionFailure`` per name |

The reason of a ``FAILED_PRECONDITION`` is ``WORKFLOW_NOT_FOUND``, ``LORA_NOT_FOUND`` or
``CONTROLNET_NOT_FOUND`` (``MODEL_NOT_FOUND`` for several kinds), as the render's.

File lists are the union over the reachable render backends; with none reachable the
file names are not checked here (the render service refuses the request anyway).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc.aio
from google.protobuf.message import Message

from gateway.downstream import Downstream, relay_error
from gateway.jobs import GenerateJob
from gateway.validation import RequestLimits
from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from imagegen.planner.v1 import planner_pb2
from imagegen.render.v1 import render_pb2
from imagegen.vision.v1 import vision_pb2
from services.common.errors import (
    FailedPreconditionError,
    FieldViolation,
    ImagegenError,
    InvalidArgumentError,
    PreconditionViolation,
)
from services.common.logs import get_logger

__all__ = ["Capabilities", "check_names"]

_log = get_logger(__name__)

_RECHECK_AFTER_S = 1.0
"""A refusal from a cached answer at least this old is checked again against a fresh one."""


@dataclass(frozen=True)
class _Kind:
    """How a refusal names one kind of name, and its ``ErrorInfo.reason``."""

    label: str
    type: str
    reason: str


_WORKFLOW = _Kind("workflow", "WORKFLOW", "WORKFLOW_NOT_FOUND")
_LORA = _Kind("LoRA", "LORA", "LORA_NOT_FOUND")
_CONTROLNET = _Kind("ControlNet", "CONTROLNET", "CONTROLNET_NOT_FOUND")


class Capabilities:
    """The merged capabilities, fetched on demand and cached for ``ttl_s``.

    Args:
        downstream: The clients of vision, planner and render.
        limits: The gateway's request limits (reported as they are).
        ttl_s: How long one answer is reused.
        timeout_s: Deadline of each downstream call.
    """

    def __init__(
        self, downstream: Downstream, limits: RequestLimits, *, ttl_s: float, timeout_s: float
    ) -> None:
        self._downstream = downstream
        self._limits = limits
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._cached: gateway_pb2.GetCapabilitiesResponse | None = None
        self._fetched_at = 0.0
        self._fetch: asyncio.Task[gateway_pb2.GetCapabilitiesResponse] | None = None

    @property
    def last(self) -> gateway_pb2.GetCapabilitiesResponse | None:
        """The latest answer, however old; None before the first."""
        return self._cached

    def default_workflow(self, mode: int) -> str:
        """The template used for ``mode`` (a ``GenerationMode``) when a request names none;
        "" before the first answer."""
        if self._cached is not None:
            for workflow in self._cached.workflows:
                if workflow.is_default and workflow.mode == mode:
                    return workflow.name
        return ""

    def model(self, service: str) -> str:
        """The language model ``service`` (``vision``, ``planner``) last reported; "" if unknown."""
        if self._cached is not None:
            for language_model in self._cached.language_models:
                if language_model.service == service:
                    return language_model.model
        return ""

    async def get(self, *, refresh: bool = False) -> gateway_pb2.GetCapabilitiesResponse:
        """The capabilities, from the cache while it is fresh.

        Concurrent callers share one fetch. When a stale answer cannot be renewed it is
        used again (and logged), unless ``refresh`` asks for a new one.

        Args:
            refresh: Ask the services even when the cache is fresh.

        Raises:
            ImagegenError: The render service could not be asked (its status, relayed)
                and there is no earlier answer to fall back on, or ``refresh`` was asked.
        """
        if self._cached is not None and not refresh and self.age_s() < self._ttl_s:
            return self._cached
        if self._fetch is None or self._fetch.done():
            self._fetch = asyncio.create_task(self._read())
        try:
            response = await asyncio.shield(self._fetch)
        except ImagegenError as e:
            if self._cached is None or refresh:
                raise
            _log.warning(
                "capabilities not renewed; using the earlier answer", extra={"error": str(e)}
            )
            return self._cached
        self._cached, self._fetched_at = response, time.monotonic()
        return response

    def age_s(self) -> float:
        """Seconds since the cached answer was fetched (infinite before the first)."""
        return time.monotonic() - self._fetched_at if self._cached is not None else math.inf

    async def check(self, job: GenerateJob) -> None:
        """Refuses ``job`` if it names something the system does not have.

        A name missing from a cached answer older than a second is looked up once more
        in a fresh one, so a LoRA or workflow just added is not refused for a TTL.

        Raises:
            InvalidArgumentError: See :func:`check_names`.
            FailedPreconditionError: See :func:`check_names`.
            ImagegenError: The capabilities could not be had.
        """
        capabilities = await self.get()
        try:
            check_names(job, capabilities)
        except (FailedPreconditionError, InvalidArgumentError):
            if self.age_s() < _RECHECK_AFTER_S:
                raise
            check_names(job, await self.get(refresh=True))

    async def _read(self) -> gateway_pb2.GetCapabilitiesResponse:
        downstream = self._downstream
        catalog, vision, planner = await asyncio.gather(
            self._catalog(),
            self._model_info(
                "vision", downstream.vision.GetModelInfo, vision_pb2.GetModelInfoRequest()
            ),
            self._model_info(
                "planner", downstream.planner.GetModelInfo, planner_pb2.GetModelInfoRequest()
            ),
        )
        response = _merge(catalog, self._limits)
        response.language_models.extend([vision, planner])
        return response

    async def _catalog(self) -> render_pb2.GetCatalogResponse:
        try:
            response: render_pb2.GetCatalogResponse = await self._downstream.render.GetCatalog(
                render_pb2.GetCatalogRequest(), timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as e:
            raise relay_error("render", e, timeout_s=self._timeout_s) from e
        return response

    async def _model_info(
        self, service: str, method: Callable[..., Awaitable[Any]], request: Message
    ) -> gateway_pb2.LanguageModel:
        try:
            info = await method(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as e:
            _log.warning(
                "model info unavailable", extra={"service": service, "code": e.code().name}
            )
            return gateway_pb2.LanguageModel(
                service=service,
                state="unreachable",
                reason=f"the {service} service did not answer: {e.code().name}",
            )
        return gateway_pb2.LanguageModel(
            service=service,
            model=info.model,
            backend=info.backend,
            state=info.state,
            reason=info.reason,
        )


def _merge(
    catalog: render_pb2.GetCatalogResponse, limits: RequestLimits
) -> gateway_pb2.GetCapabilitiesResponse:
    """The caller's view of the render catalog, lists merged over the reachable backends."""
    reachable = [b for b in catalog.backends if b.reachable]
    response = gateway_pb2.GetCapabilitiesResponse(
        loras=_union(b.loras for b in reachable),
        controlnet_models=_union(b.controlnets for b in reachable),
        samplers=_union(b.samplers for b in reachable),
        schedulers=_union(b.schedulers for b in reachable),
        limits=gateway_pb2.RequestLimits(
            max_image_side=limits.max_image_side,
            max_image_bytes=limits.max_image_bytes,
            max_megapixels=catalog.max_megapixels,
            txt2img_min_side=limits.txt2img_min_side,
            txt2img_max_side=limits.txt2img_max_side,
            max_variants=limits.max_variants,
            max_loras=limits.max_loras,
            max_instruction_chars=limits.max_instruction_chars,
        ),
    )
    for workflow in catalog.workflows:
        response.workflows.add(
            name=workflow.name,
            mode=workflow.mode,
            description=workflow.description,
            parameters=workflow.parameters,
            output_size=workflow.output_size,
            is_default=workflow.is_default,
        )
    for default in catalog.controlnet_defaults:
        response.controlnets.add(
            type=default.type,
            default_model=default.model,
            available=bool(default.model) and default.model in response.controlnet_models,
        )
    for backend in catalog.backends:
        response.render_backends.add(
            name=backend.name,
            reachable=backend.reachable,
            error=backend.error,
            edit_modes=backend.edit_modes,
        )
    return response


def _union(lists: Iterable[Sequence[str]]) -> list[str]:
    return sorted({name for names in lists for name in names})


def check_names(job: GenerateJob, capabilities: gateway_pb2.GetCapabilitiesResponse) -> None:
    """Refuses a request naming a workflow, LoRA, ControlNet, sampler or scheduler that
    no render backend has.

    Args:
        job: The validated request.
        capabilities: What the system has.

    Raises:
        InvalidArgumentError: An unknown sampler or scheduler, naming its request field.
        FailedPreconditionError: An unknown workflow, LoRA or ControlNet: one violation
            per name, each listing what exists; the reason of the kind when all are of one
            kind, else ``MODEL_NOT_FOUND``.
    """
    reachable = any(b.reachable for b in capabilities.render_backends)
    if reachable:
        _check_settings(job, capabilities)
    unknown: list[tuple[_Kind, str, list[str]]] = []
    workflows = [w.name for w in capabilities.workflows]
    if job.workflow and job.workflow not in workflows:
        unknown.append((_WORKFLOW, job.workflow, workflows))
    if reachable:
        loras = list(capabilities.loras)
        unknown += [(_LORA, lora.name, loras) for lora in job.loras if lora.name not in loras]
        if job.controlnet is not None:
            model = job.controlnet.model or _default_controlnet(job.controlnet, capabilities)
            controlnets = list(capabilities.controlnet_models)
            if model and model not in controlnets:
                unknown.append((_CONTROLNET, model, controlnets))
    if not unknown:
        return
    texts = []
    violations = []
    for kind, name, have in unknown:
        listing = _listing(have)
        texts.append(f"unknown {kind.label} {name!r}; the render backends have: {listing}")
        violations.append(PreconditionViolation(kind.type, name, f"the server has: {listing}"))
    reasons = {kind.reason for kind, _, _ in unknown}
    raise FailedPreconditionError(
        "; ".join(texts),
        reason=reasons.pop() if len(reasons) == 1 else "MODEL_NOT_FOUND",
        metadata={"available": ",".join(unknown[0][2])},
        violations=violations,
    )


def _listing(names: Sequence[str]) -> str:
    return ", ".join(names) or "none"


def _default_controlnet(
    spec: common_pb2.ControlNetSpec, capabilities: gateway_pb2.GetCapabilitiesResponse
) -> str:
    for controlnet in capabilities.controlnets:
        if controlnet.type == spec.type:
            return controlnet.default_model
    return ""


def _check_settings(job: GenerateJob, capabilities: gateway_pb2.GetCapabilitiesResponse) -> None:
    """Sampler and scheduler names of the overrides and of an approved plan."""
    sources = [("sampler", job.inputs.overrides)]
    if job.approved_plan is not None:
        sources.append(("plan.settings", job.approved_plan.settings))
    texts: list[str] = []
    violations: list[FieldViolation] = []
    for label, field_name, have in (
        ("sampler", "sampler_name", list(capabilities.samplers)),
        ("scheduler", "scheduler", list(capabilities.schedulers)),
    ):
        for prefix, settings in sources:
            if not settings.HasField(field_name) or not have:
                continue
            name = getattr(settings, field_name)
            if name not in have:
                texts.append(
                    f"unknown {label} {name!r}; the render backends have: {_listing(have)}"
                )
                violations.append(
                    FieldViolation(
                        f"{prefix}.{field_name}", f"{name!r} is not one of: {_listing(have)}"
                    )
                )
    if violations:
        raise InvalidArgumentError("; ".join(texts), violations)
