"""What the render service offers: its workflow templates and what each backend lists.

The gateway's discovery RPC is built from this (through ``RenderService.GetCatalog``),
and the gateway checks every name a request gives against it before any model runs.

A backend that does not answer is reported unreachable with empty lists; the catalog is
still answered, since the other backends (and the templates) are still of use.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.common.errors import ImagegenError
from services.common.sampler import SamplerOverrides, resolve_settings
from services.render.backend import (
    BackendError,
    BackendOffer,
    RenderBackend,
    VariantSpec,
    VariantValues,
)
from services.render.jobs import ControlKind
from services.render.workflows import (
    DEFAULT_WORKFLOWS,
    EDIT_WORKFLOWS,
    EditKind,
    Workflow,
    WorkflowLibrary,
)

__all__ = ["BackendEntry", "RenderCatalog", "WorkflowEntry", "read_catalog"]


@dataclass(frozen=True)
class WorkflowEntry:
    """One template as the catalog lists it.

    Attributes:
        workflow: The loaded template.
        output_size: The template's size policy: ``"source"``, ``"scale"`` or ``"requested"``.
        is_default: The template used when a request of its mode names none.
    """

    workflow: Workflow
    output_size: str
    is_default: bool


@dataclass(frozen=True)
class BackendEntry:
    """One backend as the catalog lists it.

    Attributes:
        name: The backend's name (its URL).
        offer: What it lists; ``None`` when it did not answer.
        error: Why it could not be asked; empty when it answered.
    """

    name: str
    offer: BackendOffer | None
    error: str = ""


@dataclass(frozen=True)
class RenderCatalog:
    """Everything a caller may name in a render request.

    Attributes:
        workflows: The templates that load, sorted by name.
        backends: One entry per backend, in configuration order.
        controlnet_defaults: The ControlNet file used per control type when none is named.
        max_megapixels: The render's area cap.
    """

    workflows: tuple[WorkflowEntry, ...]
    backends: tuple[BackendEntry, ...]
    controlnet_defaults: Mapping[ControlKind, str]
    max_megapixels: float


async def read_catalog(
    library: WorkflowLibrary,
    backends: Sequence[RenderBackend],
    *,
    controlnet_defaults: Mapping[ControlKind, str],
    max_megapixels: float,
) -> RenderCatalog:
    """Reads the templates and asks every backend (concurrently) what it lists.

    Args:
        library: The workflow templates; a broken template is left out.
        backends: The render backends.
        controlnet_defaults: The configured default ControlNet per control type.
        max_megapixels: The render's area cap.

    Returns:
        The catalog.
    """
    entries: list[WorkflowEntry] = []
    defaults = set(DEFAULT_WORKFLOWS.values())
    for name in library.names():
        try:
            workflow = library.get(name)
        except ImagegenError:  # a broken template is refused when named, not listed
            continue
        entries.append(
            WorkflowEntry(workflow, workflow.output_size.policy.value, is_default=name in defaults)
        )
    edits = {
        kind: w.workflow
        for w in entries
        for kind in EditKind
        if w.workflow.name == EDIT_WORKFLOWS[kind]
    }
    offers = await asyncio.gather(*(_ask(backend, edits) for backend in backends))
    return RenderCatalog(
        workflows=tuple(entries),
        backends=tuple(offers),
        controlnet_defaults={kind: controlnet_defaults.get(kind, "") for kind in ControlKind},
        max_megapixels=max_megapixels,
    )


async def _ask(backend: RenderBackend, edits: Mapping[EditKind, Workflow]) -> BackendEntry:
    try:
        offer = await backend.offer()
        # The offer was read afresh just now: a missing model is missing, no second read.
        fits = await asyncio.gather(
            *(backend.problems(_probe(w), recheck=False) for w in edits.values())
        )
    except BackendError as e:
        return BackendEntry(backend.name, None, error=str(e))
    # A mode is offered where its shipped template fits the backend as it is: its nodes,
    # and its model files (the Kontext model) listed.
    modes = tuple(kind.value for kind, problems in zip(edits, fits, strict=True) if not problems)
    return BackendEntry(backend.name, dataclasses.replace(offer, edit_modes=modes))


def _probe(workflow: Workflow) -> VariantSpec:
    """A variant of the template with default settings, to check it against a backend."""
    s = resolve_settings(SamplerOverrides(), text_to_image=False)
    values = VariantValues(
        positive="probe",
        negative="",
        seed=0,
        steps=s.steps,
        cfg=s.cfg,
        guidance=s.guidance,
        sampler=s.sampler_name,
        scheduler=s.scheduler,
        denoise=s.denoise,
        width=1024,
        height=1024,
        image="probe.png",
        mask="probe-mask.png" if workflow.has("mask") else None,
    )
    return VariantSpec(workflow, values)
