"""Edit intents and the denoise range each one allows.

Denoise says how much of the source the sampler redraws. Too low and the change does not
show; too high and the rest of the picture drifts. The right amount depends on what the
instruction asks for, so the planner first names the intent and then takes its denoise
from this one table (the model's own value is clamped into the range; the rules use the
typical value):

| intent           | denoise range | rules use | example instruction                      |
|------------------|---------------|-----------|------------------------------------------|
| colour change    | 0.80 – 0.90   | 0.85      | «Перекрась диван в тёмно-зелёный»        |
| material change  | 0.75 – 0.85   | 0.80      | «Сделай стол из мрамора»                 |
| style transfer   | 0.65 – 0.80   | 0.72      | «В стиле акварели»                       |
| add object       | 0.60 – 0.75   | 0.68      | «Добавь вазу с цветами на стол»          |
| remove object    | 0.60 – 0.75   | 0.68      | «Убери стул у окна»                      |
| lighting change  | 0.45 – 0.60   | 0.52      | «Сделай закатное освещение»              |
| minor edit       | 0.35 – 0.50   | 0.42      | «Убери шум и немного повысь резкость»    |
| full reimagining | 0.85 – 0.95   | 0.90      | «Полностью переосмысли комнату»          |
| text to image    | 1.00          | 1.00      | (no source image)                        |
| none recognised  | —             | 0.68      | rules only: nothing in the instruction matched |

0.68 for an unrecognised instruction sits where most everyday edits (objects, styles)
work; 0.5, the old default, was too weak for nearly every change people ask for.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "DENOISE_TABLE",
    "UNRECOGNISED_DENOISE",
    "DenoiseRange",
    "Intent",
    "clamp_denoise",
]


class Intent(enum.StrEnum):
    """What an instruction asks to change; the value is the model's JSON spelling."""

    COLOR_CHANGE = "color_change"
    MATERIAL_CHANGE = "material_change"
    STYLE_TRANSFER = "style_transfer"
    ADD_OBJECT = "add_object"
    REMOVE_OBJECT = "remove_object"
    LIGHTING_CHANGE = "lighting_change"
    MINOR_EDIT = "minor_edit"
    FULL_REIMAGINING = "full_reimagining"
    TEXT_TO_IMAGE = "text_to_image"

    @property
    def label(self) -> str:
        """The intent in words, e.g. ``"colour change"``, for warnings and prompts."""
        return self.value.replace("_", " ").replace("color", "colour")


@dataclass(frozen=True)
class DenoiseRange:
    """The denoise values that suit one intent.

    Attributes:
        low: Smallest sensible value.
        high: Largest sensible value.
        typical: What the rules use when no model chose a value.
    """

    low: float
    high: float
    typical: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.typical <= self.high <= 1.0:
            raise ValueError(f"not an ordered denoise range within 0..1: {self}")

    def __contains__(self, value: object) -> bool:
        return isinstance(value, float | int) and self.low <= value <= self.high

    def __str__(self) -> str:
        if self.low == self.high:
            return f"{self.low:.2f}"
        return f"{self.low:.2f}–{self.high:.2f}"


DENOISE_TABLE: Mapping[Intent, DenoiseRange] = MappingProxyType(
    {
        Intent.COLOR_CHANGE: DenoiseRange(0.80, 0.90, 0.85),
        Intent.MATERIAL_CHANGE: DenoiseRange(0.75, 0.85, 0.80),
        Intent.STYLE_TRANSFER: DenoiseRange(0.65, 0.80, 0.72),
        Intent.ADD_OBJECT: DenoiseRange(0.60, 0.75, 0.68),
        Intent.REMOVE_OBJECT: DenoiseRange(0.60, 0.75, 0.68),
        Intent.LIGHTING_CHANGE: DenoiseRange(0.45, 0.60, 0.52),
        Intent.MINOR_EDIT: DenoiseRange(0.35, 0.50, 0.42),
        Intent.FULL_REIMAGINING: DenoiseRange(0.85, 0.95, 0.90),
        # An empty latent has nothing to keep: text-to-image always redraws everything.
        Intent.TEXT_TO_IMAGE: DenoiseRange(1.0, 1.0, 1.0),
    }
)
"""Denoise range per intent: the one table the planner, the rules and the README share."""

UNRECOGNISED_DENOISE = 0.68
"""Denoise of a rules plan whose instruction matched no intent (never 0.5)."""


def clamp_denoise(intent: Intent, value: float) -> tuple[float, str | None]:
    """Keeps a proposed denoise inside its intent's range.

    Args:
        intent: The plan's intent.
        value: The proposed denoise (the model's, usually).

    Returns:
        The value to use and, when it had to change, a warning saying so. A value that
        is not a finite number becomes the intent's typical value.
    """
    allowed = DENOISE_TABLE[intent]
    if not math.isfinite(value):
        return allowed.typical, (
            f"denoise {value} from the model is not a number; "
            f"used {allowed.typical:.2f}, typical for {intent.label}"
        )
    if value in allowed:
        return value, None
    clamped = min(max(value, allowed.low), allowed.high)
    return clamped, (
        f"denoise {value:g} from the model is outside {allowed} for {intent.label}; "
        f"clamped to {clamped:.2f}"
    )
