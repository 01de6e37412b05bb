"""The README's ``imagegen`` recipes, run as printed against the whole system in-process.

As for the grpcurl recipes, only two things differ from a reader's terminal: the client is
pointed at this test's gateway through ``IMAGEGEN_GATEWAY`` (the printed commands rely on
the default, the gateway of ``python -m tools.stack --serve``), and ``.venv/bin/`` is the
directory of the running interpreter. Each runs in a fresh folder holding the repository's
``tools/`` (for the demo image), so ``--out out`` writes there.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from clients.cli import build_parser
from tests.docs.markdown import README, ROOT, ShellCommand, shell_commands
from tests.gateway.system import System

pytestmark = pytest.mark.e2e

RECIPES = [c for c in shell_commands(README.read_text()) if c.text.startswith(".venv/bin/imagegen")]


async def _run(command: str, folder: Path, gateway: str) -> tuple[int, str]:
    here = command.replace(".venv/bin/", f"{Path(sys.executable).parent}/")
    env = os.environ | {
        "IMAGEGEN_GATEWAY": gateway,
        # The console script imports this checkout, as an editable install of it would.
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "protos")]),
    }
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", here,
        cwd=folder, env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with asyncio.timeout(45):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def _wait_serving(address: str) -> None:
    """Waits, as a reader would after `--serve` prints its addresses, for the gateway to be
    ready: its first readiness poll may run before render's backend has connected."""
    async with grpc.aio.insecure_channel(address) as channel, asyncio.timeout(15):
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            answer = await stub.Check(health_pb2.HealthCheckRequest())
            if answer.status == health_pb2.HealthCheckResponse.SERVING:
                return
            await asyncio.sleep(0.1)


def _sizes(folder: Path) -> dict[str, tuple[int, int]]:
    sizes = {}
    for path in sorted(folder.glob("*.png")):
        with Image.open(path) as image:
            sizes[path.name] = image.size
    return sizes


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.text.split("--")[0][10:60])
async def test_readme_cli_recipe_works_as_printed(
    system: System, recipe: ShellCommand, tmp_path: Path
) -> None:
    (tmp_path / "tools").symlink_to(ROOT / "tools")
    await _wait_serving(system.gateway.address)
    code, output = await _run(recipe.text, tmp_path, system.gateway.address)
    assert code == 0, output

    args = build_parser().parse_args(shlex.split(recipe.text.replace("\\\n", " "))[1:])
    if args.command == "health":
        assert "gateway" in output and "NOT_SERVING" not in output, output
        return
    if args.command == "models":
        # The workflows and the LoRAs the stand-in's ComfyUI lists.
        assert "flux-img2img" in output and "flux-realism-lora.safetensors" in output, output
        return
    written = _sizes(tmp_path / args.out)
    assert len(written) == args.variants, output
    if args.seed is not None:
        assert sorted(written) == [f"{args.seed + i}.png" for i in range(args.variants)]
    if args.image:
        with Image.open(tmp_path / args.image) as source:
            expected = source.size  # image-to-image returns exactly the source's size
    else:
        expected = (args.width, args.height)
    assert set(written.values()) == {expected}, output


def test_readme_keeps_an_image_a_text_and_a_health_recipe() -> None:
    parsed = [
        build_parser().parse_args(shlex.split(r.text.replace("\\\n", " "))[1:]) for r in RECIPES
    ]
    assert any(a.command == "generate" and a.image and a.variants > 1 for a in parsed)
    assert any(a.command == "generate" and not a.image and a.width for a in parsed)
    assert any(a.command == "health" for a in parsed)
