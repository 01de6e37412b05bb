"""Reuse of a recent analysis and plan for an identical request.

"Three more variants of that" sends the same image, instruction, description and
overrides again a minute later; the models would answer the same, so the gateway reuses
the earlier analysis and plan and goes straight to rendering (the events say
``reused``). Entries expire after a time window and the oldest are evicted beyond a
size bound. Answers made by a fallback are not kept: a model that was down a minute ago
may answer now.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gateway.jobs import PlanInputs
from imagegen.common.v1 import common_pb2
from services.common.metrics import CACHE_EVENTS_TOTAL

__all__ = ["PlanReuseCache", "ReuseKey", "ReusedPlan", "reuse_key"]

_CACHE_NAME = "gateway_plan_reuse"


@dataclass(frozen=True)
class ReuseKey:
    """What makes two requests plan the same.

    Attributes:
        image_sha256: Hash of the source image; empty for text-to-image.
        instruction: The instruction, verbatim.
        description: The caller's description, or None.
        overrides: Deterministic serialisation of the sampler overrides.
        mode: The generation mode's proto value.
    """

    image_sha256: str
    instruction: str
    description: str | None
    overrides: bytes
    mode: int


def reuse_key(inputs: PlanInputs) -> ReuseKey:
    """The reuse key of a request's planning inputs."""
    return ReuseKey(
        image_sha256=inputs.image.sha256 if inputs.image is not None else "",
        instruction=inputs.instruction,
        description=inputs.description,
        overrides=inputs.overrides.SerializeToString(deterministic=True),
        mode=inputs.mode.value,
    )


@dataclass(frozen=True)
class ReusedPlan:
    """An analysis (None for text-to-image) and the plan made from it."""

    analysis: common_pb2.ImageAnalysis | None
    plan: common_pb2.PromptPlan


def _is_reusable(entry: ReusedPlan) -> bool:
    fallback_analysis = (
        entry.analysis is not None
        and entry.analysis.source == common_pb2.ANALYSIS_SOURCE_METADATA_FALLBACK
    )
    return not fallback_analysis and entry.plan.source != common_pb2.PLAN_SOURCE_RULES


def _copy(entry: ReusedPlan) -> ReusedPlan:
    # Protobuf messages are mutable; callers must not change what the cache holds.
    analysis = None
    if entry.analysis is not None:
        analysis = common_pb2.ImageAnalysis()
        analysis.CopyFrom(entry.analysis)
    plan = common_pb2.PromptPlan()
    plan.CopyFrom(entry.plan)
    return ReusedPlan(analysis=analysis, plan=plan)


class PlanReuseCache:
    """Recent analyses and plans by :class:`ReuseKey`, bounded in time and size.

    Args:
        window_s: How long an entry may be reused; 0 switches reuse off.
        max_entries: Most entries kept; the least recently stored go first.
        clock: Monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        *,
        window_s: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[ReuseKey, tuple[float, ReusedPlan]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: ReuseKey) -> ReusedPlan | None:
        """The entry stored for ``key`` within the window (a copy), or None."""
        if self.window_s <= 0:
            return None
        found = self._entries.get(key)
        if found is not None and self._clock() - found[0] > self.window_s:
            del self._entries[key]
            found = None
        CACHE_EVENTS_TOTAL.labels(
            cache=_CACHE_NAME, result="miss" if found is None else "hit"
        ).inc()
        return None if found is None else _copy(found[1])

    def put(self, key: ReuseKey, entry: ReusedPlan) -> bool:
        """Stores an analysis and plan for reuse.

        Args:
            key: The request's reuse key.
            entry: What the models answered.

        Returns:
            True when stored; False when reuse is off or the entry came from a fallback.
        """
        if self.window_s <= 0 or not _is_reusable(entry):
            return False
        self._entries[key] = (self._clock(), _copy(entry))
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            CACHE_EVENTS_TOTAL.labels(cache=_CACHE_NAME, result="evict").inc()
        return True
