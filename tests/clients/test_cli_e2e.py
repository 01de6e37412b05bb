"""The ``imagegen`` command against the real system (once, end to end)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from PIL import Image

from clients import cli
from tests.gateway.system import System
from tools.stack import EXAMPLE_IMAGE


def _pngs(folder: Path) -> dict[str, tuple[int, int]]:
    sizes = {}
    for path in sorted(folder.glob("*.png")):
        with Image.open(path) as image:
            sizes[path.name] = image.size
    return sizes


async def test_generate_command_writes_each_variant_as_seed_png(
    system: System, tmp_path: Path
) -> None:
    out = io.StringIO()
    argv = [
        "generate", "--target", system.gateway.address, "--image", str(EXAMPLE_IMAGE),
        "--instruction", "Перекрась чашку в тёмно-зелёный цвет, сохрани блюдце и стол",
        "--variants", "2", "--seed", "40", "--out", str(tmp_path),
    ]  # fmt: skip
    code = await asyncio.to_thread(cli.main, argv, stdout=out)
    assert code == cli.EXIT_OK, out.getvalue()
    assert _pngs(tmp_path) == {"40.png": (600, 400), "41.png": (600, 400)}
    text = out.getvalue()
    assert "analysis (model" in text and "plan (model" in text and "timings:" in text
    assert text.startswith("accepted: request ") and "seed 40, 2 variant(s)" in text


async def test_models_command_prints_the_capabilities(system: System) -> None:
    out = io.StringIO()
    argv = ["models", "--target", system.gateway.address]
    code = await asyncio.to_thread(cli.main, argv, stdout=out)
    text = out.getvalue()
    assert code == cli.EXIT_OK, text
    assert "flux-img2img (image_to_image, default; size: source)" in text
    assert "flux-realism-lora.safetensors" in text
    assert "canny: " in text and "euler" in text
    assert "vision: llava on ollama" in text and "planner: gpt-oss:20b on ollama" in text
    assert "≤ 8 variants" in text


async def test_generate_command_error_prints_status_and_field(
    system: System, tmp_path: Path
) -> None:
    out = io.StringIO()
    argv = [
        "generate", "--target", system.gateway.address, "--instruction", "x",
        "--variants", "50", "--out", str(tmp_path),
    ]  # fmt: skip
    code = await asyncio.to_thread(cli.main, argv, stdout=out)
    assert code == cli.EXIT_FAILED
    assert "error: INVALID_ARGUMENT" in out.getvalue()
    assert "field variants:" in out.getvalue()
