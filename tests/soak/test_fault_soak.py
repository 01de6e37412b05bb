"""The soak: hundreds of requests through one system while faults come and go at random.

``make soak`` (``pytest -m soak``). Rounds of concurrent requests; before each round a
seeded random choice of faults is put in force on the stand-ins (or a stand-in is
restarted during the round), and each request is sent normally, with a short deadline,
or cancelled after a few events. Afterwards:

- every request ended with all its variants or a clear status (never UNKNOWN/INTERNAL,
  never a message-less failure; DEADLINE_EXCEEDED only where the deadline was short,
  CANCELLED only where the caller cancelled);
- the ComfyUI stand-in has nothing queued or running;
- no asyncio tasks, file descriptors or memory were left behind (counts taken after a
  warm-up are compared with the end).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import grpc
import pytest

from standins.comfyui.settings import FakeComfyUISettings
from standins.ollama.settings import FakeOllamaSettings
from tests.gateway.system import System, start_system
from tests.reliability.inputs import img2img
from tests.reliability.invariants import RpcLedger, assert_clear_failure, settle
from tests.reliability.outcomes import Outcome, collect, until_event
from tests.reliability.stream_teardown import server_crashes

pytestmark = [pytest.mark.soak, pytest.mark.timeout(900)]

SEED = 20261127
ROUNDS = 50
PER_ROUND = 8
WARM_UP_ROUNDS = 5

# Slack over the post-warm-up counts: connection pools and caches grow to their bounds
# during the first rounds; a leak of one object per request would pass them many times.
TASK_SLACK = 25
FD_SLACK = 40
RSS_SLACK_MB = 32.0

Fault = Callable[[System], Awaitable[None] | None]


def _ollama(**fault: object) -> Fault:
    def inject(system: System) -> None:
        system.ollama.fake.faults.add(**fault)

    return inject


def _comfyui(**faults: object) -> Fault:
    def inject(system: System) -> None:
        for name, value in faults.items():
            setattr(system.comfyui.fake.faults, name, value)

    return inject


async def _refuse_ollama_briefly(system: System) -> None:
    await system.ollama.refuse_connections(duration_s=0.3)


async def _restart_comfyui_soon(system: System) -> None:
    async def later() -> None:
        await asyncio.sleep(0.15)
        await system.comfyui.restart()

    _background.add(asyncio.create_task(later()))


async def _restart_ollama_soon(system: System) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await system.ollama.restart()

    _background.add(asyncio.create_task(later()))


_background: set[asyncio.Task[None]] = set()

FAULTS: dict[str, Fault] = {
    "ollama-500-once": _ollama(kind="error", times=1),
    "ollama-500": _ollama(kind="error"),
    "ollama-malformed": _ollama(kind="malformed_json"),
    "ollama-schema": _ollama(kind="schema_violation", times=3),
    "ollama-truncated": _ollama(kind="truncated_stream"),
    "ollama-runner-died": _ollama(kind="stream_error", times=2),
    "ollama-slow": _ollama(kind="delay", delay_s=0.3, times=4),
    "ollama-missing-fields": _ollama(kind="missing_fields", model="llava", fields=("materials",)),
    "ollama-refused": _refuse_ollama_briefly,
    "ollama-restart": _restart_ollama_soon,
    "comfyui-500-once": _comfyui(http_500_routes=["POST /prompt"], http_500_count=1),
    "comfyui-500": _comfyui(http_500_routes=["*"], http_500_count=6),
    "comfyui-history-500": _comfyui(http_500_routes=["/history/{prompt_id}"], http_500_count=2),
    "comfyui-ws-drop": _comfyui(ws_drop_after_step=1),
    "comfyui-execution-error": _comfyui(execution_error_node="KSampler"),
    "comfyui-oom": _comfyui(oom_node="KSampler", oom_after_step=1),
    "comfyui-slow-queue": _comfyui(queue_delay_s=0.05),
    "comfyui-slow-http": _comfyui(http_delay_s=0.02),
    "comfyui-restart": _restart_comfyui_soon,
}


@dataclass
class Sent:
    """One request of the soak and how it ended."""

    how: str
    variants: int
    outcome: Outcome


def _allowed(how: str) -> set[grpc.StatusCode]:
    allowed = {
        grpc.StatusCode.OK,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
    if how == "short-deadline":
        allowed.add(grpc.StatusCode.DEADLINE_EXCEEDED)
    if how == "cancel":
        allowed.add(grpc.StatusCode.CANCELLED)
    return allowed


async def _send(system: System, rng: random.Random, index: int, how: str) -> Sent:
    variants = rng.choice((1, 1, 2))
    request = img2img(index=index, variants=variants, steps=3, seed=index)
    deadline = rng.uniform(0.3, 2.5) if how == "short-deadline" else 30.0
    call = system.stub.Generate(request, timeout=deadline)
    outcome = Outcome()
    if how == "cancel":
        after = rng.randint(1, 6)
        seen = 0

        def enough(_: object) -> bool:
            nonlocal seen
            seen += 1
            return seen >= after

        if await until_event(call, outcome, enough):
            call.cancel()
            outcome.code = await call.code()
        return Sent(how, variants, outcome)
    return Sent(how, variants, await collect(call, outcome))


def _check(sent: Sent) -> None:
    outcome = sent.outcome
    assert outcome.code in _allowed(sent.how), (sent.how, outcome.code, outcome.message)
    if outcome.code == grpc.StatusCode.OK:
        assert outcome.completed and len(outcome.results) == sent.variants, outcome.events
    elif outcome.code != grpc.StatusCode.CANCELLED:
        assert_clear_failure(outcome.code, outcome.message)


def _forget_comfyui_bookkeeping(system: System) -> None:
    """Drops what the idle ComfyUI stand-in keeps for inspection (every prompt body, its
    history), so the memory measured is the services' and not the stand-in's."""
    fake = system.comfyui.fake
    for kept in (
        fake.submitted,
        fake.request_log,
        fake.upload_records,
        fake.deleted_ids,
        fake.interrupt_requests,
    ):
        kept.clear()
    fake.history.clear()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.fixture
def quiet_logs() -> Iterator[None]:
    """Keeps warning records out of pytest's capture, which would hold each one to the end
    and make the process grow for reasons of the test harness, not the services."""
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.usefixtures("quiet_logs")
async def test_soak_with_random_faults_leaves_nothing_behind() -> None:
    rng = random.Random(SEED)
    # Were servers to crash on cancelled streams (their own test says so), cancelling here
    # would end the soak without a verdict; it leaves cancels out instead.
    behaviours = ["normal", "normal", "short-deadline"]
    if not server_crashes():
        behaviours.append("cancel")
    sent: list[Sent] = []
    faults_used: Counter[str] = Counter()
    async with AsyncExitStack() as stack:
        system = await start_system(
            stack,
            # The stand-ins' request log is for inspection; a short one keeps memory flat.
            ollama=FakeOllamaSettings(request_log_limit=50),
            comfyui=FakeComfyUISettings(step_delay_s=0.002),
            plan_reuse_window_s=60.0,
        )
        ledger = RpcLedger.open()
        baseline: tuple[int, int, float] | None = None
        for round_ in range(ROUNDS):
            chosen = rng.sample(sorted(FAULTS), k=rng.choice((0, 1, 1, 2)))
            for name in chosen:
                faults_used[name] += 1
                injected = FAULTS[name](system)
                if injected is not None:
                    await injected
            first = round_ * PER_ROUND
            batch = [
                _send(system, rng, first + i, rng.choice(behaviours)) for i in range(PER_ROUND)
            ]
            sent += await asyncio.gather(*batch)
            await asyncio.gather(*_background)
            system.ollama.fake.faults.clear()
            system.comfyui.fake.faults.reset()
            await system.ollama.accept_connections()
            await settle(system.comfyui, ledger)
            _forget_comfyui_bookkeeping(system)
            if round_ == WARM_UP_ROUNDS - 1:
                gc.collect()
                baseline = (len(asyncio.all_tasks()), _open_fds(), _rss_mb())

        gc.collect()
        assert baseline is not None
        tasks, fds, rss = len(asyncio.all_tasks()), _open_fds(), _rss_mb()

        tally = Counter(f"{s.how}:{s.outcome.code.name}" for s in sent)
        for one in sent:
            _check(one)
        assert sum(s.outcome.code == grpc.StatusCode.OK for s in sent) > len(sent) // 3, tally
        assert tasks <= baseline[0] + TASK_SLACK, (baseline, tasks)
        assert fds <= baseline[1] + FD_SLACK, (baseline, fds)
        assert rss <= baseline[2] + RSS_SLACK_MB, (baseline, rss)
        assert ledger.unclear() == {}
