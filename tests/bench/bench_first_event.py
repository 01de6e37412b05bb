"""Benchmark: how soon a ``Generate`` caller hears something.

``python tests/bench/bench_first_event.py`` (``make bench``) starts the whole system
as deployed (each stand-in and service its own process, through :mod:`tools.stack`) and
in-process (``--mode``; both by default); the Ollama stand-in answers every chat after
``--model-delay-s`` (a model's latency). It sends ``--calls`` image-to-image requests one
after another, each with a fresh image (no reuse), and measures from the call to:

- the **first event** (``accepted``, sent before any model is asked; target p50 ≤ 20 ms);
- the **analysis** event (the first event before ``accepted`` existed).

Prints median, spread (p10–p90) and maximum with the machine's load, and writes
``tests/bench/results/first_event.json``; the target holds for the processes.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import statistics
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path[:0] = [str(ROOT), str(ROOT / "protos")]

import grpc.aio  # noqa: E402
from PIL import Image  # noqa: E402

from imagegen.common.v1 import common_pb2  # noqa: E402
from imagegen.gateway.v1 import gateway_pb2, gateway_pb2_grpc  # noqa: E402
from standins.comfyui.settings import FakeComfyUISettings  # noqa: E402
from tests.bench.deployed import add_mode_argument, chosen_modes, deployed_stack, load_average  # noqa: E402
from tests.bench.reporting import percentile, print_table, write_results  # noqa: E402
from tests.gateway.system import start_system  # noqa: E402

TARGET_P50_MS = 20.0
"""The first event's median latency this benchmark holds the gateway to."""


def image(index: int) -> bytes:
    """A small JPEG, different for every index (so the analysis is never reused)."""
    picture = Image.new("RGB", (256, 192), (index % 256, (index * 7) % 256, 120))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


async def one(stub: Any, index: int) -> tuple[float, float, str]:
    """One request; returns ms to the first event, ms to the analysis, the first event's kind."""
    request = gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=image(index)),
        instruction="make the sky orange",
        seed=index,
        sampler=common_pb2.SamplerSettings(steps=2),
    )
    started = time.perf_counter()
    first_ms = analysis_ms = float("nan")
    first_kind = ""
    async for event in stub.Generate(request, timeout=120):
        now_ms = (time.perf_counter() - started) * 1000.0
        if not first_kind:
            first_kind, first_ms = str(event.WhichOneof("event")), now_ms
        if event.HasField("analysis"):
            analysis_ms = now_ms
    return first_ms, analysis_ms, first_kind


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 2),
        "p10": round(percentile(values, 10), 2),
        "p90": round(percentile(values, 90), 2),
        "max": round(max(values), 2),
    }


async def calls(stub: Any, count: int) -> dict[str, Any]:
    """A warm-up, then ``count`` calls one after another; both latencies summarised."""
    firsts: list[float] = []
    analyses: list[float] = []
    kinds: set[str] = set()
    await one(stub, 10**6)  # warm-up: channels open, capabilities cached
    loads = [load_average()[0]]
    for i in range(count):
        first_ms, analysis_ms, kind = await one(stub, i)
        firsts.append(first_ms)
        analyses.append(analysis_ms)
        kinds.add(kind)
    loads.append(load_average()[0])
    return {
        "first_event_kinds": sorted(kinds),
        "first_event_ms": _summary(firsts),
        "analysis_event_ms": _summary(analyses),
        "load_1min": {"min": min(loads), "max": max(loads)},
    }


async def in_process(args: argparse.Namespace) -> dict[str, Any]:
    """Everything in this interpreter."""
    async with AsyncExitStack() as stack:
        system = await start_system(stack, comfyui=FakeComfyUISettings(step_delay_s=0.0))
        system.ollama.fake.faults.add(kind="delay", delay_s=args.model_delay_s, routes=("chat",))
        return await calls(system.stub, args.calls)


async def processes(args: argparse.Namespace) -> dict[str, Any]:
    """Each stand-in and service its own process."""
    delay = [{"kind": "delay", "delay_s": args.model_delay_s, "routes": ["chat"]}]
    env = {
        "fake_comfyui": {"FAKE_COMFYUI_STEP_DELAY_S": "0"},
        "fake_ollama": {"FAKE_OLLAMA_FAULTS": json.dumps(delay)},
    }
    with deployed_stack(env) as deployed:
        async with grpc.aio.insecure_channel(deployed.addresses["gateway"]) as channel:
            stub = gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[no-untyped-call]
            return await calls(stub, args.calls)


MODES = {"processes": processes, "in-process": in_process}


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark, prints the table, writes the JSON; exit 1 if the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="requests to send")
    parser.add_argument("--model-delay-s", type=float, default=0.3, help="seconds per model answer")
    add_mode_argument(parser, list(MODES))
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    modes = chosen_modes(args, list(MODES))
    result: dict[str, Any] = {
        "calls": args.calls,
        "model_delay_s": args.model_delay_s,
        "target_first_event_p50_ms": TARGET_P50_MS,
        "modes": {mode: asyncio.run(MODES[mode](args)) for mode in modes},
    }
    rows = []
    for mode, measured in result["modes"].items():
        kinds = ", ".join(measured["first_event_kinds"])
        load = measured["load_1min"]
        for name, s in ((f"first ({kinds})", measured["first_event_ms"]),
                        ("analysis", measured["analysis_event_ms"])):  # fmt: skip
            rows.append(
                (mode, name, s["p50"], s["p10"], s["p90"], s["max"],
                 f"{load['min']:.2f}–{load['max']:.2f}")
            )  # fmt: skip
    print_table(
        f"time to the first event over {args.calls} calls "
        f"(model answers take {args.model_delay_s:g} s)",
        ["mode", "event", "p50 ms", "p10 ms", "p90 ms", "max ms", "load"],
        rows,
    )
    judged = result["modes"].get("processes") or next(iter(result["modes"].values()))
    met = judged["first_event_ms"]["p50"] <= TARGET_P50_MS
    result["first_event_p50_ms"] = judged["first_event_ms"]["p50"]
    write_results("first_event", result)
    print(f"first-event p50 target ≤ {TARGET_P50_MS:g} ms: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
