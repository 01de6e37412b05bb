"""Where the orchestration's time goes: a sampling profile of the deployed shape.

``python tests/bench/profile_overhead.py`` starts the stack as ``bench_overhead.py`` does
(each stand-in and service its own process, zero-delay stand-ins), then for 1 and 4
megapixel sources sends ``Generate`` calls one after another while py-spy (the ``dev``
extra) samples the gateway, render and vision processes. For each process it prints the
functions holding most samples — by their own code (self) and with what they call
(total) — and writes ``tests/bench/results/profile.json`` (the raw collapsed stacks go to
``tests/bench/results/profile/``).

Not run by ``make bench`` (py-spy needs ptrace permission); run it before and after a
change to the hot path.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import shutil
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path[:0] = [str(ROOT), str(ROOT / "protos")]

import grpc.aio  # noqa: E402

from imagegen.gateway.v1 import gateway_pb2_grpc  # noqa: E402
from tests.bench.bench_overhead import (  # noqa: E402
    SIZES,
    STACK_ENV,
    Target,
    _floor_client,
    _ollama_client,
    photo,
    through_gateway,
)
from tests.bench.deployed import Deployed, deployed_stack, load_average  # noqa: E402
from tests.bench.reporting import RESULTS_DIR, print_table, write_results  # noqa: E402

PROFILED = ("gateway", "render", "vision")
RATE_HZ = 200
IDLE_LEAVES = frozenset(
    {
        "EpollSelector.select (selectors.py)",  # the event loop waiting
        "_worker (concurrent/futures/thread.py)",  # an idle worker thread
        "Thread.run (threading.py)",  # gRPC's poller thread waiting in C
    }
)
"""Leaf frames of threads that wait: py-spy cannot tell these waits from work."""


def summarise(raw: Path, top: int) -> dict[str, Any]:
    """Self and total sample shares of the functions in a py-spy ``raw`` file (busy
    samples only: stacks ending in a wait are left out)."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[-1] in IDLE_LEAVES:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count

    def share(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(f, round(100 * n / samples, 1)) for f, n in counter.most_common(top)]

    return {"samples": samples, "self_pct": share(own), "total_pct": share(total)}


async def load(deployed: Deployed, label: str, seconds: float) -> int:
    """Sends ``label``-sized requests one after another for ``seconds``; how many."""
    width, height = SIZES[label]
    async with (
        grpc.aio.insecure_channel(deployed.addresses["gateway"]) as channel,
        AsyncExitStack() as stack,
    ):
        target = Target(
            stub=gateway_pb2_grpc.GatewayServiceStub(channel),  # type: ignore[no-untyped-call]
            floor=await _floor_client(stack, deployed.comfyui_url),
            ollama=await _ollama_client(stack, deployed.ollama_url),
        )
        await through_gateway(target, photo(width, height, 1), seed=1, steps=20)
        done = 0
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            await through_gateway(target, photo(width, height, 100 + done), done, 20)
            done += 1
        return done


def _print(label: str, name: str, summary: dict[str, Any], requests: int) -> None:
    print_table(
        f"{label} {name}: {summary['samples']} busy samples at {RATE_HZ} Hz over "
        f"{requests} requests ({summary.get('samples_per_request', '?')} per request)",
        ["self %", "function", "total %", "function "],
        [
            (s[1], s[0][:70], t[1], t[0][:70])
            for s, t in zip(summary["self_pct"], summary["total_pct"], strict=False)
        ],
    )


def main(argv: list[str] | None = None) -> int:
    """Profiles both sizes, prints the top entries, writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="sampling time per size")
    parser.add_argument("--top", type=int, default=12, help="entries per table")
    parser.add_argument("--label", default="", help="a name for this run in the JSON")
    parser.add_argument(
        "--resummarise", action="store_true", help="only summarise the raw files of a past run"
    )
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out_dir = RESULTS_DIR / "profile"
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"label": args.label, "rate_hz": RATE_HZ, "sizes": {}}
    if args.resummarise:
        for label in ("1MP", "4MP"):
            for name in PROFILED:
                _print(label, name, summarise(out_dir / f"{label}-{name}.txt", args.top), 0)
        return 0
    with deployed_stack(STACK_ENV) as deployed:
        for label in ("1MP", "4MP"):
            spies = {}
            for name in PROFILED:
                raw = out_dir / f"{label}-{name}.txt"
                spies[name] = (
                    raw,
                    subprocess.Popen(
                        [py_spy, "record", "--pid", str(deployed.pids[name]), "--format", "raw",
                         "--nolineno", "--rate", str(RATE_HZ), "--duration",
                         str(int(args.seconds)), "--output", str(raw)],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    ),
                )  # fmt: skip
            time.sleep(1.0)  # py-spy attached
            before = load_average()[0]
            requests = asyncio.run(load(deployed, label, args.seconds - 2))
            entry: dict[str, Any] = {"requests": requests, "load_1min": [before, load_average()[0]]}
            for name, (raw, spy) in spies.items():
                spy.wait(timeout=args.seconds + 30)
                summary = summarise(raw, args.top)
                summary["samples_per_request"] = round(summary["samples"] / max(requests, 1), 1)
                entry[name] = summary
                _print(label, name, summary, requests)
            result["sizes"][label] = entry
    name = f"profile-{args.label}" if args.label else "profile"
    write_results(name, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
