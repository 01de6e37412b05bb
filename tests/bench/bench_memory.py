"""Benchmark: each service's memory and CPU, measured on its own process.

``python tests/bench/bench_memory.py`` (``make bench``) starts the two stand-ins and the
four services as separate processes (as ``make run`` does, through
:class:`tools.stack.Stack`), then:

1. sends 16, then 64 concurrent callers' ``Generate`` requests (a fresh small image each,
   so every request runs analysis, plan and render), reading each process's CPU time
   (``/proc/<pid>/stat``) before and after, and its peak resident memory (``VmHWM``);
2. sends 1,000 requests one after another and samples every service's resident memory
   (``VmRSS``) every 100: after the caches have filled, it must stay flat.

Prints the tables and writes ``tests/bench/results/memory.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path[:0] = [str(ROOT), str(ROOT / "protos")]

import grpc  # noqa: E402
import grpc.aio  # noqa: E402
from PIL import Image  # noqa: E402

from gateway.downstream import SERVICE_NAMES  # noqa: E402
from gateway.service import SERVICE_NAME as GATEWAY_SERVICE  # noqa: E402
from imagegen.common.v1 import common_pb2  # noqa: E402
from imagegen.gateway.v1 import gateway_pb2, gateway_pb2_grpc  # noqa: E402
from services.common.healthcheck import check_health  # noqa: E402
from tests.bench.reporting import percentile, print_table, write_results  # noqa: E402
from tools.stack import Stack, free_port  # noqa: E402

SERVICES = ("gateway", "vision", "planner", "render")
INSTRUCTION = "Перекрась стены в тёплый бежевый цвет"
_TICKS = os.sysconf("SC_CLK_TCK")


def image(index: int) -> bytes:
    """A 256x192 JPEG, different for every index: the index's bits are drawn as black and
    white squares, which survive the JPEG quantisation that one-level colour steps do not."""
    picture = Image.new("RGB", (256, 192), (90, 140, 200))
    for bit in range(24):
        if index >> bit & 1:
            x, y = (bit % 8) * 16, (bit // 8) * 16
            picture.paste((0, 0, 0), (x, y, x + 16, y + 16))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def memory_mb(pid: int, key: str) -> float:
    """A ``/proc/<pid>/status`` memory line (``VmRSS``, ``VmHWM``) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def start_processes(stack: Stack, steps_delay_s: float) -> dict[str, str]:
    """Starts stand-ins and services; returns service name → address."""
    ollama, comfyui = free_port(), free_port()
    stack.start("fake_ollama", "standins.ollama", args=["--port", str(ollama)], env={})
    stack.start(
        "fake_comfyui",
        "standins.comfyui",
        args=["--port", str(comfyui), "--log-level", "WARNING"],
        env={"FAKE_COMFYUI_STEP_DELAY_S": str(steps_delay_s)},
    )
    ports = {name: free_port() for name in SERVICES}
    quiet = {"IMAGEGEN_LOG_FORMAT": "text", "GRPC_VERBOSITY": "ERROR"}
    backends = {
        "vision": {"VISION_OLLAMA_URL": f"http://127.0.0.1:{ollama}"},
        "planner": {"PLANNER_OLLAMA_URL": f"http://127.0.0.1:{ollama}"},
        "render": {"RENDER_COMFYUI_URLS": f"http://127.0.0.1:{comfyui}"},
    }
    for name in ("vision", "planner", "render"):
        prefix = name.upper()
        env = quiet | backends[name] | {f"{prefix}_PORT": str(ports[name])}
        stack.start(name, f"services.{name}", env=env | {f"{prefix}_LOG_LEVEL": "WARNING"})
    stack.start(
        "gateway",
        "gateway",
        env=quiet
        | {
            "GATEWAY_PORT": str(ports["gateway"]),
            "GATEWAY_VISION_ADDRESS": f"127.0.0.1:{ports['vision']}",
            "GATEWAY_PLANNER_ADDRESS": f"127.0.0.1:{ports['planner']}",
            "GATEWAY_RENDER_ADDRESS": f"127.0.0.1:{ports['render']}",
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_HEALTH_POLL_INTERVAL_S": "0.5",
        },
    )
    return {name: f"127.0.0.1:{port}" for name, port in ports.items()}


def wait_serving(stack: Stack, addresses: dict[str, str], timeout_s: float = 60.0) -> None:
    """Polls every service's health until all say SERVING (bounded)."""
    names = {name: SERVICE_NAMES.get(name, GATEWAY_SERVICE) for name in addresses}
    give_up = time.monotonic() + timeout_s
    while True:
        stack.check_alive()
        statuses = {}
        for name, address in addresses.items():
            with grpc.insecure_channel(address) as channel:
                statuses[name] = check_health(channel, service=names[name], timeout=1.0)
        if all(status == "SERVING" for status in statuses.values()):
            return
        if time.monotonic() > give_up:
            raise RuntimeError(f"not SERVING after {timeout_s:.0f} s: {statuses}")
        time.sleep(0.2)


