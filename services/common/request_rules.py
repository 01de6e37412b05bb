"""The rules a generation request must follow, shared by the gateway and the render service.

Both check every request with these functions, so what the render service would refuse
the gateway refuses first, before any model is asked, with the same words. Each check
appends :class:`~services.common.errors.FieldViolation` s to a list, so one
``INVALID_ARGUMENT`` names every bad field at once; the limits come from the settings
both servers share (:class:`~services.common.settings.RequestLimitSettings`).

| rule                                  | refuses                                          |
|---------------------------------------|--------------------------------------------------|
| :func:`check_bare_name`               | blank, too long, paths, control characters       |
| :func:`check_workflow_name`           | anything but ``[A-Za-z0-9][A-Za-z0-9_-]{0,63}``  |
| :func:`check_variants`                | more than the maximum; seeds past 2^64 − 1       |
| :func:`check_txt2img_side`            | a side outside the configured minimum and maximum |
| :func:`check_loras`                   | too many; bad names; NaN or infinite strengths   |
| :func:`check_controlnet`              | out of range; start > end; nothing to follow     |
| :func:`check_output_format`           | an ``OutputFormat`` number the contract lacks    |
| :func:`check_output_quality`          | a JPEG/WEBP quality above 100                    |
| :func:`check_scale`                   | a NaN, infinite or out-of-range upscale factor   |
| :func:`check_enum`                    | an enum number the contract does not define      |

Sampler settings have their own module, :mod:`services.common.sampler`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imagegen.common.v1 import common_pb2
from services.common.errors import FieldViolation, InvalidArgumentError

__all__ = [
    "CONTROLNET_STRENGTH_RANGE",
    "DEFAULT_CONTROLNET_STRENGTH",
    "DEFAULT_OUTPUT_QUALITY",
    "MAX_FILE_NAME",
    "MAX_SEED",
    "OUTPUT_QUALITY_RANGE",
    "SCALE_RANGE",
    "ControlNetValues",
    "check_bare_name",
    "check_controlnet",
    "check_enum",
    "check_loras",
    "check_output_format",
    "check_output_quality",
    "check_scale",
    "check_txt2img_side",
    "check_variants",
    "check_workflow_name",
    "enum_name",
    "is_workflow_name",
    "raise_if_any",
    "validate_workflow_name",
]

MAX_SEED = 2**64 - 1
"""The largest seed KSampler accepts (its ``seed`` input is 0 to 0xffffffffffffffff)."""

MAX_FILE_NAME = 255
"""Longest model or LoRA file name (what file systems allow)."""

CONTROLNET_STRENGTH_RANGE = (0.0, 2.0)
"""ControlNet strengths ComfyUI's ControlNetApplyAdvanced accepts usefully."""

DEFAULT_CONTROLNET_STRENGTH = 0.6
"""Strength of a ControlNet that names none: guides without freezing the layout."""

OUTPUT_QUALITY_RANGE = (1, 100)
"""JPEG/WEBP qualities a request may ask for (0 = :data:`DEFAULT_OUTPUT_QUALITY`)."""

DEFAULT_OUTPUT_QUALITY = 90
"""JPEG/WEBP quality when the request gives 0: no visible artefacts at a third of PNG's size."""

SCALE_RANGE = (1.0, 8.0)
"""Upscale factors any workflow may declare; each narrows it (``flux-upscale``: 1.5 to 4)."""

# Workflow templates are files on the render service: a name, never a path.
_WORKFLOW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# Echoed caller values are cut so a refusal never grows with the caller's input.
_ECHO = 80


@dataclass(frozen=True)
class ControlNetValues:
    """The numbers of a ControlNet request; ``None`` = not given.

    Attributes:
        strength: How strongly the control image guides, 0.0–2.0.
        start_percent: Share of the steps at which control starts, 0.0–1.0.
        end_percent: Share of the steps at which it ends, 0.0–1.0, not below the start.
    """

    strength: float | None = None
    start_percent: float | None = None
    end_percent: float | None = None


def raise_if_any(violations: Sequence[FieldViolation], what: str) -> None:
    """Raises one ``INVALID_ARGUMENT`` naming every violation, if there are any.

    Args:
        violations: What the checks found.
        what: What was checked, for the message (``"render request"``).

    Raises:
        InvalidArgumentError: With every violation.
    """
    if not violations:
        return
    first = violations[0]
    more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
    fields = ", ".join(dict.fromkeys(v.field for v in violations))
    raise InvalidArgumentError(
        f"invalid {what}: {first.field} {first.description}{more}; fields: {fields}", violations
    )


