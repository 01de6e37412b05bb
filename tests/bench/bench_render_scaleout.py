"""Benchmark: does adding a ComfyUI backend add render throughput?

Renders the same 4-variant request through the render service in front of one, then two
ComfyUI stand-ins (each runs one prompt at a time, with a fixed delay per sampling step,
like a GPU). With least-loaded placement two backends should take about half the time.

Run by ``make bench`` (not a pytest test)::

    .venv/bin/python tests/bench/bench_render_scaleout.py [--runs 3] [--steps 20]

Prints a table and writes ``tests/bench/results/render_scaleout.json``.
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
import time
from collections import Counter
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from imagegen.common.v1 import common_pb2
from imagegen.render.v1 import render_pb2, render_pb2_grpc
from services.common.channels import create_channel
from services.render.app import create_server
from services.render.settings import RenderSettings
from standins.comfyui.server import run_fake_comfyui
from standins.comfyui.settings import FakeComfyUISettings

RESULTS = Path(__file__).parent / "results" / "render_scaleout.json"
VARIANTS = 4


def _source() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 192), (90, 140, 200)).save(out, format="PNG")
    return out.getvalue()


async def _measure(backends: int, runs: int, steps: int, step_delay_s: float) -> dict[str, Any]:
    """Median wall time of a 4-variant render on ``backends`` stand-ins."""
    source = _source()
    async with AsyncExitStack() as stack:
        comfys = [
            await stack.enter_async_context(
                run_fake_comfyui(FakeComfyUISettings(step_delay_s=step_delay_s), port=0)
            )
            for _ in range(backends)
        ]
        settings = RenderSettings(
            comfyui_urls=",".join(c.url for c in comfys),
            port=0,
            grace_period_s=0.0,
            readiness_interval_s=3600.0,
        )
        host = await create_server(settings)
        port = await host.start()
        stack.push_async_callback(host.stop, 0)
        channel = create_channel(f"127.0.0.1:{port}", max_message_bytes=settings.max_message_bytes)
        stack.push_async_callback(channel.close)
        stub = render_pb2_grpc.RenderServiceStub(channel)  # type: ignore[no-untyped-call]

        async def render(seed: int) -> tuple[float, Counter[str]]:
            request = render_pb2.RenderRequest(
                source_image=common_pb2.Image(data=source),
                positive_prompt="a quiet harbour at dawn, watercolour",
                settings=common_pb2.SamplerSettings(steps=steps),
                seed=seed,
                variants=VARIANTS,
            )
            started = time.perf_counter()
            placed: Counter[str] = Counter()
            async for event in stub.Render(request, timeout=120):
                if event.WhichOneof("event") == "result":
                    placed[event.result.backend] += 1
            return time.perf_counter() - started, placed

        await render(seed=10_000)  # warm-up: sockets open, object_info cached
        times: list[float] = []
        placements: list[dict[str, int]] = []
        for run in range(runs):
            # A new seed each run: ComfyUI serves an identical graph from its cache.
            elapsed, placed = await render(seed=run * VARIANTS)
            times.append(elapsed)
            placements.append(dict(placed))
    return {
        "backends": backends,
        "runs_s": [round(t, 3) for t in times],
        "median_s": round(statistics.median(times), 3),
        "variants_per_backend": placements,
    }


def main() -> None:
    """Measures one and two backends, prints the ratio and writes the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measured runs per configuration")
    parser.add_argument("--steps", type=int, default=20, help="sampling steps per variant")
    parser.add_argument(
        "--step-delay-s", type=float, default=0.025, help="stand-in time per sampling step"
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    one = asyncio.run(_measure(1, args.runs, args.steps, args.step_delay_s))
    two = asyncio.run(_measure(2, args.runs, args.steps, args.step_delay_s))
    ratio = two["median_s"] / one["median_s"]
    result = {
        "benchmark": "render_scaleout",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "variants": VARIANTS,
        "steps": args.steps,
        "step_delay_s": args.step_delay_s,
        "one_backend": one,
        "two_backends": two,
        "ratio_two_over_one": round(ratio, 3),
        "ideal_ratio": 0.5,
    }
    print(f"{'backends':>8}  {'median s':>9}  runs")
    for row in (one, two):
        print(f"{row['backends']:>8}  {row['median_s']:>9.3f}  {row['runs_s']}")
    print(f"two / one = {ratio:.2f} (ideal 0.50)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {os.path.relpath(RESULTS)}")


if __name__ == "__main__":
    main()
