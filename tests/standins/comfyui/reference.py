"""The recorded real-server evidence in tests/fixtures/comfyui/ and how to compare with it.

``http_examples.md`` and the ``ws_transcript_*.jsonl`` files were captured from a real
ComfyUI 0.3.64; this module parses them and reduces messages to their *shape* (keys,
value types, order) so the fake can be checked against them.
"""

from __future__ import annotations

import functools
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from standins.comfyui import FakeComfyUISettings

__all__ = [
    "FAST",
    "FIXTURES",
    "HttpExample",
    "TranscriptFrame",
    "graph",
    "http_examples",
    "probe_image_png",
    "probe_settings",
    "shape",
    "transcript",
]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "comfyui"

FAST: dict[str, Any] = {"step_delay_s": 0.0, "node_delay_s": 0.0, "restart_s": 0.0}
"""No delays: the settings tests pass when timing is not what they are about."""


def probe_settings(**overrides: Any) -> FakeComfyUISettings:
    """Settings of the recorded probe server (its model files, no preview method), no delays."""
    values: dict[str, Any] = {
        "checkpoints": ["flux1-dev-fp8-emptyheader.safetensors", "flux1-dev-fp8.safetensors"],
        "loras": ["flux_dummy_lora.safetensors"],
        "controlnets": ["flux_dummy_controlnet_union.safetensors"],
        "upscale_models": ["tiny_random_compact_x2.safetensors"],
        "previews_enabled": False,
        **FAST,
    }
    values.update(overrides)
    return FakeComfyUISettings(**values)


@functools.cache
def probe_image_png(size: tuple[int, int] = (320, 240), color: int = 0) -> bytes:
    """A gradient PNG standing in for the probe's ``probe_input.png`` (4:3, 320x240).

    Built pixel by pixel in Python, so made once per process for each size and colour.
    """
    img = Image.new("RGB", size)
    w, h = size
    img.putdata(
        [(x * 255 // w, y * 255 // h, (37 + color) % 256) for y in range(h) for x in range(w)]
    )
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def graph(name: str) -> dict[str, Any]:
    """An API-format graph from tests/fixtures/comfyui/graphs/."""
    data: dict[str, Any] = json.loads((FIXTURES / "graphs" / f"{name}.json").read_text())
    return data


@dataclass(frozen=True)
class HttpExample:
    """One recorded request/response of http_examples.md."""

    title: str
    request_body: str | None
    status: int
    content_type: str | None
    response_body: str | None

    def request_json(self) -> Any:
        assert self.request_body is not None
        return json.loads(self.request_body)

    def response_json(self) -> Any:
        assert self.response_body is not None
        return json.loads(self.response_body)


_BLOCK = re.compile(r"```(\w+)\n(.*?)\n```", re.S)
_RESPONSE = re.compile(r"^Response: HTTP (\d+), Content-Type: (.*)$", re.M)


def http_examples() -> dict[str, HttpExample]:
    """Sections (## or ###) of http_examples.md with a ``Request:`` and a ``Response:`` line.

    Only the first request/response of a section is taken.
    """
    text = (FIXTURES / "http_examples.md").read_text()
    examples: dict[str, HttpExample] = {}
    for section in re.split(r"^#{2,3} ", text, flags=re.M)[1:]:
        title = section.splitlines()[0].strip()
        response = _RESPONSE.search(section)
        if "Request:" not in section or response is None:
            continue
        request_part = section[: response.start()]
        response_part = section[response.end() :]
        body_blocks = [b for lang, b in _BLOCK.findall(request_part) if lang in ("json", "text")]
        response_blocks = _BLOCK.findall(response_part)
        content_type = response.group(2).strip()
        examples[title] = HttpExample(
            title=title,
            request_body=body_blocks[0] if body_blocks else None,
            status=int(response.group(1)),
            content_type=None if content_type == "None" else content_type,
            response_body=response_blocks[0][1] if response_blocks else None,
        )
    return examples


@dataclass(frozen=True)
class TranscriptFrame:
    """One websocket frame (or phase marker) of a recorded transcript."""

    socket: str
    kind: str  # text | binary | phase | closed
    direction: str
    msg: dict[str, Any] | None = None
    first8_hex: str | None = None
    length: int | None = None
    phase: str | None = None


def transcript(name: str) -> list[TranscriptFrame]:
    """Frames of ``ws_transcript_<name>.jsonl`` (the comment line skipped)."""
    frames = []
    for line in (FIXTURES / f"ws_transcript_{name}.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "comment" in record:
            continue
        frames.append(
            TranscriptFrame(
                socket=record.get("socket", "-"),
                kind=record["kind"],
                direction=record.get("dir", ""),
                msg=record.get("msg"),
                first8_hex=record.get("first8_hex"),
                length=record.get("len"),
                phase=record.get("phase"),
            )
        )
    return frames


def shape(value: Any) -> Any:
    """Structure and value types: dict keys in order, list element shapes, scalar types.

    Lists become ``["list", <distinct element shapes in first-seen order>]`` so lists of
    different lengths with the same kind of items compare equal; an empty list is
    ``["list"]``.
    """
    if isinstance(value, dict):
        return {"dict": [(key, shape(item)) for key, item in value.items()]}
    if isinstance(value, list):
        seen: list[Any] = []
        for item in value:
            item_shape = shape(item)
            if item_shape not in seen:
                seen.append(item_shape)
        return ["list", *seen]
    if value is None:
        return "null"
    return type(value).__name__
