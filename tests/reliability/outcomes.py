"""How a ``Generate`` call ended, in one value a test can compare with what was promised.

::

    outcome = await generate(system.stub, img2img(), deadline_s=20)
    outcome.code          # grpc.StatusCode.OK, or the status the call ended with
    outcome.warnings      # ["ANALYSIS_FALLBACK", ...] in the order they came
    outcome.results       # finished variants
    outcome.reason        # ErrorInfo.reason of a failed call ("" if none)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from services.common.errors import status_details
from tests.reliability.invariants import assert_clear_failure

__all__ = ["Expected", "Outcome", "assert_outcome", "collect", "generate", "until_event"]

_FALLBACK_WARNINGS = frozenset({"ANALYSIS_FALLBACK", "PLAN_FALLBACK"})


@dataclass
class Outcome:
    """Everything a caller saw of one ``Generate`` call.

    Attributes:
        code: OK when the stream ended normally, else the status code.
        message: The status message ("" for OK).
        details: The ``google.rpc`` detail messages of a failed call.
        events: The event kinds in arrival order (``"analysis"``, ``"result"``, ...).
        warnings: The warning codes in arrival order.
        results: The finished variants.
        analysis_source: Who made the analysis, if one was sent.
        plan_source: Who made the plan, if one was sent.
    """

    code: grpc.StatusCode = grpc.StatusCode.OK
    message: str = ""
    details: list[Message] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    results: list[common_pb2.VariantResult] = field(default_factory=list)
    analysis_source: int | None = None
    plan_source: int | None = None

    @property
    def completed(self) -> bool:
        """True when the ``completed`` event arrived."""
        return "completed" in self.events

    @property
    def reason(self) -> str:
        """``ErrorInfo.reason`` of a failed call, "" when there is none."""
        for detail in self.details:
            if isinstance(detail, error_details_pb2.ErrorInfo):
                return str(detail.reason)
        return ""

    @property
    def detail_types(self) -> set[str]:
        """Names of the detail messages (``{"BadRequest", "ErrorInfo"}``)."""
        return {type(detail).__name__ for detail in self.details}

    def record(self, event: gateway_pb2.GenerateResponse) -> None:
        """Adds one streamed event."""
        kind = event.WhichOneof("event")
        if kind is None:
            return
        self.events.append(kind)
        if kind == "warning":
            self.warnings.append(event.warning.code)
        elif kind == "result":
            self.results.append(event.result)
        elif kind == "analysis":
            self.analysis_source = event.analysis.analysis.source
        elif kind == "plan":
            self.plan_source = event.plan.plan.source

    def fail(self, error: grpc.aio.AioRpcError) -> None:
        """Records the status the call ended with."""
        self.code = error.code()
        self.message = error.details() or ""
        self.details = status_details(error)


async def collect(
    events: AsyncIterator[gateway_pb2.GenerateResponse], outcome: Outcome | None = None
) -> Outcome:
    """Reads a call's remaining events into an outcome (a new one unless given)."""
    outcome = outcome if outcome is not None else Outcome()
    try:
        async for event in events:
            outcome.record(event)
    except grpc.aio.AioRpcError as e:
        outcome.fail(e)
    return outcome


async def generate(
    stub: Any, request: gateway_pb2.GenerateRequest, *, deadline_s: float = 20.0
) -> Outcome:
    """Runs one ``Generate`` call to its end.

    Args:
        stub: A ``GatewayServiceStub``.
        request: The request.
        deadline_s: The call's deadline in seconds (a hang shows up as DEADLINE_EXCEEDED).

    Returns:
        What the caller saw.
    """
    return await collect(stub.Generate(request, timeout=deadline_s))


async def until_event(
    events: AsyncIterator[gateway_pb2.GenerateResponse],
    outcome: Outcome,
    wanted: Callable[[gateway_pb2.GenerateResponse], bool],
) -> bool:
    """Reads events into ``outcome`` up to and including the first ``wanted`` one.

    Returns:
        True when it came; False when the stream ended first (``outcome`` says how).
    """
    try:
        async for event in events:
            outcome.record(event)
            if wanted(event):
                return True
    except grpc.aio.AioRpcError as e:
        outcome.fail(e)
    return False


@dataclass(frozen=True)
class Expected:
    """The promised outcome of a call.

    Attributes:
        code: The status the call ends with.
        results: Variants delivered (OK calls).
        analysis: Who must have made the analysis (OK image-to-image calls).
        plan: Who must have made the plan (OK calls).
        warnings: Warning codes that must be among the events.
        no_fallback: No fallback warning may appear (a retry succeeded).
        reason: ``ErrorInfo.reason`` of a failed call.
        message: Text the failed call's message must contain.
    """

    code: grpc.StatusCode = grpc.StatusCode.OK
    results: int = 1
    analysis: int = common_pb2.ANALYSIS_SOURCE_MODEL
    plan: int = common_pb2.PLAN_SOURCE_MODEL
    warnings: frozenset[str] = frozenset()
    no_fallback: bool = False
    reason: str = ""
    message: str = ""


def assert_outcome(outcome: Outcome, expected: Expected) -> None:
    """Asserts the call ended exactly as promised.

    An OK call delivered its variants and ``completed``, from the named sources, with the
    named warnings; a failed call has the code, a message containing the promised text,
    and the ``ErrorInfo`` reason; never UNKNOWN or INTERNAL.
    """
    assert outcome.code == expected.code, (outcome.code, outcome.message)
    if expected.code != grpc.StatusCode.OK:
        assert_clear_failure(outcome.code, outcome.message)
        assert outcome.results == []
        assert outcome.reason == expected.reason, outcome.details
        assert expected.message in outcome.message, outcome.message
        return
    assert outcome.completed, outcome.events
    assert len(outcome.results) == expected.results
    assert outcome.analysis_source == expected.analysis
    assert outcome.plan_source == expected.plan
    assert expected.warnings <= set(outcome.warnings), outcome.warnings
    if expected.no_fallback:
        assert not _FALLBACK_WARNINGS & set(outcome.warnings), outcome.warnings