def check_bare_name(
    name: str, field: str, violations: list[FieldViolation], *, what: str = "file"
) -> None:
    """A model or LoRA file name as ComfyUI lists it: no directories, nothing hidden.

    Args:
        name: The name as received.
        field: Its path in the request.
        violations: Where a violation is added.
        what: What the name names, for the message (``"LoRA"``).
    """
    if not name.strip():
        violations.append(FieldViolation(field, f"the {what} name is required and not blank"))
    elif len(name) > MAX_FILE_NAME:
        violations.append(
            FieldViolation(field, f"the {what} name is longer than {MAX_FILE_NAME} characters")
        )
    elif (
        "/" in name
        or "\\" in name
        or name.startswith(".")
        or any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in name)
    ):
        violations.append(
            FieldViolation(
                field,
                f"{name[:_ECHO]!r} is not a bare {what} file name as ComfyUI lists it "
                "(no directories, paths or control characters)",
            )
        )


def is_workflow_name(name: str) -> bool:
    """Whether ``name`` is a plain template name (see :func:`check_workflow_name`)."""
    return _WORKFLOW_NAME.fullmatch(name) is not None


def check_workflow_name(name: str, field: str, violations: list[FieldViolation]) -> None:
    """A workflow template name: 1 to 64 letters, digits, ``-`` or ``_``, starting with a
    letter or digit (so no path, no hidden file).

    Args:
        name: The requested template name (empty = the default; not checked here).
        field: Its path in the request.
        violations: Where a violation is added.
    """
    if not is_workflow_name(name):
        violations.append(
            FieldViolation(
                field,
                f"{name[:_ECHO]!r} is not a workflow name: use 1 to 64 letters, digits, "
                "'-' or '_', starting with a letter or digit (no paths)",
            )
        )


def validate_workflow_name(name: str, *, field_name: str = "workflow") -> None:
    """Refuses a name that is not a plain template name (see :func:`check_workflow_name`).

    Raises:
        InvalidArgumentError: Naming ``field_name``.
    """
    violations: list[FieldViolation] = []
    check_workflow_name(name, field_name, violations)
    raise_if_any(violations, "workflow name")


def check_variants(
    variants: int, seed: int | None, max_variants: int, violations: list[FieldViolation]
) -> int:
    """How many variants a request renders (0 means 1, at most ``max_variants``), and
    whether their seeds fit.

    Variant i renders ``seed + i``; the last one must not pass :data:`MAX_SEED`. A range
    that would pass it is refused rather than wrapped: a wrapped seed could not be
    reproduced by sending it alone.

    Args:
        variants: The requested number.
        seed: The caller's seed of variant 0; ``None`` = random (always fits).
        max_variants: The configured maximum.
        violations: Where violations are added (``variants``, ``seed``).

    Returns:
        The number of variants (at least 1).
    """
    count = variants or 1
    if count > max_variants:
        violations.append(
            FieldViolation("variants", f"is {count}; at most {max_variants} per request")
        )
        return count
    if seed is None:
        return count
    last_start = MAX_SEED - (count - 1)
    if seed < 0:
        violations.append(FieldViolation("seed", f"is {seed}; seeds run from 0 to {MAX_SEED}"))
    elif seed > last_start:
        violations.append(
            FieldViolation(
                "seed",
                f"is {seed}; seed + variants - 1 must not exceed {MAX_SEED} (seeds never wrap): "
                f"use a seed of at most {last_start}",
            )
        )
    return count


def check_txt2img_side(
    field: str, side: int, min_side: int, max_side: int, violations: list[FieldViolation]
) -> None:
    """A text-to-image width or height: 0 (the default) or within the configured sides.

    Sizes inside the range need not be multiples of 16: the render snaps them and says so.

    Args:
        field: ``"width"`` or ``"height"``.
        side: The requested side in pixels.
        min_side: Smallest side allowed.
        max_side: Largest side allowed.
        violations: Where a violation is added.
    """
    if side and not min_side <= side <= max_side:
        violations.append(
            FieldViolation(field, f"is {side}; use 0 (default) or {min_side} to {max_side} pixels")
        )


def check_loras(
    loras: Sequence[tuple[str, float | None]],
    max_loras: int,
    violations: list[FieldViolation],
) -> None:
    """The LoRAs of a request: how many, their names, finite strengths.

    Strengths outside the render's range are not refused: the render clamps them and warns.

    Args:
        loras: (name, strength or ``None``) in chain order.
        max_loras: The configured maximum.
        violations: Where violations are added, naming ``loras[i].name`` etc.
    """
    if len(loras) > max_loras:
        violations.append(FieldViolation("loras", f"has {len(loras)} entries; at most {max_loras}"))
    for i, (name, strength) in enumerate(loras):
        check_bare_name(name, f"loras[{i}].name", violations, what="LoRA")
        if strength is not None and not math.isfinite(strength):
            violations.append(
                FieldViolation(f"loras[{i}].strength", f"{strength} is not a finite number")
            )


