"""Benchmark: what the pipeline costs on top of the render itself.

``python tests/bench/bench_overhead.py`` (``make bench``) measures the system in two shapes:

- **processes** (mode A, as deployed): each stand-in and each service its own process,
  started by :mod:`tools.stack` (what ``make run`` uses);
- **in-process** (mode B): everything in the benchmark's own interpreter
  (``tests.gateway.system.start_system``), where the stand-ins' work competes with the
  services' for one interpreter.

The stand-ins answer without delay: the figure is the orchestration, not a model. For
sources of 0.25, 1 and 4 megapixels it makes the same image two ways, interleaved (every
round visits every size; which side goes first alternates):

- **gateway**: ``Generate`` (validation, analysis, plan, render, result), timed from the
  call to the ``completed`` event (and to its first event);
- **floor**: the graph the render service queued for that size, sent straight to the
  ComfyUI stand-in by a minimal client (``POST /upload/image``, ``POST /prompt``, wait on
  the websocket, ``GET /history``, ``GET /view``) — the least any client must do.

Overhead is gateway minus floor, per round; orchestration is the overhead less the time
the Ollama stand-in itself takes to answer the round's chats (replayed to it right after
the gateway call: the stand-in parses the image and streams its answer, which stands for
model time on a GPU host). Every round uses a new image and seed, so no
cache helps either side. In the processes mode it also reads each process's CPU time
around every gateway call, and once, before the rounds, its CPU time with no request
running (health polls, readiness probes, gRPC's threads): the CPU per request is given
as read and less that idle rate over the call. Prints medians with their spread (p25–p75,
min–max), the load average of the machine, and writes ``tests/bench/results/overhead.json``.

The targets (``tests/bench/summary.py`` judges them, p50 of the processes): overhead at
1 MP ≤ 30 ms and gateway ≤ 1.2 × floor; at 4 MP ≤ 120 ms; gateway CPU ≤ 3 ms per request.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path[:0] = [str(ROOT), str(ROOT / "protos")]

import grpc.aio  # noqa: E402
import httpx  # noqa: E402
from PIL import Image  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from imagegen.common.v1 import common_pb2  # noqa: E402
from imagegen.gateway.v1 import gateway_pb2, gateway_pb2_grpc  # noqa: E402
from standins.comfyui.settings import FakeComfyUISettings  # noqa: E402
from standins.ollama.settings import FakeOllamaSettings  # noqa: E402
from tests.bench.deployed import (  # noqa: E402
    SERVICES,
    add_mode_argument,
    chosen_modes,
    cpu_s,
    deployed_stack,
    load_average,
)
from tests.bench.reporting import percentile, print_table, write_results  # noqa: E402
from tests.gateway.system import start_system  # noqa: E402

SIZES = {"0.25MP": (576, 432), "1MP": (1152, 864), "4MP": (2304, 1728)}
"""4:3 photographs of about 0.25, 1 and 4 megapixels."""
INSTRUCTION = "Перекрась стены в тёплый бежевый цвет"
TARGETS_MS = {"1MP": 30.0, "4MP": 120.0}
"""p50 orchestration overhead each size is held to (processes mode)."""
TARGET_RATIO_1MP = 1.2
STACK_ENV = {
    "fake_comfyui": {"FAKE_COMFYUI_STEP_DELAY_S": "0", "FAKE_COMFYUI_PREVIEWS_ENABLED": "0"},
    # Both models resident, no load or unload time: the stand-in answers at once.
    "fake_ollama": {
        "FAKE_OLLAMA_MAX_LOADED_MODELS": "2",
        "FAKE_OLLAMA_LOAD_DELAY_S": "0",
        "FAKE_OLLAMA_UNLOAD_DELAY_S": "0",
    },
    "gateway": {"GATEWAY_PLAN_REUSE_WINDOW_S": "0"},
}
"""The stand-ins answer without delay (the figure is orchestration, not a model's time)."""
TARGET_GATEWAY_CPU_MS = 3.0
IDLE_SAMPLE_S = 2.0
"""Seconds the processes are watched with no request running, for their background CPU."""


def photo(width: int, height: int, index: int) -> bytes:
    """A JPEG that compresses like a photograph (gradients and mild noise), unique per index."""
    rng = random.Random(index)
    small = Image.new("RGB", (32, 24))
    small.putdata(
        [
            (
                (x * 8 + rng.randint(0, 30)) % 256,
                (y * 10 + rng.randint(0, 30)) % 256,
                (index * 37 + rng.randint(0, 60)) % 256,
            )
            for y in range(24)
            for x in range(32)
        ]
    )
    image = small.resize((width, height), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles and extremes, rounded to 0.1."""
    return {
        "p50": round(statistics.median(values), 1),
        "p25": round(percentile(values, 25), 1),
        "p75": round(percentile(values, 75), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


@dataclass
class FloorClient:
    """The least a ComfyUI client does: one HTTP pool, one websocket.

    The render service's graphs end in ``SaveImageWebsocket``, so the image arrives as a
    binary frame on the websocket; a graph saving to disk is fetched from ``/view``.
    """

    http: httpx.AsyncClient
    socket: ClientConnection
    client_id: str

    async def render(self, graph: dict[str, Any], image: bytes, seed: int) -> bytes:
        """Uploads ``image``, queues ``graph`` on it with ``seed``, waits, fetches the result."""
        name = f"{uuid.uuid4().hex}.jpg"
        upload = await self.http.post(
            "/upload/image",
            files={"image": (name, image, "image/jpeg")},
            data={"type": "input", "subfolder": "floor", "overwrite": "true"},
        )
        upload.raise_for_status()
        graph = json.loads(json.dumps(graph))
        for node in graph.values():
            if node["class_type"] == "LoadImage":
                node["inputs"]["image"] = f"floor/{name}"
            if node["class_type"] == "KSampler":
                node["inputs"]["seed"] = seed
        prompt_id = str(uuid.uuid4())
        queued = await self.http.post(
            "/prompt",
            json={"prompt": graph, "client_id": self.client_id, "prompt_id": prompt_id},
        )
        queued.raise_for_status()
        delivered = b""
        async for frame in self.socket:
            if isinstance(frame, bytes):
                delivered = frame[8:]  # event type, image type, then the image (SaveImageWebsocket)
                continue
            message = json.loads(frame)
            data = message.get("data") or {}
            if (
                message.get("type") == "executing"
                and data.get("node") is None
                and data.get("prompt_id") == prompt_id
            ):
                break
        if delivered:
            return delivered
        history = (await self.http.get(f"/history/{prompt_id}")).json()[prompt_id]
        for output in history["outputs"].values():
            for saved in output.get("images", []):
                view = await self.http.get("/view", params=saved)
                view.raise_for_status()
                return view.content
        raise RuntimeError(f"prompt {prompt_id} saved no image: {history['status']}")


@dataclass
class Timed:
    """One gateway call."""

    total_s: float
    first_event_s: float
    stages_ms: dict[str, float]
    cpu_ms: dict[str, float]


@dataclass
class Target:
    """A running system: the gateway's stub, the floor client, the processes to read."""

    stub: Any
    floor: FloorClient
    ollama: httpx.AsyncClient
    pids: dict[str, int] = field(default_factory=dict)

    def cpu(self) -> dict[str, float]:
        """CPU seconds of every process (empty in-process)."""
        return {name: cpu_s(pid) for name, pid in self.pids.items()}

    async def idle_cpu_ms_per_s(self, seconds: float = IDLE_SAMPLE_S) -> dict[str, float]:
        """CPU milliseconds per second each process spends while no request runs: its
        background work (health polls, readiness probes, the gRPC threads)."""
        before = self.cpu()
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        after = self.cpu()
        elapsed = time.perf_counter() - started
        return {name: (after[name] - before[name]) * 1000 / elapsed for name in before}


async def through_gateway(target: Target, image: bytes, seed: int, steps: int) -> Timed:
    """One ``Generate``: time to its first event and to ``completed``, CPU per process."""
    request = gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=image),
        instruction=INSTRUCTION,
        seed=seed,
        sampler=common_pb2.SamplerSettings(steps=steps),
    )
    before = target.cpu()
    started = time.perf_counter()
    first = 0.0
    async for event in target.stub.Generate(request, timeout=120):
        if not first:
            first = time.perf_counter() - started
        if event.HasField("completed"):
            elapsed = time.perf_counter() - started
            after = target.cpu()
            return Timed(
                total_s=elapsed,
                first_event_s=first,
                stages_ms={t.stage: t.millis for t in event.completed.timings},
                cpu_ms={name: (after[name] - before[name]) * 1000 for name in before},
            )
    raise RuntimeError("the stream ended without completed")


