"""``imagegen generate --mask --mode`` end to end: the gateway inpaints and keeps the rest."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from PIL import Image, ImageChops

from clients import cli
from tests.gateway.system import System
from tools.stack import EXAMPLE_IMAGE

BOX = (200, 120, 400, 280)


def _mask(path: Path, size: tuple[int, int]) -> Path:
    mask = Image.new("L", size, 0)
    mask.paste(255, BOX)
    mask.save(path, format="PNG")
    return path


def _argv(system: System, mask: Path, out: Path) -> list[str]:
    return [
        "generate", "--target", system.gateway.address, "--image", str(EXAMPLE_IMAGE),
        "--instruction", "Перекрась чашку в тёмно-зелёный цвет", "--seed", "7",
        "--mask", str(mask), "--mode", "inpaint", "--out", str(out),
    ]  # fmt: skip


async def test_mask_and_mode_inpaint_only_inside_the_mask(system: System, tmp_path: Path) -> None:
    out = io.StringIO()
    mask = _mask(tmp_path / "mask.png", (600, 400))
    code = await asyncio.to_thread(cli.main, _argv(system, mask, tmp_path / "out"), stdout=out)
    assert code == cli.EXIT_OK, out.getvalue()
    with Image.open(EXAMPLE_IMAGE) as source, Image.open(tmp_path / "out" / "7.png") as result:
        diff = ImageChops.difference(source.convert("RGB"), result.convert("RGB"))
    inside = diff.crop(BOX)
    diff.paste((0, 0, 0), BOX)
    assert max(high for _, high in diff.getextrema()) <= 2  # type: ignore[misc]
    assert inside.getbbox() is not None


async def test_a_mask_of_the_wrong_size_is_refused_naming_it(
    system: System, tmp_path: Path
) -> None:
    out = io.StringIO()
    mask = _mask(tmp_path / "mask.png", (300, 200))
    code = await asyncio.to_thread(cli.main, _argv(system, mask, tmp_path / "out"), stdout=out)
    assert code == cli.EXIT_FAILED
    assert "error: INVALID_ARGUMENT" in out.getvalue()
    assert "field mask.data:" in out.getvalue()