def check_controlnet(
    values: ControlNetValues,
    *,
    model: str,
    has_control_image: bool,
    text_to_image: bool,
    violations: list[FieldViolation],
) -> None:
    """The numbers, model name and control image of a ControlNet (its type: :func:`check_enum`).

    Args:
        values: Strength and start/end percent as requested.
        model: The ControlNet file name; empty = the render's default for the type.
        has_control_image: Whether the caller sent a preprocessed control image.
        text_to_image: True when there is no source to derive the control image from.
        violations: Where violations are added, naming ``controlnet.<field>``.
    """
    bounds = (
        ("strength", values.strength, CONTROLNET_STRENGTH_RANGE),
        ("start_percent", values.start_percent, (0.0, 1.0)),
        ("end_percent", values.end_percent, (0.0, 1.0)),
    )
    usable = True
    for name, value, (low, high) in bounds:
        if value is None:
            continue
        if not math.isfinite(value):
            violations.append(
                FieldViolation(f"controlnet.{name}", f"{value} is not a finite number")
            )
            usable = False
        elif not low <= value <= high:
            violations.append(
                FieldViolation(f"controlnet.{name}", f"{value:g} is outside {low:g} to {high:g}")
            )
            usable = False
    start = 0.0 if values.start_percent is None else values.start_percent
    end = 1.0 if values.end_percent is None else values.end_percent
    if usable and end < start:
        violations.append(
            FieldViolation("controlnet.end_percent", f"{end:g} is below start_percent {start:g}")
        )
    if model:
        check_bare_name(model, "controlnet.model", violations, what="ControlNet")
    if text_to_image and not has_control_image:
        violations.append(
            FieldViolation(
                "controlnet.control_image",
                "is required for text-to-image: there is no source image to derive it from",
            )
        )


def check_output_format(output_format: int, violations: list[FieldViolation]) -> None:
    """The encoding of the results: unset (PNG) or a defined ``OutputFormat``.

    Args:
        output_format: The ``OutputFormat`` number received.
        violations: Where a violation is added, naming ``output_format``.
    """
    check_enum(
        output_format, common_pb2.OutputFormat, "output_format", violations, unspecified_ok=True
    )


def check_output_quality(quality: int, violations: list[FieldViolation]) -> int:
    """The JPEG/WEBP quality of the results: 0 (the default) or 1 to 100.

    Args:
        quality: The requested quality (ignored for PNG, but checked all the same).
        violations: Where a violation is added, naming ``output_quality``.

    Returns:
        The quality to encode with (:data:`DEFAULT_OUTPUT_QUALITY` for 0).
    """
    low, high = OUTPUT_QUALITY_RANGE
    if quality and not low <= quality <= high:
        violations.append(
            FieldViolation(
                "output_quality",
                f"is {quality}; use 0 (default {DEFAULT_OUTPUT_QUALITY}) or {low} to {high}",
            )
        )
    return quality or DEFAULT_OUTPUT_QUALITY


def check_scale(
    scale: float,
    violations: list[FieldViolation],
    *,
    low: float = SCALE_RANGE[0],
    high: float = SCALE_RANGE[1],
    workflow: str = "",
) -> None:
    """An upscale factor: finite and within ``low`` to ``high``.

    Args:
        scale: The requested factor.
        violations: Where a violation is added, naming ``scale``.
        low: Smallest factor (the workflow's, or :data:`SCALE_RANGE`).
        high: Largest factor.
        workflow: The workflow whose range applies, for the message; empty = any.
    """
    whose = f"workflow {workflow!r} scales" if workflow else "scale factors run"
    if not math.isfinite(scale):
        violations.append(FieldViolation("scale", f"{scale} is not a finite number"))
    elif not low <= scale <= high:
        violations.append(
            FieldViolation("scale", f"is {scale:g}; {whose} from {low:g} to {high:g}")
        )


def check_enum(
    value: int,
    enum: Any,
    field: str,
    violations: list[FieldViolation],
    *,
    unspecified_ok: bool = False,
) -> None:
    """An enum field holds a number the contract defines (proto3 accepts any ``int32``).

    Args:
        value: The number received.
        enum: The generated enum wrapper, e.g. ``common_pb2.ControlType``.
        field: Its path in the request.
        violations: Where a violation is added.
        unspecified_ok: Whether 0 (``*_UNSPECIFIED``) is acceptable here.
    """
    known = [number for number in enum.values() if number or unspecified_ok]
    if value in known:
        return
    prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.DESCRIPTOR.name).upper() + "_"
    names = ", ".join(enum.Name(number).removeprefix(prefix) for number in enum.values() if number)
    if value == 0:
        violations.append(FieldViolation(field, f"is required: one of {names}"))
    else:
        violations.append(
            FieldViolation(field, f"{value} is not a known {enum.DESCRIPTOR.name}: use {names}")
        )


def enum_name(enum: Any, value: int) -> str:
    """The name of an enum number, or the number itself when the contract has none (logs)."""
    try:
        return str(enum.Name(value))
    except ValueError:
        return str(value)