@dataclass(frozen=True)
class Recorded:
    """What the services send the backends for one size."""

    graph: dict[str, Any]
    """The graph the render service queues (the floor sends the same)."""
    chats: list[dict[str, Any]]
    """The vision and planner services' chat requests to Ollama."""


async def recorded_calls(steps: int) -> dict[str, Recorded]:
    """The graph and the model chats of one request of each size.

    Read from in-process stand-ins' logs: the render service deletes its finished
    prompts' history, so a separate ComfyUI cannot tell.
    """
    recorded: dict[str, Recorded] = {}
    async with AsyncExitStack() as stack:
        system = await start_system(stack, plan_reuse_window_s=0.0)
        target = Target(
            stub=system.stub,
            floor=await _floor_client(stack, system.comfyui.url),
            ollama=await _ollama_client(stack, system.ollama.url),
        )
        for n, (label, (w, h)) in enumerate(SIZES.items()):
            logged = len(system.ollama.fake.requests)
            await through_gateway(target, photo(w, h, 800_000 + n), seed=7, steps=steps)
            chats = [
                r.body
                for r in system.ollama.fake.requests[logged:]
                if r.path == "/api/chat" and isinstance(r.body, dict) and r.body.get("messages")
            ]
            graph = system.comfyui.fake.submitted[-1].body["prompt"]
            recorded[label] = Recorded(graph, chats)
    return recorded