async def generate(stub: Any, index: int, steps: int) -> float:
    """One full-pipeline request; seconds until ``completed``."""
    request = gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=image(index)),
        instruction=INSTRUCTION,
        seed=index,
        sampler=common_pb2.SamplerSettings(steps=steps),
    )
    started = time.perf_counter()
    async for event in stub.Generate(request, timeout=300):
        if event.HasField("completed"):
            return time.perf_counter() - started
    raise RuntimeError("the stream ended without completed")


async def concurrent_phase(
    stub: Any, pids: dict[str, int], callers: int, per_caller: int, first: int, steps: int
) -> dict[str, Any]:
    """``callers`` closed-loop callers, ``per_caller`` requests each."""
    before = {name: cpu_s(pid) for name, pid in pids.items()}
    latencies: list[float] = []

    async def caller(number: int) -> None:
        for i in range(per_caller):
            latencies.append(await generate(stub, first + number * per_caller + i, steps))

    started = time.perf_counter()
    await asyncio.gather(*(caller(n) for n in range(callers)))
    wall = time.perf_counter() - started
    requests = callers * per_caller
    return {
        "concurrency": callers,
        "requests": requests,
        "requests_per_s": round(requests / wall, 2),
        "latency_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "latency_p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "cpu_ms_per_request": {
            name: round((cpu_s(pid) - before[name]) * 1000 / requests, 2)
            for name, pid in pids.items()
        },
        "peak_rss_mb": {name: round(memory_mb(pid, "VmHWM"), 1) for name, pid in pids.items()},
    }


async def sequential_phase(
    stub: Any, pids: dict[str, int], count: int, every: int, first: int, steps: int
) -> dict[str, Any]:
    """``count`` requests one after another, sampling resident memory every ``every``."""
    samples: dict[str, list[float]] = {name: [] for name in SERVICES}
    for i in range(count):
        await generate(stub, first + i, steps)
        if (i + 1) % every == 0:
            for name in SERVICES:
                samples[name].append(round(memory_mb(pids[name], "VmRSS"), 1))
    half = len(samples["gateway"]) // 2
    return {
        "requests": count,
        "sample_every": every,
        "rss_mb": samples,
        # From the middle on the caches are full; what still grows is a leak.
        "growth_second_half_mb": {
            name: round(values[-1] - values[half - 1], 1) for name, values in samples.items()
        },
    }


async def load(
    addresses: dict[str, str], pids: dict[str, int], args: argparse.Namespace
) -> dict[str, Any]:
    """Runs the three phases against the started processes."""
    async with grpc.aio.insecure_channel(addresses["gateway"]) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[no-untyped-call]
        await asyncio.gather(*(generate(stub, 900_000 + i, args.steps) for i in range(8)))
        phases = [
            await concurrent_phase(stub, pids, 16, args.per_caller_16, 0, args.steps),
            await concurrent_phase(stub, pids, 64, args.per_caller_64, 100_000, args.steps),
        ]
        sequential = await sequential_phase(
            stub, pids, args.sequential, args.sequential // 10, 200_000, args.steps
        )
    return {"concurrent": phases, "sequential": sequential}


def main(argv: list[str] | None = None) -> int:
    """Starts the processes, runs the load, prints the tables, writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="sampling steps per request")
    parser.add_argument(
        "--step-delay-s", type=float, default=0.0, help="ComfyUI stand-in step time"
    )
    parser.add_argument("--per-caller-16", type=int, default=4, help="requests per caller at 16")
    parser.add_argument("--per-caller-64", type=int, default=2, help="requests per caller at 64")
    parser.add_argument("--sequential", type=int, default=1000, help="sequential requests")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-") as logs:
        stack = Stack(log_dir=Path(logs), stream=open(os.devnull, "w"))  # noqa: SIM115
        try:
            addresses = start_processes(stack, args.step_delay_s)
            wait_serving(stack, addresses)
            pids = {
                child.name: child.process.pid for child in stack.children if child.name in SERVICES
            }
            result = asyncio.run(load(addresses, pids, args))
        finally:
            stack.stop()
    result = {"steps": args.steps, "processes": "one per service, stand-ins apart"} | result
    print_table(
        "throughput (services as processes, zero-delay stand-ins)",
        [
            "callers",
            "requests",
            "req/s",
            "p50 ms",
            "p95 ms",
            *(f"{s} cpu ms/req" for s in SERVICES),
        ],
        [
            (
                p["concurrency"],
                p["requests"],
                p["requests_per_s"],
                p["latency_p50_ms"],
                p["latency_p95_ms"],
                *(p["cpu_ms_per_request"][s] for s in SERVICES),
            )
            for p in result["concurrent"]
        ],
    )
    sequential = result["sequential"]
    print_table(
        f"memory: peak while concurrent, then {sequential['requests']} sequential requests",
        [
            "service",
            "peak RSS MB",
            "RSS first MB",
            "RSS middle MB",
            "RSS last MB",
            "2nd-half growth MB",
        ],
        [
            (
                name,
                result["concurrent"][-1]["peak_rss_mb"][name],
                sequential["rss_mb"][name][0],
                sequential["rss_mb"][name][len(sequential["rss_mb"][name]) // 2 - 1],
                sequential["rss_mb"][name][-1],
                sequential["growth_second_half_mb"][name],
            )
            for name in SERVICES
        ],
    )
    write_results("memory", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
