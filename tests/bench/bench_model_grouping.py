"""Model loads of concurrent requests on one GPU: one gateway with grouping off and on, and
two gateway processes grouping on their own or through shared phases in Redis.

``python tests/bench/bench_model_grouping.py`` (``make bench``) runs the services and the
Ollama stand-in in this process, the stand-in configured as one GPU that holds one model
at a time (loading one costs ``--load-delay`` seconds), and sends ``--requests``
image-to-image requests, each with its own image, to the gateway (or alternately to two
gateway processes). Two arrival patterns:

- ``together``: all requests sent at once (8 concurrent requests);
- ``spread``: one every ``--stagger`` seconds, so later requests arrive while the first
  ones already run their models.

It counts the stand-in's model loads and compares the wall time with the ideal: two
loads plus the calls, the calls measured as the wall time of the same burst, same
scenario, when loading costs nothing. (For ``spread`` arrivals that ideal is generous:
the first load can overlap the arrivals.) Each gateway serves one request before the
burst, so none waits for its capabilities catalog during it. It prints a table and
writes ``tests/bench/results/model_grouping.json``: per scenario ``model_loads``,
``wall_s`` and ``ideal_wall_s`` (medians over ``--repeats`` bursts).

Without grouping, requests alternate models on the GPU (LLaVA for one request's
analysis, GPT-OSS for another's plan, ...); with it, the gateway runs all waiting
analyses, then all waiting plans. Gateways that group only their own calls interleave
again; shared phases group them all.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc.aio
from PIL import Image

# The services' warnings (readiness, authentication off) and gRPC's connection notes
# would bury the table.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
logging.disable(logging.WARNING)

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path[:0] = [str(ROOT), str(ROOT / "protos")]

from imagegen.common.v1 import common_pb2  # noqa: E402
from imagegen.gateway.v1 import gateway_pb2, gateway_pb2_grpc  # noqa: E402
from standins.comfyui.settings import FakeComfyUISettings  # noqa: E402
from standins.ollama.faults import Fault, FaultKind  # noqa: E402
from standins.ollama.settings import FakeOllamaSettings  # noqa: E402
from tests.bench.reporting import print_table, write_results  # noqa: E402
from tests.gateway.operations.redis_server import run_redis_server  # noqa: E402
from tests.gateway.processes import gateway_process, until_serving  # noqa: E402
from tests.gateway.system import System, start_system  # noqa: E402


@dataclass(frozen=True)
class Scenario:
    """Where the requests go and how the gateways group their model calls."""

    key: str
    label: str
    gateways: int  # 1: in this process; 2: separate processes
    grouping: bool
    store: str = "process"


SCENARIOS = (
    Scenario("one_gateway_grouping_off", "1 gateway, grouping off", 1, grouping=False),
    Scenario("one_gateway_grouping_on", "1 gateway, grouping on", 1, grouping=True),
    Scenario("two_gateways_own_phases", "2 gateway processes, each its own", 2, grouping=True),
    Scenario(
        "two_gateways_redis_phases", "2 gateway processes, Redis phases", 2, True, store="redis"
    ),
)


_IMAGES = itertools.count()


def _image(index: int) -> bytes:
    # A distinct image per request of every burst, so no analysis cache (the vision
    # service keeps one by image hash) makes requests share work.
    buffer = io.BytesIO()
    color = (index % 256, index // 256 % 256, 160)
    Image.new("RGB", (96, 64), color).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


async def _one(stub: Any, index: int, delay_s: float) -> None:
    await asyncio.sleep(delay_s)
    request = gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=_image(next(_IMAGES))),
        instruction=f"Перекрась чашку в тёмно-зелёный цвет (вариант {index})",
        seed=index,
    )
    async for _ in stub.Generate(request, timeout=300):
        pass


async def _burst(
    system: System, stubs: list[Any], args: argparse.Namespace, stagger_s: float, load_s: float
) -> tuple[int, float]:
    """One burst from a clean GPU; its model loads and wall time."""
    fake = system.ollama.fake
    fake.settings.load_delay_s = load_s
    fake.residency.reset()  # nothing resident: the burst pays for every model it needs
    before = fake.load_count
    started = time.monotonic()
    await asyncio.gather(
        *(_one(stubs[i % len(stubs)], i, i * stagger_s) for i in range(args.requests))
    )
    return fake.load_count - before, time.monotonic() - started


@contextmanager
def _gateway_processes(
    system: System, scenario: Scenario, redis_url: str, folder: Path
) -> Iterator[list[str]]:
    """The scenario's gateway processes; their addresses."""
    env = {
        "GATEWAY_PLAN_REUSE_WINDOW_S": "0",
        "GATEWAY_GROUPING_STORE": scenario.store,
        "GATEWAY_GROUPING_REDIS_URL": redis_url,
        "GATEWAY_GROUPING_REDIS_PREFIX": f"bench:{uuid.uuid4().hex[:12]}",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    with ExitStack() as stack:
        addresses = []
        for index in range(scenario.gateways):
            values = env | {"GATEWAY_JOBS_DIR": str(folder / f"jobs-{index}")}
            log = folder / f"gateway-{index}.log"
            address, _ = stack.enter_context(gateway_process(system, values, log))
            addresses.append(address)
        yield addresses


async def run_scenario(
    scenario: Scenario, args: argparse.Namespace, redis_url: str, folder: Path
) -> dict[str, Any]:
    """Every arrival pattern of one scenario on one fresh system."""
    ollama = FakeOllamaSettings(
        max_loaded_models=1,
        num_parallel=1,
        faults=[Fault(kind=FaultKind.DELAY, routes=("chat",), chunk_delay_s=args.answer_delay)],
    )
    results: dict[str, Any] = {}
    async with AsyncExitStack() as stack:
        system = await start_system(
            stack,
            ollama=ollama,
            comfyui=FakeComfyUISettings(step_delay_s=0.0),
            model_grouping=scenario.grouping,
            plan_reuse_window_s=0.0,
        )
        with ExitStack() as processes:
            stubs = [system.stub]
            if scenario.gateways > 1:
                addresses = processes.enter_context(
                    _gateway_processes(system, scenario, redis_url, folder)
                )
                await asyncio.gather(*(until_serving(a) for a in addresses))
                stubs = []
                for address in addresses:
                    channel = grpc.aio.insecure_channel(address)
                    stack.push_async_callback(channel.close)
                    stubs.append(gateway_pb2_grpc.GatewayServiceStub(channel))  # type: ignore[no-untyped-call]
            for index, stub in enumerate(stubs):  # warm: each has its catalog
                await _one(stub, 1000 + index, 0.0)
            for pattern, stagger_s in (("together", 0.0), ("spread", args.stagger)):
                # Free-load and loaded bursts interleaved, so both see the same machine.
                calls: list[float] = []
                runs: list[tuple[int, float]] = []
                for _ in range(args.repeats):
                    calls.append((await _burst(system, stubs, args, stagger_s, 0.0))[1])
                    runs.append(await _burst(system, stubs, args, stagger_s, args.load_delay))
                results[f"{scenario.key}/{pattern}"] = {
                    "label": scenario.label,
                    "arrivals": pattern,
                    "model_loads": statistics.median(loads for loads, _ in runs),
                    "wall_s": round(statistics.median(wall for _, wall in runs), 3),
                    "ideal_wall_s": round(2 * args.load_delay + statistics.median(calls), 3),
                    "runs": [{"model_loads": n, "wall_s": round(w, 3)} for n, w in runs],
                    "free_load_walls_s": [round(c, 3) for c in calls],
                }
    return results


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Runs every scenario against one Redis server."""
    scenarios: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-grouping-") as tmp:
        folder = Path(tmp)
        with run_redis_server(folder) as redis_url:
            for scenario in SCENARIOS:
                scenarios |= await run_scenario(scenario, args, redis_url, folder)
    return {
        "setup": {
            "requests": args.requests,
            "stagger_s": args.stagger,
            "load_delay_s": args.load_delay,
            "answer_chunk_delay_s": args.answer_delay,
            "repeats": args.repeats,
            "ollama": "stand-in, one model resident, one request at a time",
            "ideal": "2 x load_delay + wall of the same burst with free loads",
        },
        "scenarios": scenarios,
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
    parser.add_argument("--repeats", type=int, default=3, help="bursts per scenario and pattern")
    args = parser.parse_args(argv)

    report = asyncio.run(main_async(args))
    rows = [
        [
            row["label"],
            row["arrivals"],
            row["model_loads"],
            row["wall_s"],
            row["ideal_wall_s"],
            f"{100 * (row['wall_s'] / row['ideal_wall_s'] - 1):+.0f} %",
        ]
        for row in report["scenarios"].values()
    ]
    print_table(
        f"{args.requests} img2img requests, one model resident, {args.load_delay:g} s per load "
        f"(spread: {args.stagger:g} s apart); medians of {args.repeats}",
        ["scenario", "arrivals", "loads", "wall s", "ideal s", "vs ideal"],
        rows,
    )
    write_results("model_grouping", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