async def model_time(http: httpx.AsyncClient, chats: list[dict[str, Any]]) -> float:
    """Seconds the Ollama stand-in itself takes to answer ``chats`` (sent one by one).

    "Zero-delay" stand-ins still parse the request (the image in it) and stream their
    answer; replaying the services' requests straight to the stand-in measures that part,
    which stands for model time on a GPU host, not orchestration.
    """
    started = time.perf_counter()
    for body in chats:
        async with http.stream("POST", "/api/chat", json=body) as reply:
            async for _ in reply.aiter_bytes():
                pass
    return time.perf_counter() - started


async def measure(
    target: Target, recorded: dict[str, Recorded], rounds: int, steps: int
) -> list[dict[str, Any]]:
    """Warms every size up, then ``rounds`` rounds over all sizes, gateway and floor each."""
    images = {
        label: [photo(w, h, 1000 * n + i) for i in range(rounds)]
        for n, (label, (w, h)) in enumerate(SIZES.items())
    }
    for n, (label, (w, h)) in enumerate(SIZES.items()):
        warm = photo(w, h, 900_000 + n)
        await through_gateway(target, warm, seed=7, steps=steps)
        await target.floor.render(recorded[label].graph, warm, seed=7)
        await model_time(target.ollama, recorded[label].chats)
    gateway: dict[str, list[Timed]] = {label: [] for label in SIZES}
    floor_s: dict[str, list[float]] = {label: [] for label in SIZES}
    model_s: dict[str, list[float]] = {label: [] for label in SIZES}
    idle = await target.idle_cpu_ms_per_s()
    loads = [load_average()[0]]
    for i in range(rounds):
        for label in SIZES:
            seed = 10_000 + i
            first_gateway = (i + len(label)) % 2 == 0  # neither side always goes first
            for side in (first_gateway, not first_gateway):
                if side:
                    gateway[label].append(
                        await through_gateway(target, images[label][i], seed, steps)
                    )
                    model_s[label].append(await model_time(target.ollama, recorded[label].chats))
                else:
                    started = time.perf_counter()
                    await target.floor.render(recorded[label].graph, images[label][i], seed)
                    floor_s[label].append(time.perf_counter() - started)
        loads.append(load_average()[0])
    rows = []
    for label, (w, h) in SIZES.items():
        calls = gateway[label]
        gateway_ms = [c.total_s * 1000 for c in calls]
        floor_ms = [f * 1000 for f in floor_s[label]]
        overhead_ms = [g - f for g, f in zip(gateway_ms, floor_ms, strict=True)]
        models_ms = [m * 1000 for m in model_s[label]]
        net_ms = [o - m for o, m in zip(overhead_ms, models_ms, strict=True)]
        stage_names = list(calls[0].stages_ms)
        rows.append(
            {
                "size": label,
                "source": f"{w}x{h}",
                "source_jpeg_kb": round(sum(map(len, images[label])) / rounds / 1024, 1),
                "rounds": rounds,
                "gateway_ms": spread(gateway_ms),
                "floor_ms": spread(floor_ms),
                "overhead_ms": spread(overhead_ms),
                "stand_in_model_ms": spread(models_ms),
                "orchestration_ms": spread(net_ms),
                "ratio_gateway_over_floor_p50": round(
                    statistics.median(gateway_ms) / statistics.median(floor_ms), 2
                ),
                "first_event_ms": spread([c.first_event_s * 1000 for c in calls]),
                "gateway_stage_ms_p50": {
                    s: round(statistics.median(c.stages_ms.get(s, 0.0) for c in calls), 1)
                    for s in stage_names
                },
                "cpu_ms_per_request_p50": {
                    name: round(statistics.median(c.cpu_ms[name] for c in calls), 2)
                    for name in calls[0].cpu_ms
                },
                # The same less each process's idle rate over the call's duration: what
                # the request itself cost, without the background work it overlapped.
                "idle_cpu_ms_per_s": {name: round(rate, 2) for name, rate in idle.items()},
                "cpu_ms_per_request_less_idle_p50": {
                    name: round(
                        statistics.median(c.cpu_ms[name] - rate * c.total_s for c in calls), 2
                    )
                    for name, rate in idle.items()
                },
                "load_1min": {"min": min(loads), "max": max(loads)},
            }
        )
    return rows


