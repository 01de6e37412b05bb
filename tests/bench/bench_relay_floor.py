"""The floor under the gateway's CPU per request: a bare ``grpc.aio`` relay of the same calls.

``python tests/bench/bench_relay_floor.py`` starts two processes beside the benchmark: an
upstream server (standing in for vision, planner and render) and a relay (standing in for
the gateway). Per request the relay does only what the gateway's wire work is, with no
product code and no protobuf (raw bytes both ways):

- receives the caller's request carrying the source image;
- sends the source in two unary calls (analysis, plan) and once more to open a server
  stream (render), which answers ``queued``, one ``progress`` per sampling step and the
  ``result``;
- streams to the caller ``accepted``, the stage notes, the analysis, the plan, every render
  event as it arrives, and ``completed``.

Message sizes are those of a 1 MP request in ``bench_overhead.py``. The relay's CPU per
request (its own process, all threads) is the least any ``grpc.aio`` gateway that streams
every step spends; ``make bench``'s summary shows it beside the gateway's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path[:0] = [str(ROOT), str(ROOT / "protos")]

import grpc  # noqa: E402
import grpc.aio  # noqa: E402

from tests.bench.bench_overhead import photo  # noqa: E402
from tests.bench.deployed import cpu_s, load_average  # noqa: E402
from tests.bench.reporting import percentile, print_table, write_results  # noqa: E402
from tools.stack import free_port  # noqa: E402

UPSTREAM = "floor.Upstream"
RELAY = "floor.Relay"
RESULT_BYTES = 1_400_000
"""About the size of a 1 MP result PNG of the ComfyUI stand-in."""
SMALL = {"queued": 12, "progress": 14, "analysis": 400, "plan": 600, "note": 40}
"""Serialised sizes of the small events, as the gateway's are."""
OPTIONS = [
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.max_receive_message_length", 64 << 20),
]


def _identity(data: bytes) -> bytes:
    return data


async def _serve(handlers: dict[str, grpc.RpcMethodHandler], service: str, port: int) -> None:
    server = grpc.aio.server(options=OPTIONS)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(service, handlers)])
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("serving", flush=True)
    await server.wait_for_termination()


async def upstream(port: int, steps: int) -> None:
    """Vision, planner and render with nothing but their answers' sizes."""
    analysis, plan = os.urandom(SMALL["analysis"]), os.urandom(SMALL["plan"])
    progress, result = os.urandom(SMALL["progress"]), os.urandom(RESULT_BYTES)

    async def analyze(request: bytes, context: Any) -> bytes:
        return analysis

    async def plan_(request: bytes, context: Any) -> bytes:
        return plan

    async def render(request: bytes, context: Any) -> AsyncIterator[bytes]:
        yield os.urandom(SMALL["queued"])
        for _ in range(steps):
            yield progress
        yield result

    unary = grpc.unary_unary_rpc_method_handler
    handlers = {
        "Analyze": unary(analyze, _identity, _identity),
        "Plan": unary(plan_, _identity, _identity),
        "Render": grpc.unary_stream_rpc_method_handler(render, _identity, _identity),
    }
    await _serve(handlers, UPSTREAM, port)


async def relay(port: int, upstream_port: int) -> None:
    """The gateway's wire work: two unary calls, one stream forwarded as it arrives."""
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{upstream_port}", options=OPTIONS)
    analyze = channel.unary_unary(f"/{UPSTREAM}/Analyze", _identity, _identity)
    plan = channel.unary_unary(f"/{UPSTREAM}/Plan", _identity, _identity)
    render = channel.unary_stream(f"/{UPSTREAM}/Render", _identity, _identity)
    note = os.urandom(SMALL["note"])

    async def generate(request: bytes, context: Any) -> AsyncIterator[bytes]:
        yield note  # accepted
        yield note  # analysing
        yield await analyze(request)
        yield note  # planning
        yield await plan(request)
        yield note  # rendering
        async for event in render(request):
            yield event
        yield note  # completed

    handlers = {"Generate": grpc.unary_stream_rpc_method_handler(generate, _identity, _identity)}
    await _serve(handlers, RELAY, port)


def _start(role: str, *args: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--role", role, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != b"serving":
        process.kill()
        raise RuntimeError(f"the {role} did not start")
    return process


async def measure(relay_port: int, relay_pid: int, rounds: int, calls: int) -> dict[str, Any]:
    """CPU ms of the relay per request, and the events per request, over ``rounds``."""
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{relay_port}", options=OPTIONS)
    generate = channel.unary_stream(f"/{RELAY}/Generate", _identity, _identity)
    source = photo(1216, 832, 1)
    per_call: list[float] = []
    round_medians: list[float] = []
    events = 0
    for _ in range(3):  # warm the connections and the interpreter
        [_ async for _ in generate(source)]
    for _ in range(rounds):
        these = []
        for _ in range(calls):
            before = cpu_s(relay_pid)
            events = len([_ async for _ in generate(source)])
            await asyncio.sleep(0.01)  # the relay's last writes are counted
            these.append((cpu_s(relay_pid) - before) * 1000)
        per_call += these
        round_medians.append(statistics.median(these))
    await channel.close()
    return {
        "source_bytes": len(source),
        "result_bytes": RESULT_BYTES,
        "events_to_caller": events,
        "relay_cpu_ms_per_request": {
            "p50": round(statistics.median(per_call), 2),
            "p25": round(percentile(per_call, 25), 2),
            "p75": round(percentile(per_call, 75), 2),
            "round_medians": [round(m, 2) for m in round_medians],
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["bench", "upstream", "relay"], default="bench")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream-port", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20, help="sampling steps (progress events)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=40, help="requests per round")
    args = parser.parse_args()
    if args.role == "upstream":
        asyncio.run(upstream(args.port, args.steps))
        return 0
    if args.role == "relay":
        asyncio.run(relay(args.port, args.upstream_port))
        return 0

    up_port, relay_port = free_port(), free_port()
    load_before = load_average()[0]
    processes = [_start("upstream", "--port", str(up_port), "--steps", str(args.steps))]
    try:
        processes.append(
            _start("relay", "--port", str(relay_port), "--upstream-port", str(up_port))
        )
        pid = processes[-1].pid
        before, started = cpu_s(pid), time.monotonic()
        time.sleep(1.0)
        idle_ms_per_s = (cpu_s(pid) - before) / (time.monotonic() - started) * 1000
        result = asyncio.run(measure(relay_port, pid, args.rounds, args.calls))
    finally:
        for process in processes:
            process.kill()
            process.wait()
    result |= {
        "steps": args.steps,
        "relay_idle_cpu_ms_per_s": round(idle_ms_per_s, 3),
        "load_1min": {"min": min(load_before, load_average()[0]),
                      "max": max(load_before, load_average()[0])},
    }  # fmt: skip
    cpu = result["relay_cpu_ms_per_request"]
    print_table(
        f"bare grpc.aio relay, {args.steps} steps, {result['events_to_caller']} events to "
        f"the caller, CPU ms per request of the relay process",
        ["p50", "p25", "p75", "round medians"],
        [(cpu["p50"], cpu["p25"], cpu["p75"], " ".join(f"{m:g}" for m in cpu["round_medians"]))],
    )
    write_results("relay_floor", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
