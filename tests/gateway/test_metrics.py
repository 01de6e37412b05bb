"""The gateway's Prometheus metrics: stage latencies, reuse hits, fallbacks, statuses."""

from __future__ import annotations

from prometheus_client import REGISTRY

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from standins.ollama.faults import FaultKind
from tests.gateway.images import jpeg_bytes
from tests.gateway.system import System


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _request(instruction: str) -> gateway_pb2.GenerateRequest:
    return gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=jpeg_bytes(96, 64)), instruction=instruction, seed=1
    )


async def _generate(system: System, instruction: str) -> None:
    async for _ in system.stub.Generate(_request(instruction), timeout=30):
        pass


async def test_each_stage_is_timed(system: System) -> None:
    before = {
        stage: _sample("imagegen_stage_seconds_count", service="gateway", stage=stage)
        for stage in ("validate", "analyze", "plan", "render_wait", "render", "total")
    }
    await _generate(system, "make the cup green")
    for stage, count in before.items():
        after = _sample("imagegen_stage_seconds_count", service="gateway", stage=stage)
        assert after == count + 1, stage


async def test_plan_reuse_counts_a_cache_hit(system: System) -> None:
    await _generate(system, "make the cup blue")
    hits = _sample("imagegen_cache_events_total", cache="gateway_plan_reuse", result="hit")
    await _generate(system, "make the cup blue")
    after = _sample("imagegen_cache_events_total", cache="gateway_plan_reuse", result="hit")
    assert after == hits + 1


async def test_a_rules_plan_counts_as_a_fallback(system: System) -> None:
    system.ollama.fake.faults.add(kind=FaultKind.ERROR, model="gpt-oss:20b")
    before = _sample("imagegen_fallbacks_total", service="gateway", kind="plan")
    events = [e async for e in system.stub.Generate(_request("сделай чашку жёлтой"), timeout=30)]
    plan = next(e.plan.plan for e in events if e.HasField("plan"))
    assert plan.source == common_pb2.PLAN_SOURCE_RULES
    assert any(e.warning.code == "PLAN_FALLBACK" for e in events if e.HasField("warning"))
    assert _sample("imagegen_fallbacks_total", service="gateway", kind="plan") == before + 1
