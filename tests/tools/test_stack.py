"""``make run`` on a fresh clone: the whole stack as processes, two PNGs, exit 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
REAL_BACKENDS = ("OLLAMA_URL", "COMFYUI_URL", "COMFYUI_URLS")


def test_stack_writes_two_pngs_and_exits_zero(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in REAL_BACKENDS}
    finished = subprocess.run(
        [sys.executable, "-m", "tools.stack", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=55,
        check=False,
    )
    text = finished.stdout.decode(errors="replace")
    assert finished.returncode == 0, text
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) == 2, text
    for png in pngs:
        with Image.open(png) as image:
            assert image.size == (600, 400)
    assert "STAND-INS" in text
    assert "stopped 6 processes" in text
