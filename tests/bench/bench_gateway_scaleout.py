"""Benchmark: does each ComfyUI backend add its share of throughput, seen from the caller?

``python tests/bench/bench_gateway_scaleout.py`` (``make bench``) renders one request of
``--variants`` variants through the whole pipeline (gateway → render service) in front of
1, 2 and 4 ComfyUI stand-ins, each running one prompt at a time with a fixed delay per
sampling step (like a GPU). With least-loaded placement, N backends should take about
1/N of the time: the target is a speed-up of at least 0.9 × N. (``bench_render_scaleout``
measures the render service alone, one and two backends.)

An approved plan is sent, so the models' time does not dilute the ratio. Prints a table
and writes ``tests/bench/results/gateway_scaleout.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import statistics
import sys
import time
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path[:0] = [str(ROOT), str(ROOT / "protos")]

from PIL import Image  # noqa: E402

from imagegen.common.v1 import common_pb2  # noqa: E402
from imagegen.gateway.v1 import gateway_pb2  # noqa: E402
from services.render.app import create_server as create_render  # noqa: E402
from services.render.settings import RenderSettings  # noqa: E402
from standins.comfyui.server import run_fake_comfyui  # noqa: E402
from standins.comfyui.settings import FakeComfyUISettings  # noqa: E402
from tests.bench.reporting import print_table, write_results  # noqa: E402
from tests.gateway.system import start_gateway_in, start_system, stop_host  # noqa: E402

BACKENDS = (1, 2, 4)


def source() -> bytes:
    """A small PNG: the render size stays small, so the stand-ins' own work is negligible."""
    buffer = io.BytesIO()
    Image.new("RGB", (256, 192), (90, 140, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def request(seed: int, variants: int, steps: int) -> gateway_pb2.GenerateRequest:
    """An approved plan: no model is asked, every second goes to rendering."""
    settings = common_pb2.SamplerSettings(
        denoise=0.85, steps=steps, cfg=1.0, guidance=3.5, sampler_name="euler", scheduler="simple"
    )
    return gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=source()),
        instruction="recolour the walls warm beige",
        seed=seed,
        variants=variants,
        description="a room with white walls",
        plan=common_pb2.PromptPlan(
            positive_prompt="a room with warm beige walls", settings=settings
        ),
    )


async def measure(backends: int, args: argparse.Namespace) -> dict[str, Any]:
    """Median wall time of ``args.runs`` requests in front of ``backends`` stand-ins."""
    async with AsyncExitStack() as stack:
        system = await start_system(
            stack, comfyui=FakeComfyUISettings(step_delay_s=args.step_delay_s)
        )
        comfyuis = [system.comfyui] + [
            await stack.enter_async_context(
                run_fake_comfyui(FakeComfyUISettings(step_delay_s=args.step_delay_s), port=0)
            )
            for _ in range(backends - 1)
        ]
        render = await create_render(
            RenderSettings(
                port=0,
                comfyui_urls=",".join(c.url for c in comfyuis),
                readiness_interval_s=0.5,
                queue_poll_interval_s=0.1,
            )
        )
        port = await render.start()
        stack.push_async_callback(stop_host, render)
        gateway = await start_gateway_in(stack, system, render_address=f"127.0.0.1:{port}")

        async def run(seed: int, variants: int) -> tuple[float, Counter[str]]:
            started = time.perf_counter()
            placed: Counter[str] = Counter()
            async for event in gateway.stub.Generate(
                request(seed, variants, args.steps), timeout=300
            ):
                if event.HasField("result"):
                    placed[event.result.backend] += 1
            return time.perf_counter() - started, placed

        await run(10**6, backends)  # warm-up: sockets open, object_info read on every backend
        times: list[float] = []
        spread: list[list[int]] = []
        for i in range(args.runs):
            # A new seed each run: ComfyUI would serve an identical graph from its cache.
            elapsed, placed = await run(i * args.variants, args.variants)
            times.append(elapsed)
            spread.append(sorted(placed.values(), reverse=True))
    return {
        "backends": backends,
        "runs_s": [round(t, 3) for t in times],
        "median_s": round(statistics.median(times), 3),
        "variants_per_backend": spread,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Measures every backend count; speed-ups are relative to one backend."""
    rows = [await measure(n, args) for n in BACKENDS]
    one = rows[0]["median_s"]
    for row in rows:
        row["speedup"] = round(one / row["median_s"], 2)
        row["efficiency"] = round(row["speedup"] / row["backends"], 2)
        row["meets_0_9_n"] = row["speedup"] >= 0.9 * row["backends"]
    return {
        "variants": args.variants,
        "steps": args.steps,
        "step_delay_s": args.step_delay_s,
        "ideal_render_s_one_backend": round(args.variants * args.steps * args.step_delay_s, 2),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark, prints the table, writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=8, help="variants per request")
    parser.add_argument("--steps", type=int, default=20, help="sampling steps per variant")
    parser.add_argument("--step-delay-s", type=float, default=0.05, help="seconds per step")
    parser.add_argument("--runs", type=int, default=2, help="measured requests per count")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    result = asyncio.run(main_async(args))
    print_table(
        f"scale-out through the gateway: {args.variants} variants x {args.steps} steps x "
        f"{args.step_delay_s:g} s",
        ["backends", "median s", "speed-up", "x N", "target 0.9N", "variants per backend"],
        [
            (
                r["backends"],
                r["median_s"],
                r["speedup"],
                r["efficiency"],
                "met" if r["meets_0_9_n"] else "missed",
                r["variants_per_backend"][-1],
            )
            for r in result["rows"]
        ],
    )
    write_results("gateway_scaleout", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
