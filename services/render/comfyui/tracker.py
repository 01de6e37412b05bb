"""One prompt's ComfyUI messages turned into the render backend's events.

:class:`PromptTracker` does no I/O: it is fed what the websocket, ``/queue`` and
``/history`` said, and answers with :data:`~services.render.backend.PromptEvent` values
and with what it needs to read next (:class:`ReadQueue`, :class:`ReadHistory`). The
driver in :mod:`services.render.comfyui.backend` does the reading; tests replay recorded
transcripts straight into it.

What ComfyUI 0.3.64 sends about one prompt, to the socket of its ``client_id``::

    execution_start → execution_cached → (executing node → [progress …] [preview frames]
    → [executed output]) … → execution_success | execution_error | execution_interrupted
    → executing node=null  (the history entry is written before this last message)

The socket has no replay: when it was down, or the prompt ended unheard, the tracker
asks for ``/history`` and then ``/queue`` (a newer server's ``/api/jobs/{id}`` answers
both at once, :meth:`PromptTracker.on_job`); a prompt in neither is lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from services.render.backend import (
    FollowPacing,
    PromptEvent,
    PromptFinished,
    PromptLostError,
    PromptPreview,
    PromptProgress,
    PromptQueued,
    PromptStarted,
    StoredResult,
)
from services.render.comfyui.errors import (
    execution_failure,
    history_outcome,
    interrupted,
    saved_image,
)
from services.render.comfyui.messages import QueueSnapshot

__all__ = ["PromptTracker", "ReadHistory", "ReadQueue", "ResultMissedError", "TrackerStep"]


class ResultMissedError(Exception):
    """The prompt succeeded but its socket-delivered result was sent while the socket was
    down: ComfyUI keeps no copy, so the output must be produced again (its inputs are in
    ComfyUI's cache, so only the output node runs)."""


@dataclass(frozen=True)
class ReadQueue:
    """Read ``/queue`` — from a request started now, so a prompt queued or ended a moment
    ago shows — and pass it to :meth:`PromptTracker.on_queue`."""


@dataclass(frozen=True)
class ReadHistory:
    """Read ``/history/{prompt_id}`` and pass it to :meth:`PromptTracker.on_history`."""


TrackerStep = PromptEvent | ReadQueue | ReadHistory


class _Settling(Enum):
    """Where the tracker is in finding out whether an unheard prompt ended."""

    NO = "no"
    HISTORY = "history"  # asked /history
    QUEUE = "queue"  # /history knew nothing: asked /queue
    LAST = "last"  # not queued either: one more look at /history


class PromptTracker:
    """The state of one queued prompt, from ComfyUI's messages.

    Args:
        prompt_id: The prompt.
        backend: The backend's URL, for errors.
        progress_node: The node whose ``progress`` messages are sampling steps.
        output_node: The node whose saved image is the result.
        websocket_output: The output node sends its image over the socket
            (``SaveImageWebsocket``); history then lists no output.
    """

    def __init__(
        self,
        prompt_id: str,
        *,
        backend: str,
        progress_node: str,
        output_node: str,
        websocket_output: bool = False,
    ) -> None:
        self.prompt_id = prompt_id
        self.websocket_output = websocket_output
        self.backend = backend
        self.progress_node = progress_node
        self.output_node = output_node
        self.started = False
        self.finished = False
        self.position: int | None = None
        self.step = 0
        self._settling = _Settling.NO
        self._succeeded = False
        self._result: StoredResult | None = None
        self._interruption: Mapping[str, Any] | None = None
        # A type-4 preview arrives before the ``progress`` of the step it shows.
        self._held: tuple[bytes, str] | None = None

    def begin(self) -> list[TrackerStep]:
        """What to do right after the prompt was queued: learn its position."""
        return [ReadQueue()]

    def quiet_s(self, pacing: FollowPacing) -> float:
        """How long to wait for a message before asking the backend directly."""
        return pacing.history_poll_s if self.started else pacing.queue_poll_s

    # -- websocket -------------------------------------------------------------------

    def on_message(self, kind: str, data: Mapping[str, Any]) -> list[TrackerStep]:
        """A JSON message about this prompt.

        Raises:
            PromptFailedError: ``execution_error``, or the prompt ended interrupted.
        """
        if kind == "execution_start":
            return self._start()
        if kind == "progress" and str(data.get("node")) == self.progress_node:
            self.step = int(data.get("value", 0))
            steps: list[TrackerStep] = [PromptProgress(self.step, int(data.get("max", 0)))]
            if self._held is not None:
                steps.append(PromptPreview(self.step, *self._held))
                self._held = None
            return steps
        if kind == "executed" and str(data.get("node")) == self.output_node:
            self._result = saved_image(data.get("output"))
        elif kind == "execution_success":
            self._succeeded = True
        elif kind == "execution_interrupted":
            self._interruption = data
        elif kind == "execution_error":
            self.finished = True
            raise execution_failure(data, self.backend)
        elif kind == "executing" and data.get("node") is None:
            return self._ended()
        return []

    def on_preview(
        self, image: bytes, mime_type: str, *, node: str | None = None, ahead: bool = False
    ) -> list[TrackerStep]:
        """An image frame of this prompt.

        Args:
            image: The encoded image.
            mime_type: Its type.
            node: The node that sent it, when the frame says (type 4).
            ahead: The frame precedes the ``progress`` message of its step (type 4): it is
                held until that message, so it carries the step it shows.
        """
        if node is not None and node == self.output_node:
            # SaveImageWebsocket: the result itself, never written to the server's disk.
            self._result = StoredResult("", "", "websocket", image)
            return []
        if ahead:
            self._held = (image, mime_type)
            return []
        return [PromptPreview(self.step, image, mime_type)]

    def on_socket(self, connected: bool) -> list[TrackerStep]:
        """The socket went down (nothing to do yet) or came back (messages may be lost)."""
        return self.on_quiet() if connected else []

    def on_quiet(self) -> list[TrackerStep]:
        """Nothing was heard for :meth:`quiet_s`: did the prompt end unheard?"""
        self._settling = _Settling.HISTORY
        return [ReadHistory()]

    # -- HTTP answers ----------------------------------------------------------------

    def on_history(self, entry: Mapping[str, Any] | None) -> list[TrackerStep]:
        """The prompt's ``/history`` entry, ``None`` while ComfyUI has none.

        Raises:
            PromptFailedError: The entry reports a failure or no output.
            PromptLostError: No entry, and the prompt is not queued either.
        """
        if entry is not None:
            if self.websocket_output and self._result is not None:
                return self._finish(self._result)
            if self.websocket_output and (entry.get("status") or {}).get("status_str") == "success":
                self.finished = True
                raise ResultMissedError(self.prompt_id)
            return self._finish(history_outcome(entry, self.backend, self.output_node))
        if self._settling is _Settling.LAST:
            self.finished = True
            raise PromptLostError(
                f"ComfyUI lost prompt {self.prompt_id} (restarted or queue cleared)",
                backend=self.backend,
            )
        self._settling = _Settling.QUEUE
        return [ReadQueue()]

    def on_job(self, job: Mapping[str, Any] | None) -> list[TrackerStep]:
        """The prompt's ``/api/jobs/{id}`` answer (newer servers), ``None`` for a 404: one
        read settles what ``/history`` and ``/queue`` answer together on 0.3.64.

        Raises:
            PromptFailedError: The job failed, was cancelled or saved no image.
            PromptLostError: The server does not know the job.
        """
        self._settling = _Settling.NO
        if job is None:
            self._settling = _Settling.LAST
            return self.on_history(None)
        status = job.get("status")
        if status == "pending":
            return []
        if status == "in_progress":
            return self._start()
        entry = {"status": job.get("execution_status") or {}, "outputs": job.get("outputs") or {}}
        return self.on_history(entry)

    def on_queue(self, snapshot: QueueSnapshot | None) -> list[TrackerStep]:
        """The backend's queue (``None`` when it could not be read).

        Gives the prompt's position when it changed; while settling, a prompt in neither
        the queue nor the history gets one last history look.
        """
        settling, self._settling = self._settling, _Settling.NO
        if snapshot is None:
            return []  # the socket or the next poll will tell
        steps: list[TrackerStep] = []
        position = snapshot.position(self.prompt_id)
        if position is not None:
            if position != self.position:
                self.position = position
                steps.append(PromptQueued(position))
        elif self.prompt_id in snapshot.running:
            steps += self._start()
        elif settling is _Settling.QUEUE:
            self._settling = _Settling.LAST
            steps.append(ReadHistory())
        return steps

    # -- outcomes --------------------------------------------------------------------

    def _start(self) -> list[TrackerStep]:
        """The prompt runs; one that ran at once is reported queued at position 0 first,
        so every prompt has a ``PromptQueued``."""
        if self.started:
            return []
        self.started = True
        if self.position is None:
            self.position = 0
            return [PromptQueued(0), PromptStarted()]
        return [PromptStarted()]

    def _ended(self) -> list[TrackerStep]:
        """``executing`` with no node: the prompt is over; the socket may have told how."""
        if self._interruption is not None:
            self.finished = True
            raise interrupted(self._interruption, self.backend)
        if self._succeeded and self._result is not None:
            return self._finish(self._result)
        if self._succeeded and self.websocket_output:
            self.finished = True
            raise ResultMissedError(self.prompt_id)
        self._settling = _Settling.HISTORY
        return [ReadHistory()]

    def _finish(self, result: StoredResult) -> list[TrackerStep]:
        self.finished = True
        return [PromptFinished(result)]
