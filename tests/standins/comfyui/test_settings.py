"""Settings from FAKE_COMFYUI_* variables and the ``python -m standins.comfyui`` entry."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from standins.comfyui import FakeComfyUISettings
from standins.comfyui.__main__ import parse_args

REPO = Path(__file__).resolve().parents[3]


def test_defaults_have_the_flux_checkpoint_two_loras_and_two_controlnets() -> None:
    settings = FakeComfyUISettings()

    assert settings.checkpoints == ["flux1-dev-fp8.safetensors"]
    assert len(settings.loras) == 2
    assert len(settings.controlnets) == 2


def test_defaults_behave_like_a_gpu_server_with_previews() -> None:
    settings = FakeComfyUISettings()

    assert settings.step_delay_s >= 0.1  # a sampling step takes a noticeable while
    assert settings.previews_enabled is True


def test_model_lists_accept_commas_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_COMFYUI_LORAS", "a.safetensors, b.safetensors")
    monkeypatch.setenv("FAKE_COMFYUI_CHECKPOINTS", '["x.safetensors"]')
    monkeypatch.setenv("FAKE_COMFYUI_CONTROLNETS", "")

    settings = FakeComfyUISettings()

    assert settings.loras == ["a.safetensors", "b.safetensors"]
    assert settings.checkpoints == ["x.safetensors"]
    assert settings.controlnets == []


def test_faults_are_read_from_nested_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_COMFYUI_FAULTS__HTTP_DELAY_S", "1.5")
    monkeypatch.setenv("FAKE_COMFYUI_FAULTS__OOM_NODE", "KSampler")
    monkeypatch.setenv("FAKE_COMFYUI_STEP_DELAY_S", "0")

    settings = FakeComfyUISettings()

    assert settings.faults.http_delay_s == 1.5
    assert settings.faults.oom_node == "KSampler"
    assert settings.step_delay_s == 0


def test_the_entry_point_defaults_to_loopback_port_8188() -> None:
    args = parse_args([])

    assert (args.host, args.port) == ("127.0.0.1", 8188)


@pytest.mark.e2e
async def test_the_entry_point_serves_and_says_it_is_a_stand_in(tmp_path: Path) -> None:
    env = {**os.environ, "FAKE_COMFYUI_DATA_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "standins.comfyui",
        "--port",
        "0",
        cwd=REPO,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(20):
            line = (await proc.stderr.readline()).decode()
        match = re.search(r"stand-in .* listening on (http://\S+),", line)
        assert match, line
        async with aiohttp.ClientSession() as session, session.get(match[1] + "/prompt") as resp:
            assert await resp.json() == {"exec_info": {"queue_remaining": 0}}
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            await proc.wait()
    assert proc.returncode == 0
    assert (tmp_path / "input" / "example.png").exists()
