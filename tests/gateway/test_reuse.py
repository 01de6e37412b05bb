"""Reusing a recent analysis and plan for an identical request."""

from __future__ import annotations

from gateway.jobs import Mode, PlanInputs
from gateway.reuse import PlanReuseCache, ReusedPlan, reuse_key
from imagegen.common.v1 import common_pb2
from services.common.images import validate_image
from tests.gateway.images import png_bytes

IMAGE = validate_image(png_bytes(), field="source_image.data", max_bytes=1 << 20, max_side=4096)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _inputs(instruction: str = "make it green", denoise: float | None = None) -> PlanInputs:
    overrides = common_pb2.SamplerSettings()
    if denoise is not None:
        overrides.denoise = denoise
    return PlanInputs(
        mode=Mode.IMAGE_TO_IMAGE,
        instruction=instruction,
        image=IMAGE,
        description=None,
        overrides=overrides,
    )


def _entry(plan_source: int = common_pb2.PLAN_SOURCE_MODEL) -> ReusedPlan:
    return ReusedPlan(
        analysis=common_pb2.ImageAnalysis(
            description="a cup", source=common_pb2.ANALYSIS_SOURCE_MODEL
        ),
        plan=common_pb2.PromptPlan(positive_prompt="a green cup", source=plan_source),  # type: ignore[arg-type]
    )


def _cache(clock: FakeClock, window_s: float = 60.0, max_entries: int = 4) -> PlanReuseCache:
    return PlanReuseCache(window_s=window_s, max_entries=max_entries, clock=clock)


def test_identical_inputs_reuse_the_stored_plan() -> None:
    cache = _cache(FakeClock())
    cache.put(reuse_key(_inputs()), _entry())
    found = cache.get(reuse_key(_inputs()))
    assert found is not None and found.plan.positive_prompt == "a green cup"


def test_another_instruction_misses() -> None:
    cache = _cache(FakeClock())
    cache.put(reuse_key(_inputs()), _entry())
    assert cache.get(reuse_key(_inputs("make it red"))) is None


def test_other_overrides_miss() -> None:
    cache = _cache(FakeClock())
    cache.put(reuse_key(_inputs()), _entry())
    assert cache.get(reuse_key(_inputs(denoise=0.5))) is None


def test_entries_expire_after_the_window() -> None:
    clock = FakeClock()
    cache = _cache(clock, window_s=60.0)
    cache.put(reuse_key(_inputs()), _entry())
    clock.now += 61.0
    assert cache.get(reuse_key(_inputs())) is None


def test_oldest_entries_are_evicted_beyond_the_size_bound() -> None:
    cache = _cache(FakeClock(), max_entries=2)
    for word in ("a", "b", "c"):
        cache.put(reuse_key(_inputs(word)), _entry())
    assert cache.get(reuse_key(_inputs("a"))) is None
    assert len(cache) == 2


def test_fallback_plans_are_not_kept() -> None:
    cache = _cache(FakeClock())
    assert not cache.put(reuse_key(_inputs()), _entry(common_pb2.PLAN_SOURCE_RULES))


def test_zero_window_switches_reuse_off() -> None:
    cache = _cache(FakeClock(), window_s=0.0)
    cache.put(reuse_key(_inputs()), _entry())
    assert cache.get(reuse_key(_inputs())) is None


def test_callers_cannot_change_what_the_cache_holds() -> None:
    cache = _cache(FakeClock())
    cache.put(reuse_key(_inputs()), _entry())
    first = cache.get(reuse_key(_inputs()))
    assert first is not None
    first.plan.positive_prompt = "edited"
    second = cache.get(reuse_key(_inputs()))
    assert second is not None and second.plan.positive_prompt == "a green cup"