async def _floor_client(stack: AsyncExitStack, comfyui_url: str) -> FloorClient:
    http = await stack.enter_async_context(
        httpx.AsyncClient(base_url=comfyui_url, timeout=60, trust_env=False)
    )
    client_id = "floor-bench"
    ws_url = comfyui_url.replace("http://", "ws://", 1) + "/ws"
    socket = await stack.enter_async_context(
        connect(f"{ws_url}?clientId={client_id}", max_size=2**26)
    )
    return FloorClient(http, socket, client_id)


async def _ollama_client(stack: AsyncExitStack, url: str) -> httpx.AsyncClient:
    return await stack.enter_async_context(
        httpx.AsyncClient(base_url=url, timeout=60, trust_env=False)
    )


async def run_processes(
    args: argparse.Namespace, recorded: dict[str, Recorded]
) -> list[dict[str, Any]]:
    """Mode A: each stand-in and service its own process."""
    with deployed_stack(STACK_ENV) as deployed:
        async with AsyncExitStack() as stack:
            channel = await stack.enter_async_context(
                grpc.aio.insecure_channel(deployed.addresses["gateway"])
            )
            target = Target(
                stub=gateway_pb2_grpc.GatewayServiceStub(channel),  # type: ignore[no-untyped-call]
                floor=await _floor_client(stack, deployed.comfyui_url),
                ollama=await _ollama_client(stack, deployed.ollama_url),
                pids={
                    name: pid
                    for name, pid in deployed.pids.items()
                    if name in SERVICES or name == "fake_ollama"
                },
            )
            return await measure(target, recorded, args.rounds, args.steps)


