"""Model loads of concurrent requests on one GPU, with the gateway's model grouping on and off.

``python tests/bench/bench_model_grouping.py`` (``make bench``) starts the whole system
in-process against the Ollama stand-in configured as one GPU that holds one model at a
time (loading one costs ``--load-delay`` seconds, each answer ``--answer-delay``), sends
``--requests`` image-to-image requests arriving ``--stagger`` seconds apart, each with
its own image, and counts the stand-in's model loads. It prints a table and writes
``tests/bench/results/model_grouping.json``.

Without grouping, requests alternate models on the GPU (LLaVA for one request's
analysis, GPT-OSS for another's plan, …) and pay a load almost every call; with it, the
gateway runs all waiting analyses, then all waiting plans.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import platform
import statistics
import sys
import time
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

# The services' warnings (readiness, authentication off) and gRPC's connection notes
# would bury the table.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
logging.disable(logging.WARNING)

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path[:0] = [str(ROOT), str(ROOT / "protos")]

from imagegen.common.v1 import common_pb2  # noqa: E402
from imagegen.gateway.v1 import gateway_pb2  # noqa: E402
from standins.comfyui.settings import FakeComfyUISettings  # noqa: E402
from standins.ollama.faults import Fault, FaultKind  # noqa: E402
from standins.ollama.settings import FakeOllamaSettings  # noqa: E402
from tests.gateway.system import System, start_system  # noqa: E402

RESULTS = ROOT / "tests" / "bench" / "results" / "model_grouping.json"


@dataclass
class Run:
    """One burst of requests against a fresh system."""

    grouping: bool
    model_loads: int
    loads_by_model: dict[str, int]
    wall_s: float
    latency_p50_s: float
    latency_max_s: float


def _image(index: int) -> bytes:
    # A distinct image per request, so no analysis cache makes requests share work.
    buffer = io.BytesIO()
    color = (40 + 25 * index % 200, 90 + 13 * index % 150, 160 - 11 * index % 150)
    Image.new("RGB", (96, 64), color).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


async def _one(system: System, index: int, delay_s: float) -> float:
    await asyncio.sleep(delay_s)
    request = gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=_image(index)),
        instruction=f"Перекрась чашку в тёмно-зелёный цвет (вариант {index})",
        seed=index,
    )
    started = time.monotonic()
    async for _ in system.stub.Generate(request, timeout=300):
        pass
    return time.monotonic() - started


async def burst(args: argparse.Namespace, *, grouping: bool) -> Run:
    """Runs ``args.requests`` staggered requests against a fresh system."""
    ollama = FakeOllamaSettings(
        max_loaded_models=1,
        num_parallel=1,
        load_delay_s=args.load_delay,
        faults=[Fault(kind=FaultKind.DELAY, routes=("chat",), chunk_delay_s=args.answer_delay)],
    )
    async with AsyncExitStack() as stack:
        system = await start_system(
            stack,
            ollama=ollama,
            comfyui=FakeComfyUISettings(step_delay_s=0.0),
            model_grouping=grouping,
            grouping_max_wait_s=args.max_wait,
            plan_reuse_window_s=0.0,
        )
        system.ollama.fake.reset()  # readiness probes may have loaded nothing, but be sure
        system.ollama.fake.faults.extend(ollama.faults)
        started = time.monotonic()
        latencies = await asyncio.gather(
            *(_one(system, i, i * args.stagger) for i in range(args.requests))
        )
        wall = time.monotonic() - started
        fake = system.ollama.fake
        return Run(
            grouping=grouping,
            model_loads=fake.load_count,
            loads_by_model=fake.loads_by_model,
            wall_s=round(wall, 3),
            latency_p50_s=round(statistics.median(latencies), 3),
            latency_max_s=round(max(latencies), 3),
        )


def _summary(runs: list[Run], grouping: bool) -> dict[str, float]:
    mine = [r for r in runs if r.grouping is grouping]
    return {
        "model_loads_mean": statistics.mean(r.model_loads for r in mine),
        "model_loads_min": min(r.model_loads for r in mine),
        "model_loads_max": max(r.model_loads for r in mine),
        "wall_s_mean": round(statistics.mean(r.wall_s for r in mine), 3),
        "latency_p50_s_mean": round(statistics.mean(r.latency_p50_s for r in mine), 3),
    }


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    """Alternates grouping off and on for ``args.repeats`` rounds."""
    runs: list[Run] = []
    for _ in range(args.repeats):
        for grouping in (False, True):
            runs.append(await burst(args, grouping=grouping))
    return {
        "benchmark": "model_grouping",
        "setup": {
            "requests": args.requests,
            "stagger_s": args.stagger,
            "load_delay_s": args.load_delay,
            "answer_chunk_delay_s": args.answer_delay,
            "grouping_max_wait_s": args.max_wait,
            "repeats": args.repeats,
            "ollama": "stand-in, one model resident, one request at a time",
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "grouping_off": _summary(runs, False),
        "grouping_on": _summary(runs, True),
        "runs": [asdict(r) for r in runs],
    }


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark, prints a table and writes the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8, help="concurrent requests (8)")
    parser.add_argument("--stagger", type=float, default=0.2, help="seconds between arrivals")
    parser.add_argument("--load-delay", type=float, default=0.5, help="seconds per model load")
    parser.add_argument(
        "--answer-delay", type=float, default=0.0005, help="seconds per generated token"
    )
    parser.add_argument("--max-wait", type=float, default=5.0, help="grouping max wait, s")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of off/on")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)

    report = asyncio.run(main_async(args))
    off, on = report["grouping_off"], report["grouping_on"]
    assert isinstance(off, dict) and isinstance(on, dict)
    print(f"{args.requests} requests, {args.stagger:g} s apart, one model resident at a time")
    print(f"{'grouping':<10} {'loads (mean)':>12} {'min':>5} {'max':>5} {'wall s':>8} {'p50 s':>7}")
    for name, row in (("off", off), ("on", on)):
        loads = f"{row['model_loads_mean']:>12.1f} {row['model_loads_min']:>5}"
        times = f"{row['wall_s_mean']:>8.2f} {row['latency_p50_s_mean']:>7.2f}"
        print(f"{name:<10} {loads} {row['model_loads_max']:>5} {times}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
