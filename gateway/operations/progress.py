"""What a job's events add up to: its metadata while it runs, its response when it is done.

A job records the same ``GenerateResponse`` events ``Generate`` streams. Folding them
gives the operation's ``SubmitGenerateMetadata`` (stage, per-variant progress, queue
positions, warnings) and, once the job succeeded, its ``SubmitGenerateResponse`` (every
result by index, the analysis, the plan, the warnings, the timings). A job re-run after
its gateway failed renders the same seeds, so a result recorded twice is the same image:
the later one replaces the earlier.
"""

from __future__ import annotations

from collections.abc import Iterable

from imagegen.gateway.v1 import gateway_pb2

__all__ = ["JobProgress", "fold_response"]

# The stage a job is in once an event of this kind arrived.
_STAGE_OF_EVENT = {
    "analysis": "plan",
    "plan": "render",
    "queued": "render",
    "progress": "render",
    "preview": "render",
    "result": "render",
    "completed": "done",
}


class JobProgress:
    """The running fold of a job's events into its metadata.

    Args:
        metadata: The metadata recorded so far (a new job's, or the last one stored
            before a restart).
    """

    def __init__(self, metadata: gateway_pb2.SubmitGenerateMetadata) -> None:
        self._metadata = gateway_pb2.SubmitGenerateMetadata()
        self._metadata.CopyFrom(metadata)

    @property
    def events(self) -> int:
        """Events recorded so far (the index of the last one)."""
        return self._metadata.events

    def start_attempt(self) -> int:
        """Counts a start of the job and marks it running.

        Returns:
            The attempt's number, 1 for the first.
        """
        self._metadata.attempts += 1
        self._metadata.state = gateway_pb2.JOB_STATE_RUNNING
        if self._metadata.stage in ("", "queued"):
            self._metadata.stage = "analyze"
        return self._metadata.attempts

    def record(self, event: gateway_pb2.GenerateResponse) -> int:
        """Folds one event in.

        Returns:
            The event's index (1 for the first event of the job).
        """
        self._metadata.events += 1
        kind = event.WhichOneof("event")
        if kind in _STAGE_OF_EVENT:
            self._metadata.stage = _STAGE_OF_EVENT[kind]
        if kind == "queued":
            self._variant(event.queued.variant).queue_position = event.queued.position
        elif kind == "progress":
            variant = self._variant(event.progress.variant)
            variant.queue_position = 0
            variant.step, variant.total_steps = event.progress.step, event.progress.total_steps
        elif kind == "result":
            variant = self._variant(event.result.index)
            variant.queue_position, variant.done = 0, True
        elif kind == "warning":
            self._metadata.warnings.append(event.warning)
        return self._metadata.events

    def finish(self, state: gateway_pb2.JobState) -> None:
        """Marks the job finished in ``state``."""
        self._metadata.state = state
        self._metadata.stage = "done"

    def metadata(self) -> gateway_pb2.SubmitGenerateMetadata:
        """A copy of the metadata as it stands."""
        copy = gateway_pb2.SubmitGenerateMetadata()
        copy.CopyFrom(self._metadata)
        return copy

    def _variant(self, index: int) -> gateway_pb2.VariantProgress:
        for variant in self._metadata.variants:
            if variant.variant == index:
                return variant
        variants = sorted(
            [*self._metadata.variants, gateway_pb2.VariantProgress(variant=index)],
            key=lambda v: v.variant,
        )
        del self._metadata.variants[:]
        self._metadata.variants.extend(variants)
        return self._variant(index)


def fold_response(
    events: Iterable[gateway_pb2.GenerateResponse],
) -> gateway_pb2.SubmitGenerateResponse:
    """The response of a finished job: what its events delivered.

    Args:
        events: The job's events in order.

    Returns:
        Results by index (a re-run's replacing the first run's), the last analysis and
        plan, every warning, and the completion.
    """
    response = gateway_pb2.SubmitGenerateResponse()
    results: dict[int, gateway_pb2.GenerateResponse] = {}
    for event in events:
        kind = event.WhichOneof("event")
        if kind == "analysis":
            response.analysis.CopyFrom(event.analysis.analysis)
        elif kind == "plan":
            response.plan.CopyFrom(event.plan.plan)
        elif kind == "result":
            results[event.result.index] = event
        elif kind == "warning":
            response.warnings.append(event.warning)
        elif kind == "completed":
            response.completed.CopyFrom(event.completed)
    response.results.extend(results[index].result for index in sorted(results))
    return response