async def run_in_process(
    args: argparse.Namespace, recorded: dict[str, Recorded]
) -> list[dict[str, Any]]:
    """Mode B: everything in this interpreter."""
    async with AsyncExitStack() as stack:
        system = await start_system(
            stack,
            ollama=FakeOllamaSettings(max_loaded_models=2, unload_delay_s=0.0),
            comfyui=FakeComfyUISettings(step_delay_s=0.0, previews_enabled=False),
            plan_reuse_window_s=0.0,
        )
        target = Target(
            stub=system.stub,
            floor=await _floor_client(stack, system.comfyui.url),
            ollama=await _ollama_client(stack, system.ollama.url),
        )
        return await measure(target, recorded, args.rounds, args.steps)


def _cell(s: dict[str, float]) -> str:
    return f"{s['p50']} [{s['p25']}–{s['p75']}] ({s['min']}–{s['max']})"


def report(mode: str, rows: list[dict[str, Any]], steps: int) -> None:
    """Prints one mode's tables."""
    print_table(
        f"{mode}: gateway vs straight to ComfyUI, ms, median [p25–p75] (min–max), {steps} steps",
        [
            "size",
            "gateway",
            "floor",
            "overhead",
            "stand-in models",
            "orchestration",
            "ratio",
            "first event",
            "load",
        ],
        [
            (
                r["size"],
                _cell(r["gateway_ms"]),
                _cell(r["floor_ms"]),
                _cell(r["overhead_ms"]),
                r["stand_in_model_ms"]["p50"],
                _cell(r["orchestration_ms"]),
                r["ratio_gateway_over_floor_p50"],
                r["first_event_ms"]["p50"],
                f"{r['load_1min']['min']:.2f}–{r['load_1min']['max']:.2f}",
            )
            for r in rows
        ],
    )
    stage_names = list(rows[0]["gateway_stage_ms_p50"])
    print_table(
        f"{mode}: gateway stage times (p50 ms, from the completed event)",
        ["size", *stage_names],
        [(r["size"], *r["gateway_stage_ms_p50"].values()) for r in rows],
    )
    if rows[0]["cpu_ms_per_request_p50"]:
        names = list(rows[0]["cpu_ms_per_request_p50"])
        print_table(
            f"{mode}: CPU ms per gateway request (p50)",
            ["size", *names],
            [(r["size"], *r["cpu_ms_per_request_p50"].values()) for r in rows],
        )
        print_table(
            f"{mode}: the same less each process's idle CPU over the call (p50); idle ms/s "
            + ", ".join(f"{n} {v:g}" for n, v in rows[0]["idle_cpu_ms_per_s"].items()),
            ["size", *names],
            [(r["size"], *r["cpu_ms_per_request_less_idle_p50"].values()) for r in rows],
        )


MODES: dict[str, Callable[[argparse.Namespace, dict[str, Recorded]], Any]] = {
    "processes": run_processes,
    "in-process": run_in_process,
}


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark, prints the tables, writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="rounds (each: every size)")
    parser.add_argument("--steps", type=int, default=20, help="sampling steps")
    add_mode_argument(parser, list(MODES))
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    modes = chosen_modes(args, list(MODES))
    result: dict[str, Any] = {"steps": args.steps, "rounds": args.rounds, "modes": {}}
    recorded = asyncio.run(recorded_calls(args.steps))
    for mode in modes:
        rows = asyncio.run(MODES[mode](args, recorded))
        result["modes"][mode] = {"sizes": rows}
        report(mode, rows, args.steps)
    write_results("overhead", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
