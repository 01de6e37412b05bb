"""The ``imagegen`` job commands against the real system: submit, watch, get, list, cancel."""

from __future__ import annotations

import asyncio
import io
from contextlib import AsyncExitStack
from pathlib import Path

from clients import cli
from standins.comfyui.settings import FakeComfyUISettings
from tests.gateway.system import System, start_system


async def _imagegen(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await asyncio.to_thread(cli.main, list(argv), stdout=out)
    return code, out.getvalue()


async def test_submit_watch_get_and_list_a_job(system: System, tmp_path: Path) -> None:
    target = ("--target", system.gateway.address)
    code, text = await _imagegen(
        "submit", *target, "--instruction", "a red bicycle", "--variants", "2",
        "--seed", "40", "--width", "256", "--height", "256", "--request-id", "cli-1",
    )  # fmt: skip
    assert code == cli.EXIT_OK, text
    name = text.splitlines()[0]
    assert name.startswith("operations/") and "seed 40" in text

    code, watched = await _imagegen("watch", name, *target, "--out", str(tmp_path / "w"))
    assert code == cli.EXIT_OK, watched
    lines = watched.splitlines()
    assert lines[0].startswith("   1 ") and "completed" in lines[-1]
    assert sorted(p.name for p in (tmp_path / "w").glob("*.png")) == ["40.png", "41.png"]

    code, resumed = await _imagegen("watch", name, *target, "--after", str(len(lines) - 1))
    assert code == cli.EXIT_OK
    assert resumed.splitlines() == [lines[-1]], "--after k continues after event k"

    code, got = await _imagegen("get", name, *target, "--out", str(tmp_path / "g"))
    assert code == cli.EXIT_OK and "state SUCCEEDED" in got
    assert (tmp_path / "g" / "41.png").read_bytes() == (tmp_path / "w" / "41.png").read_bytes()

    code, listed = await _imagegen("list", *target, "--filter", "state = SUCCEEDED")
    assert code == cli.EXIT_OK and name in listed and "SUCCEEDED" in listed


async def test_cancel_command_stops_a_running_job(
    exit_stack: AsyncExitStack, jobs_dir: Path
) -> None:
    system = await start_system(
        exit_stack, comfyui=FakeComfyUISettings(step_delay_s=0.2), jobs_dir=jobs_dir
    )
    target = ("--target", system.gateway.address)
    _, text = await _imagegen("submit", *target, "--instruction", "a slow fox", "--variants", "2")
    name = text.splitlines()[0]
    code, cancelled = await _imagegen("cancel", name, *target)
    assert code == cli.EXIT_OK and "cancel requested" in cancelled
    code, watched = await _imagegen("watch", name, *target)
    assert code == cli.EXIT_FAILED
    assert "without completing" in watched
    code, got = await _imagegen("get", name, *target)
    assert code == cli.EXIT_FAILED and "error CANCELLED" in got


async def test_get_of_an_unknown_job_prints_not_found(system: System) -> None:
    code, text = await _imagegen(
        "get", "operations/" + "f" * 32, "--target", system.gateway.address
    )
    assert code == cli.EXIT_FAILED
    assert "NOT_FOUND" in text
