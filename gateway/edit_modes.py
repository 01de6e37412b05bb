"""How an image-to-image edit is rendered: img2img, FLUX.1 Kontext or masked inpainting.

The decision lives in the gateway because only the gateway holds all of its inputs: the
caller's ``edit_mode`` and ``mask``, the planned intent, and what the render backends
answered about the Kontext model. :func:`choose_edit_mode` is pure; the table it follows
(also in ``docs/api.md``):

| intent                                        | Kontext model | mask | AUTO renders with |
|-----------------------------------------------|---------------|------|-------------------|
| colour, material, add/remove object, minor fix| yes           | any  | Kontext           |
| colour, material, add/remove object, minor fix| no            | yes  | inpainting ⚠      |
| colour, material, add/remove object, minor fix| no            | no   | img2img ⚠         |
| style transfer, lighting, full reimagining    | any           | any  | img2img           |
| not recognised                                | any           | yes  | inpainting        |
| not recognised                                | any           | no   | img2img           |
| any, with a ControlNet                        | any           | yes  | inpainting        |
| any, with a ControlNet                        | any           | no   | img2img           |

⚠ = the ``KONTEXT_UNAVAILABLE`` warning. A ControlNet already holds the structure, and the
Kontext template has no source-sized image to derive its hint from, so a request with one
never goes to Kontext in AUTO. With a mask, every mode keeps the source's
pixels outside it (the render composites the result over the source).

Explicit modes are honoured: KONTEXT without the model fails (FAILED_PRECONDITION from
the render, naming the file), INPAINT without a mask is refused (INVALID_ARGUMENT naming
``mask``). A request that names its ``workflow`` skips the decision.

Whether the backends have the Kontext model comes from the discovery catalog (each render
backend's ``edit_modes``, :func:`kontext_listed`) and, where that is stale, from the render
itself: a render refused with ``KONTEXT_MODEL_MISSING`` is retried in the fallback mode,
and :class:`KontextAvailability` remembers the refusal for a while so the next requests go
straight to the fallback.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2

__all__ = [
    "EDIT_WORKFLOWS",
    "KONTEXT_MISSING_REASON",
    "LOCAL_INTENTS",
    "EditChoice",
    "EditMode",
    "KontextAvailability",
    "choose_edit_mode",
    "kontext_listed",
]

KONTEXT_MISSING_REASON = "KONTEXT_MODEL_MISSING"
"""``ErrorInfo.reason`` of a render refused because no backend has the Kontext model."""


class EditMode(enum.Enum):
    """A concrete way to render an edit; the value is the proto enum number."""

    IMG2IMG = common_pb2.EDIT_MODE_IMG2IMG
    KONTEXT = common_pb2.EDIT_MODE_KONTEXT
    INPAINT = common_pb2.EDIT_MODE_INPAINT


EDIT_WORKFLOWS: Mapping[EditMode, str] = {
    EditMode.IMG2IMG: "flux-img2img",
    EditMode.KONTEXT: "flux-kontext-edit",
    EditMode.INPAINT: "flux-inpaint",
}
"""The render workflow of each mode (``workflows/``)."""

LOCAL_INTENTS = frozenset(
    {
        common_pb2.EDIT_INTENT_COLOR_CHANGE,
        common_pb2.EDIT_INTENT_MATERIAL_CHANGE,
        common_pb2.EDIT_INTENT_ADD_OBJECT,
        common_pb2.EDIT_INTENT_REMOVE_OBJECT,
        common_pb2.EDIT_INTENT_MINOR_EDIT,
    }
)
"""Intents that change one thing and must leave the rest of the frame alone."""

GLOBAL_INTENTS = frozenset(
    {
        common_pb2.EDIT_INTENT_STYLE_TRANSFER,
        common_pb2.EDIT_INTENT_LIGHTING_CHANGE,
        common_pb2.EDIT_INTENT_FULL_REIMAGINING,
    }
)
"""Intents that re-draw the whole frame on purpose: img2img at the intent's denoise."""


@dataclass(frozen=True)
class EditChoice:
    """The mode to render with.

    Attributes:
        mode: The mode.
        kontext_unavailable: Kontext was the choice but no backend has its model, so
            this is the fallback (the caller gets ``KONTEXT_UNAVAILABLE``).
    """

    mode: EditMode
    kontext_unavailable: bool = False

    @property
    def workflow(self) -> str:
        """The render workflow of the mode."""
        return EDIT_WORKFLOWS[self.mode]


def choose_edit_mode(
    requested: int,
    intent: int,
    *,
    has_mask: bool,
    kontext_available: bool,
    has_controlnet: bool = False,
) -> EditChoice:
    """The mode an edit is rendered with.

    Args:
        requested: The caller's ``EditMode`` (UNSPECIFIED and AUTO decide here).
        intent: The plan's ``EditIntent``.
        has_mask: The caller sent a mask.
        kontext_available: A render backend has (or may have) the Kontext model.
        has_controlnet: The caller sent a ControlNet.

    Returns:
        The explicit mode as asked, or AUTO's choice by the table in the module docstring.
    """
    if requested not in (common_pb2.EDIT_MODE_UNSPECIFIED, common_pb2.EDIT_MODE_AUTO):
        return EditChoice(EditMode(requested))
    if intent in LOCAL_INTENTS and not has_controlnet:
        if kontext_available:
            return EditChoice(EditMode.KONTEXT)
        fallback = EditMode.INPAINT if has_mask else EditMode.IMG2IMG
        return EditChoice(fallback, kontext_unavailable=True)
    if intent in GLOBAL_INTENTS and not has_controlnet:
        return EditChoice(EditMode.IMG2IMG)
    return EditChoice(EditMode.INPAINT if has_mask else EditMode.IMG2IMG)


def kontext_listed(capabilities: gateway_pb2.GetCapabilitiesResponse | None) -> bool:
    """Whether a reachable render backend lists Kontext among its edit modes.

    Args:
        capabilities: The last discovery answer; ``None`` = not read yet.

    Returns:
        True when one does, or when nothing is known yet (the render then decides).
    """
    if capabilities is None:
        return True
    return any(
        backend.reachable and common_pb2.EDIT_MODE_KONTEXT in backend.edit_modes
        for backend in capabilities.render_backends
    )


class KontextAvailability:
    """What the gateway last learnt about the Kontext model on the render backends.

    Unknown counts as available: the render is tried and, if refused with
    :data:`KONTEXT_MISSING_REASON`, falls back. A refusal is remembered for
    ``recheck_s`` seconds, after which Kontext is tried again (a model may have been
    downloaded meanwhile).

    Args:
        recheck_s: How long a refusal is trusted.
        clock: Monotonic seconds (tests pass their own).
    """

    def __init__(self, recheck_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._recheck_s = recheck_s
        self._clock = clock
        self._missing_until = float("-inf")

    def available(self) -> bool:
        """False while a recent refusal said no backend has the model."""
        return self._clock() >= self._missing_until

    def mark_missing(self) -> None:
        """A render was refused for the missing Kontext model."""
        self._missing_until = self._clock() + self._recheck_s
