"""A call's deadline, split across the pipeline's stages.

Python gRPC does not propagate deadlines by itself, so the gateway hands every downstream
call an explicit ``timeout``: the analysis and the plan may each use at most a share of
the whole deadline (a model that hangs must not eat the render's time), and the render
gets whatever is left. Time a stage does not use rolls over to the stages after it.

| usage | meaning |
|---|---|
| ``Deadline.start(context.time_remaining(), default_s=900, budgets=b)`` | from now |
| ``deadline.timeout_for(Stage.ANALYZE)`` | seconds the analysis call may take |
| ``deadline.timeout_for(Stage.RENDER)`` | all that is left |

``Deadline.start`` takes the caller's deadline, or the default when the caller set none.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.common.errors import DeadlineExceededError

__all__ = ["Deadline", "Stage", "StageBudgets"]


class Stage(enum.Enum):
    """The stages of a Generate call, named as in the ``completed`` event's timings."""

    VALIDATE = "validate"
    ANALYZE = "analyze"
    PLAN = "plan"
    RENDER_WAIT = "render_wait"
    RENDER = "render"


@dataclass(frozen=True)
class StageBudgets:
    """The largest share of the whole deadline each model stage may use.

    Attributes:
        analyze: Share of the analysis (vision model), 0 to 1.
        plan: Share of the planning (text model), 0 to 1.
    """

    analyze: float = 0.2
    plan: float = 0.2

    def __post_init__(self) -> None:
        if not (0.0 < self.analyze < 1.0 and 0.0 < self.plan < 1.0):
            raise ValueError("stage budgets must be fractions between 0 and 1")
        if self.analyze + self.plan >= 1.0:
            raise ValueError("the analysis and plan budgets must leave time to render")


class Deadline:
    """The instant a call must be finished by, and each stage's part of it.

    Args:
        total_s: Seconds from now to the deadline.
        budgets: The stage shares.
        clock: Monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        total_s: float,
        *,
        budgets: StageBudgets,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total_s = total_s
        self.budgets = budgets
        self._clock = clock
        self.expires_at = clock() + total_s

    @classmethod
    def start(
        cls,
        time_remaining: float | None,
        *,
        default_s: float,
        budgets: StageBudgets,
        clock: Callable[[], float] = time.monotonic,
    ) -> Deadline:
        """The deadline of a call that starts now.

        Args:
            time_remaining: ``context.time_remaining()`` of the call; None when the caller
                set no deadline.
            default_s: The deadline used when the caller set none.
            budgets: The stage shares.
            clock: Monotonic clock, injectable for tests.

        Returns:
            The deadline.
        """
        total = default_s if time_remaining is None else time_remaining
        return cls(total, budgets=budgets, clock=clock)

    def remaining(self) -> float:
        """Seconds left, never below zero."""
        return max(0.0, self.expires_at - self._clock())

    def timeout_for(self, stage: Stage) -> float:
        """Seconds the downstream call of ``stage`` may take.

        Args:
            stage: The stage about to start.

        Returns:
            For the analysis and the plan, their share of the whole deadline (or what is
            left, if less); for anything else, all that is left.

        Raises:
            DeadlineExceededError: No time is left for the stage.
        """
        left = self.remaining()
        if left <= 0.0:
            raise DeadlineExceededError(
                f"the deadline ({self.total_s:.1f} s) passed before the {stage.value} stage"
            )
        if stage is Stage.ANALYZE:
            return min(left, self.total_s * self.budgets.analyze)
        if stage is Stage.PLAN:
            return min(left, self.total_s * self.budgets.plan)
        return left
