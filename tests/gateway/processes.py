"""Gateways in processes of their own, in front of an in-process system's services.

Replicas are separate processes in a deployment; tests that kill one (``SIGKILL``) or
count what several do together start them here.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.gateway.system import System
from tools.stack import free_port

__all__ = ["gateway_process", "until_serving"]

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def gateway_process(
    system: System, env: dict[str, str], log: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A gateway in its own process; yields its address and process; killed at the end."""
    port = free_port()
    values = env | {
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_VISION_ADDRESS": system.addresses["vision"],
        "GATEWAY_PLANNER_ADDRESS": system.addresses["planner"],
        "GATEWAY_RENDER_ADDRESS": system.addresses["render"],
        "GATEWAY_HEALTH_POLL_INTERVAL_S": "0.2",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "protos")]),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            cwd=ROOT,
            env=os.environ | values,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def until_serving(address: str, *, within_s: float = 30.0) -> None:
    """Waits until the gateway at ``address`` reports SERVING.

    Raises:
        TimeoutError: It did not within ``within_s``.
    """
    deadline = time.monotonic() + within_s
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                answer = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the gateway at {address} did not become SERVING")
            await asyncio.sleep(0.1)
