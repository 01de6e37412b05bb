"""Benchmark: what the analysis cache and the plan reuse save.

``python tests/bench/bench_cache.py`` (``make bench``) starts the whole system in-process;
the Ollama stand-in answers every chat after ``--model-delay-s`` (a model's latency). For
each of ``--rounds`` fresh images it sends three requests, as a user would:

1. **cold**: the image and an instruction — the vision and planner models are asked;
2. **same image, new instruction**: the analysis comes from the vision service's cache
   (no vision call), the planner is asked again;
3. **"more variants"**: the same image and instruction again, two variants — the gateway
   reuses the analysis and the plan (no model call at all).

It reports each kind's model calls per request and the analysis, plan and total times
(from the ``completed`` event's stage timings), with the ratios to the cold request;
prints a table and writes ``tests/bench/results/cache.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path[:0] = [str(ROOT), str(ROOT / "protos")]

from PIL import Image  # noqa: E402

from imagegen.common.v1 import common_pb2  # noqa: E402
from imagegen.gateway.v1 import gateway_pb2  # noqa: E402
from standins.comfyui.settings import FakeComfyUISettings  # noqa: E402
from standins.ollama.settings import FakeOllamaSettings  # noqa: E402
from tests.bench.reporting import percentile, print_table, write_results  # noqa: E402
from tests.gateway.system import System, start_system  # noqa: E402

KINDS = ("cold", "same image, new instruction", "more variants (reuse)")
INSTRUCTIONS = ("Перекрась стены в тёплый бежевый цвет", "Сделай свет мягким, вечерним")


def image(index: int) -> bytes:
    """A 512x384 JPEG, different for every index: the index's bits are drawn as black and
    white squares, which survive the JPEG quantisation that one-level colour steps do not."""
    picture = Image.new("RGB", (512, 384), (90, 140, 200))
    for bit in range(24):
        if index >> bit & 1:
            x, y = (bit % 8) * 16, (bit // 8) * 16
            picture.paste((0, 0, 0), (x, y, x + 16, y + 16))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


async def one(system: System, data: bytes, instruction: str, variants: int) -> dict[str, float]:
    """Sends one request; returns its stage times (ms) and the model calls it caused."""
    vision_before, planner_before = system.ollama_chats("llava"), system.ollama_chats("gpt-oss")
    request = gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=data),
        instruction=instruction,
        variants=variants,
        seed=1,
        sampler=common_pb2.SamplerSettings(steps=4),
    )
    timings: dict[str, float] = {}
    async for event in system.stub.Generate(request, timeout=120):
        if event.HasField("completed"):
            timings = {t.stage: t.millis for t in event.completed.timings}
    return {
        "analyze_ms": timings["analyze"],
        "plan_ms": timings["plan"],
        "total_ms": timings["total"],
        "vision_calls": system.ollama_chats("llava") - vision_before,
        "planner_calls": system.ollama_chats("gpt-oss") - planner_before,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Runs the rounds and summarises each kind of request."""
    measured: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
    async with AsyncExitStack() as stack:
        system = await start_system(
            stack,
            # Model calls are counted in the stand-in's request log: keep all of it.
            ollama=FakeOllamaSettings(request_log_limit=1_000_000),
            comfyui=FakeComfyUISettings(step_delay_s=0.0),
            plan_reuse_window_s=600.0,
        )
        system.ollama.fake.faults.add(kind="delay", delay_s=args.model_delay_s, routes=("chat",))
        await one(system, image(10**6), INSTRUCTIONS[0], 1)  # warm-up: models loaded
        for i in range(args.rounds):
            data = image(i)
            measured[KINDS[0]].append(await one(system, data, INSTRUCTIONS[0], 1))
            measured[KINDS[1]].append(await one(system, data, INSTRUCTIONS[1], 1))
            measured[KINDS[2]].append(await one(system, data, INSTRUCTIONS[1], 2))
    summary: list[dict[str, Any]] = []
    for kind, rows in measured.items():
        summary.append(
            {
                "kind": kind,
                "requests": len(rows),
                "vision_calls_per_request": sum(r["vision_calls"] for r in rows) / len(rows),
                "planner_calls_per_request": sum(r["planner_calls"] for r in rows) / len(rows),
                **{
                    f"{key}_p50": round(percentile([r[key] for r in rows], 50), 1)
                    for key in ("analyze_ms", "plan_ms", "total_ms")
                },
            }
        )
    cold = summary[0]
    for row in summary:
        row["analyze_plus_plan_ratio_to_cold"] = round(
            (row["analyze_ms_p50"] + row["plan_ms_p50"])
            / (cold["analyze_ms_p50"] + cold["plan_ms_p50"]),
            3,
        )
    return {"model_delay_s": args.model_delay_s, "rounds": args.rounds, "kinds": summary}


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark, prints the table, writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="fresh images")
    parser.add_argument("--model-delay-s", type=float, default=0.3, help="seconds per model answer")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    result = asyncio.run(main_async(args))
    print_table(
        f"analysis cache and plan reuse (model answers take {args.model_delay_s:g} s)",
        [
            "request",
            "vision calls",
            "planner calls",
            "analyze p50 ms",
            "plan p50 ms",
            "total p50 ms",
            "(analyze+plan)/cold",
        ],
        [
            (
                r["kind"],
                r["vision_calls_per_request"],
                r["planner_calls_per_request"],
                r["analyze_ms_p50"],
                r["plan_ms_p50"],
                r["total_ms_p50"],
                r["analyze_plus_plan_ratio_to_cold"],
            )
            for r in result["kinds"]
        ],
    )
    write_results("cache", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
