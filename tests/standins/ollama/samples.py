"""Sample images, schemas and comparison helpers shared by the stand-in's tests."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from pydantic import BaseModel, Field

FIXTURES = Path(__file__).parents[2] / "fixtures" / "ollama"


def fixture_json(name: str) -> Any:
    """A JSON fixture from ``tests/fixtures/ollama``."""
    return json.loads((FIXTURES / name).read_text())


def fixture_ndjson(name: str) -> list[dict[str, Any]]:
    """The lines of an NDJSON fixture."""
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line]


def square_image(
    width: int = 64,
    height: int = 48,
    *,
    background: tuple[int, int, int] = (255, 255, 255),
    square: tuple[int, int, int] = (255, 0, 0),
    image_format: str = "PNG",
) -> bytes:
    """A plain background with a centred square covering a third of each side."""
    image = Image.new("RGB", (width, height), background)
    left, top = width // 3, height // 3
    image.paste(square, (left, top, left + max(1, width // 3), top + max(1, height // 3)))
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    """Standard base64 text, as Ollama expects images."""
    return base64.b64encode(data).decode()


def shape_of(value: Any) -> Any:
    """The structure of a JSON value: keys kept, leaves replaced by their JSON type."""
    if isinstance(value, dict):
        return {key: shape_of(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape_of(value[0])] if value else []
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


class ImageAnalysis(BaseModel):
    """What the analysis service asks LLaVA for (its schema has $defs via nesting)."""

    class Lighting(BaseModel):
        kind: Literal["natural", "studio", "low-key", "high-key", "unknown"]
        description: str

    description: str = Field(min_length=10)
    subjects: list[str] = Field(min_length=1, max_length=5)
    colors: list[str] = Field(min_length=1)
    materials: list[str]
    style: str
    lighting: Lighting
    orientation: Literal["landscape", "portrait", "square"]
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    brightness: float = Field(ge=0, le=1)
    text_present: bool | None = None


class GenerationPlan(BaseModel):
    """What the planner asks gpt-oss for."""

    intent: Literal["txt2img", "img2img_edit", "img2img_restyle", "variation", "upscale"]
    positive_prompt: str = Field(min_length=3, max_length=400)
    negative_prompt: str = ""
    denoise: float = Field(ge=0.05, le=1.0)
    steps: int = Field(ge=1, le=50)
    cfg: float = Field(ge=1.0, le=10.0)
    guidance: float = Field(gt=0, le=10)
    seed: int = Field(ge=0, le=2**32 - 1)
    notes: str | None = None


ANALYSIS_SCHEMA: dict[str, Any] = ImageAnalysis.model_json_schema()
PLAN_SCHEMA: dict[str, Any] = GenerationPlan.model_json_schema()
