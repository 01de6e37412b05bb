"""Benchmark: many jobs through two gateway replicas on one Redis, and what the job path adds.

``python tests/bench/bench_jobs.py`` (``make bench``) starts the whole system in-process
(stand-ins, services), a real Redis server and two gateways sharing it, then:

1. submits ``--jobs`` jobs at once, alternating between the gateways, and waits for all:
   every job must succeed, each exactly once (one ComfyUI prompt per job, one attempt);
2. measures, on the idle system, ``--samples`` sequential ``Generate`` calls and as many
   ``SubmitGenerate`` + ``WatchOperation`` (until ``completed``) round trips of the same
   request, and prints the p50 the job path adds.

Approved plans are sent, so no model is asked and the figures are the gateway's own.
Prints a table and writes ``tests/bench/results/jobs.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path[:0] = [str(ROOT), str(ROOT / "protos")]

from google.longrunning import operations_proto_pb2 as operations_pb2  # noqa: E402
from google.protobuf import duration_pb2  # noqa: E402

from imagegen.common.v1 import common_pb2  # noqa: E402
from imagegen.gateway.v1 import gateway_pb2  # noqa: E402
from standins.comfyui.settings import FakeComfyUISettings  # noqa: E402
from tests.bench.reporting import percentile, print_table, write_results  # noqa: E402
from tests.gateway.operations.clients import JobClient, connect, metadata_of  # noqa: E402
from tests.gateway.operations.redis_server import run_redis_server  # noqa: E402
from tests.gateway.system import start_gateway_in, start_system  # noqa: E402


def request(seed: int, steps: int) -> gateway_pb2.GenerateRequest:
    """A small text-to-image request with an approved plan: no model call."""
    settings = common_pb2.SamplerSettings(
        denoise=1.0, steps=steps, cfg=1.0, guidance=3.5, sampler_name="euler", scheduler="simple"
    )
    return gateway_pb2.GenerateRequest(
        instruction="a red bicycle",
        seed=seed,
        variants=1,
        width=256,
        height=256,
        plan=common_pb2.PromptPlan(positive_prompt="a red bicycle", settings=settings),
    )


async def _wait(client: JobClient, name: str) -> operations_pb2.Operation:
    while True:
        operation = await client.operations.WaitOperation(
            operations_pb2.WaitOperationRequest(
                name=name, timeout=duration_pb2.Duration(seconds=30)
            ),
            timeout=40,
        )
        if operation.done:
            return operation


async def burst(clients: list[JobClient], comfyui: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Submits every job at once through alternating gateways and waits for them all."""
    before = comfyui.fake.counters.prompts_submitted
    started = time.perf_counter()
    operations = await asyncio.gather(
        *(clients[i % 2].submit(request(i, args.steps)) for i in range(args.jobs))
    )
    submitted_s = time.perf_counter() - started
    done = await asyncio.gather(
        *(_wait(clients[(i + 1) % 2], op.name) for i, op in enumerate(operations))
    )
    finished_s = time.perf_counter() - started
    metadata = [metadata_of(op) for op in done]
    return {
        "jobs": args.jobs,
        "submit_all_s": round(submitted_s, 3),
        "finish_all_s": round(finished_s, 3),
        "succeeded": sum(m.state == gateway_pb2.JOB_STATE_SUCCEEDED for m in metadata),
        "run_more_than_once": sum(m.attempts != 1 for m in metadata),
        "comfyui_prompts": comfyui.fake.counters.prompts_submitted - before,
        "distinct_operations": len({op.name for op in operations}),
    }


async def latency(client: JobClient, stub: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Sequential Generate calls against sequential submit + watch round trips."""
    direct: list[float] = []
    jobs: list[float] = []
    for i in range(args.samples):
        seed = 10**6 + i
        started = time.perf_counter()
        async for _ in stub.Generate(request(seed, args.steps), timeout=60):
            pass
        direct.append(time.perf_counter() - started)

        started = time.perf_counter()
        operation = await client.submit(request(seed + 10**5, args.steps))
        events = await client.watch(operation.name)
        assert events[-1].HasField("completed")
        jobs.append(time.perf_counter() - started)
    p50_direct, p50_jobs = statistics.median(direct), statistics.median(jobs)
    return {
        "samples": args.samples,
        "generate_p50_ms": round(p50_direct * 1000, 1),
        "job_p50_ms": round(p50_jobs * 1000, 1),
        "added_p50_ms": round((p50_jobs - p50_direct) * 1000, 1),
        "job_p90_ms": round(percentile(jobs, 90) * 1000, 1),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Runs both measurements on one system."""
    with tempfile.TemporaryDirectory() as folder, run_redis_server(Path(folder)) as url:
        async with AsyncExitStack() as stack:
            settings = {
                "jobs_store": "redis",
                "jobs_redis_url": url,
                "jobs_redis_prefix": f"bench:{uuid.uuid4().hex[:8]}",
                "jobs_workers": args.workers,
                "limit_concurrent_generations": 0,
                "limit_variants_per_minute": 0,
            }
            system = await start_system(
                stack, comfyui=FakeComfyUISettings(step_delay_s=args.step_delay_s), **settings
            )
            other = await start_gateway_in(stack, system, **settings)
            clients = [
                await connect(stack, system.gateway.address),
                await connect(stack, other.address),
            ]
            return {
                "step_delay_s": args.step_delay_s,
                "steps": args.steps,
                "workers_per_gateway": args.workers,
                "burst": await burst(clients, system.comfyui, args),
                "latency": await latency(clients[0], system.stub, args),
            }


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark, prints the tables, writes the JSON; 1 if a job was lost or doubled."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs submitted at once")
    parser.add_argument("--workers", type=int, default=4, help="jobs each gateway runs at once")
    parser.add_argument("--steps", type=int, default=4, help="sampling steps per job")
    parser.add_argument("--step-delay-s", type=float, default=0.0, help="seconds per step")
    parser.add_argument("--samples", type=int, default=20, help="latency samples per path")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    result = asyncio.run(main_async(args))
    burst_, latency_ = result["burst"], result["latency"]
    print_table(
        f"{args.jobs} jobs at once through 2 gateways on one Redis",
        ["jobs", "succeeded", "run twice", "prompts", "submit all s", "finish all s"],
        [
            (
                burst_["jobs"],
                burst_["succeeded"],
                burst_["run_more_than_once"],
                burst_["comfyui_prompts"],
                burst_["submit_all_s"],
                burst_["finish_all_s"],
            )
        ],
    )
    print_table(
        "latency of one request, idle system",
        ["samples", "Generate p50 ms", "job p50 ms", "added p50 ms", "job p90 ms"],
        [
            (
                latency_["samples"],
                latency_["generate_p50_ms"],
                latency_["job_p50_ms"],
                latency_["added_p50_ms"],
                latency_["job_p90_ms"],
            )
        ],
    )
    write_results("jobs", result)
    ok = (
        burst_["succeeded"] == args.jobs
        and burst_["run_more_than_once"] == 0
        and burst_["comfyui_prompts"] == args.jobs
        and burst_["distinct_operations"] == args.jobs
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
