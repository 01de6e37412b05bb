"""``make run`` on a fresh clone: the whole stack as processes, two PNGs, exit 0; and
``--serve``, the stack kept up for grpcurl and the client until Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from PIL import Image

from gateway.service import SERVICE_NAME as GATEWAY_SERVICE
from services.common.healthcheck import check_health
from tools import stack
from tools.stack import DEFAULT_PORTS, StackError, check_ports_free, free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
REAL_BACKENDS = ("OLLAMA_URL", "COMFYUI_URL", "COMFYUI_URLS")


def test_stack_writes_two_pngs_and_exits_zero(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in REAL_BACKENDS}
    # The stand-in at 10 ms a sampling step: `make run`'s default pace (0.1 s) lets a
    # person watch the progress; this test reads none of it.
    env["FAKE_COMFYUI_STEP_DELAY_S"] = "0.01"
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


def test_serve_keeps_the_stack_up_until_interrupted(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in REAL_BACKENDS}
    driver = subprocess.Popen(
        [sys.executable, "-m", "tools.stack", "--serve", "--free-ports", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert driver.stdout is not None
    lines: list[str] = []
    try:
        for line in driver.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line or driver.poll() is not None:
                break
        text = "".join(lines)
        match = re.search(r"gateway at (127\.0\.0\.1:\d+)", text)
        assert match, text
        with grpc.insecure_channel(match.group(1)) as channel:
            # Still up after the driver said it serves: the gateway answers, all behind it too.
            assert check_health(channel, service=GATEWAY_SERVICE, timeout=5.0) == "SERVING"
        assert driver.poll() is None, text
        driver.send_signal(signal.SIGINT)
        rest, _ = driver.communicate(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    text += rest
    assert driver.returncode == 0, text
    assert "stopped 6 processes" in text
    assert not list(tmp_path.glob("*.png")), "--serve generates nothing by itself"


def test_serve_refuses_a_port_that_is_taken() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        with pytest.raises(StackError, match=rf"port {port} \(for gateway\) is in use"):
            check_ports_free({"vision": free_port(), "gateway": port})


def test_serve_uses_the_ports_the_settings_models_declare() -> None:
    assert DEFAULT_PORTS == {"vision": 50052, "planner": 50053, "render": 50054, "gateway": 50051}


def test_free_ports_lie_outside_the_range_the_kernel_hands_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A port from the ephemeral range can be taken by an outgoing connection (or another
    # port-0 server) between being chosen and the child binding it: CI once lost a stand-in so.
    ports = {free_port() for _ in range(50)}
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert all(1024 <= port < low or port > high for port in ports), sorted(ports)
    assert len(ports) > 40, "chosen at random, so concurrent stacks rarely meet"
    for port in ports:
        check_ports_free({"vision": port})  # free when chosen

    # A host whose ephemeral range starts low: the ports above it are used.
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("1024\t50000\n")
    monkeypatch.setattr(stack, "_EPHEMERAL_RANGE_FILE", ranges)
    assert all(50000 < free_port() < 65536 for _ in range(20))
