"""Splitting a call's deadline across the stages."""

from __future__ import annotations

import pytest

from gateway.deadlines import Deadline, Stage, StageBudgets
from services.common.errors import DeadlineExceededError


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _deadline(total: float | None, clock: FakeClock) -> Deadline:
    return Deadline.start(
        total, default_s=50.0, budgets=StageBudgets(analyze=0.2, plan=0.3), clock=clock
    )


def test_caller_without_deadline_gets_the_default() -> None:
    assert _deadline(None, FakeClock()).total_s == 50.0


def test_analysis_gets_its_share_of_the_deadline() -> None:
    assert _deadline(10.0, FakeClock()).timeout_for(Stage.ANALYZE) == pytest.approx(2.0)


def test_plan_gets_its_share_of_the_deadline() -> None:
    assert _deadline(10.0, FakeClock()).timeout_for(Stage.PLAN) == pytest.approx(3.0)


def test_render_gets_all_that_is_left() -> None:
    clock = FakeClock()
    deadline = _deadline(10.0, clock)
    clock.now += 1.5
    assert deadline.timeout_for(Stage.RENDER) == pytest.approx(8.5)


def test_stage_share_is_capped_by_what_is_left() -> None:
    clock = FakeClock()
    deadline = _deadline(10.0, clock)
    clock.now += 9.0
    assert deadline.timeout_for(Stage.PLAN) == pytest.approx(1.0)


def test_no_time_left_fails_naming_the_stage() -> None:
    clock = FakeClock()
    deadline = _deadline(10.0, clock)
    clock.now += 10.0
    with pytest.raises(DeadlineExceededError, match="plan"):
        deadline.timeout_for(Stage.PLAN)


def test_budgets_must_leave_time_to_render() -> None:
    with pytest.raises(ValueError, match="render"):
        StageBudgets(analyze=0.5, plan=0.5)
