"""The prompt tracker replays websocket transcripts recorded from a real ComfyUI 0.3.64.

Each transcript line is one frame as the owner socket (the one whose ``client_id``
queued the prompts) received it. The messages of each prompt are fed, in order, to a
fresh :class:`PromptTracker`; the tests assert the domain events and the outcome.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from services.render.backend import (
    BackendError,
    FollowPacing,
    PromptFailedError,
    PromptFinished,
    PromptLostError,
    PromptPreview,
    PromptProgress,
    PromptQueued,
    PromptStarted,
    StoredResult,
)
from services.render.comfyui.messages import QueueSnapshot, decode_preview_frame
from services.render.comfyui.tracker import (
    PromptTracker,
    ReadHistory,
    ReadQueue,
    ResultMissedError,
    TrackerStep,
)

TRANSCRIPTS = Path(__file__).parents[2] / "fixtures" / "comfyui"
BACKEND = "http://comfyui.test:8188"


@dataclass(frozen=True)
class Frame:
    """A recorded frame: a JSON message, or the first bytes of a binary one."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    binary: bytes = b""


def _owner_frames(name: str) -> Iterator[Frame]:
    for line in (TRANSCRIPTS / name).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("dir") != "server->client" or record.get("socket", "owner") != "owner":
            continue
        if record["kind"] == "text":
            yield Frame(record["msg"]["type"], record["msg"].get("data") or {})
        elif record["kind"] == "binary":
            yield Frame("binary", binary=bytes.fromhex(record["first8_hex"]))


def _prompt_frames(name: str) -> dict[str, list[Frame]]:
    """The frames about each prompt (``status`` and other broadcasts name none); a
    binary frame goes with the prompt of the message before it, as the socket reader
    gives type-1 previews to whatever executes."""
    prompts: dict[str, list[Frame]] = {}
    last: str | None = None
    for frame in _owner_frames(name):
        prompt_id = frame.data.get("prompt_id")
        if prompt_id is not None:
            last = str(prompt_id)
            prompts.setdefault(last, []).append(frame)
        elif frame.kind == "binary" and last is not None:
            prompts[last].append(frame)
    return prompts


@dataclass
class Replay:
    """What a tracker made of one prompt's frames."""

    events: list[TrackerStep]
    error: BackendError | None
    asked: list[TrackerStep]


def _replay(
    prompt_id: str, frames: list[Frame], *, progress_node: str = "8", output_node: str = "6"
) -> Replay:
    """Feeds the frames to a tracker; the prompt starts out first in line."""
    tracker = PromptTracker(
        prompt_id, backend=BACKEND, progress_node=progress_node, output_node=output_node
    )
    events: list[TrackerStep] = []
    asked: list[TrackerStep] = []

    def take(steps: list[TrackerStep]) -> None:
        for step in steps:
            (asked if isinstance(step, ReadQueue | ReadHistory) else events).append(step)

    (begin,) = tracker.begin()
    assert begin == ReadQueue()
    take(tracker.on_queue(QueueSnapshot(pending=(prompt_id,))))
    try:
        for frame in frames:
            if frame.kind == "binary":
                preview = decode_preview_frame(frame.binary)
                if preview is not None:
                    take(tracker.on_preview(preview.image, preview.mime_type))
            else:
                take(tracker.on_message(frame.kind, frame.data))
    except BackendError as e:
        return Replay(events, e, asked)
    return Replay(events, None, asked)


FLUX_ERROR = "ws_transcript_flux_error.jsonl"
INTERRUPT = "ws_transcript_interrupt.jsonl"
MODEL_FREE = "ws_transcript_modelfree.jsonl"
UPSCALE = "ws_transcript_progress_upscale.jsonl"


def test_every_recorded_transcript_is_replayed_here() -> None:
    recorded = {p.name for p in TRANSCRIPTS.glob("*.jsonl")}
    assert recorded == {FLUX_ERROR, INTERRUPT, MODEL_FREE, UPSCALE}


def test_progress_steps_arrive_in_order_and_the_result_comes_from_the_socket() -> None:
    ((prompt_id, frames),) = _prompt_frames(UPSCALE).items()
    replay = _replay(prompt_id, frames, progress_node="4", output_node="6")
    assert replay.error is None
    assert replay.events == [
        PromptQueued(0),
        PromptStarted(),
        *[PromptProgress(step, 9) for step in range(1, 10)],
        PromptFinished(StoredResult("upscale_progress_00001_.png", "probe", "output")),
    ]
    assert replay.asked == []  # the socket told everything: no /history round trip


def test_progress_of_other_nodes_is_not_a_sampling_step() -> None:
    ((prompt_id, frames),) = _prompt_frames(UPSCALE).items()
    replay = _replay(prompt_id, frames, progress_node="2", output_node="6")
    assert not any(isinstance(e, PromptProgress) for e in replay.events)
    assert isinstance(replay.events[-1], PromptFinished)


@pytest.mark.parametrize(
    ("run", "output_node", "result"),
    [
        (0, "6", StoredResult("modelfree_00001_.png", "probe", "output")),
        (1, "6", StoredResult("modelfree_00001_.png", "probe", "output")),  # cached re-run
        (2, "6", StoredResult("modelfree_b_00001_.png", "probe", "output")),
        (3, "save", StoredResult("named_ids_00001_.png", "probe", "output")),
    ],
)
def test_a_successful_prompt_finishes_with_its_output_nodes_image(
    run: int, output_node: str, result: StoredResult
) -> None:
    prompt_id, frames = list(_prompt_frames(MODEL_FREE).items())[run]
    replay = _replay(prompt_id, frames, output_node=output_node)
    assert replay.error is None
    assert replay.events == [PromptQueued(0), PromptStarted(), PromptFinished(result)]


def test_a_text_binary_frame_is_not_a_preview() -> None:
    prompt_id, frames = next(iter(_prompt_frames(MODEL_FREE).items()))
    assert any(f.kind == "binary" for f in frames)
    replay = _replay(prompt_id, frames)
    assert not any(isinstance(e, PromptPreview) for e in replay.events)


def test_a_prompt_queued_without_our_client_id_tells_us_nothing() -> None:
    prompt_id, frames = list(_prompt_frames(MODEL_FREE).items())[4]
    assert {f.kind for f in frames} <= {"progress_state", "binary"}
    replay = _replay(prompt_id, frames)
    assert (replay.events, replay.error) == ([PromptQueued(0)], None)


@pytest.mark.parametrize("run", range(10))
def test_a_failing_node_fails_the_prompt_naming_the_node(run: int) -> None:
    prompt_id, frames = list(_prompt_frames(FLUX_ERROR).items())[run]
    replay = _replay(prompt_id, frames)
    assert replay.events == [PromptQueued(0), PromptStarted()]
    assert isinstance(replay.error, PromptFailedError)
    assert replay.error.reason == "COMFYUI_EXECUTION_ERROR"
    assert not replay.error.out_of_memory
    failing = next(f.data for f in frames if f.kind == "execution_error")
    assert replay.error.metadata == {
        "node_id": failing["node_id"],
        "node_type": failing["node_type"],
        "exception_type": failing["exception_type"],
    }
    assert f"node {failing['node_id']} ({failing['node_type']}) failed" in str(replay.error)


def test_the_recorded_failures_name_the_nodes_that_failed() -> None:
    failed = []
    for prompt_id, frames in _prompt_frames(FLUX_ERROR).items():
        error = _replay(prompt_id, frames).error
        assert isinstance(error, PromptFailedError)
        failed.append(error.metadata["node_type"])
    assert failed.count("CheckpointLoaderSimple") == 9
    assert failed.count("ImageScaleToTotalPixels") == 1


def test_an_out_of_memory_error_is_marked_as_such() -> None:
    tracker = PromptTracker("p", backend=BACKEND, progress_node="8", output_node="9")
    with pytest.raises(PromptFailedError) as failed:
        tracker.on_message(
            "execution_error",
            {
                "prompt_id": "p",
                "node_id": "8",
                "node_type": "KSampler",
                "exception_type": "torch.OutOfMemoryError",
                "exception_message": "CUDA out of memory.",
            },
        )
    assert failed.value.out_of_memory and failed.value.reason == "COMFYUI_OUT_OF_MEMORY"


@pytest.mark.parametrize(("run", "node"), [(0, "11"), (1, "13"), (2, "14")])
def test_an_interrupt_we_did_not_ask_for_fails_the_prompt(run: int, node: str) -> None:
    prompt_id, frames = list(_prompt_frames(INTERRUPT).items())[run]
    replay = _replay(prompt_id, frames)
    assert replay.events == [PromptQueued(0), PromptStarted()]
    assert isinstance(replay.error, PromptFailedError)
    assert replay.error.reason == "COMFYUI_INTERRUPTED"
    assert f"at node {node} (ImageScale)" in str(replay.error)


def test_the_deleted_prompt_of_the_interrupt_transcript_got_no_message() -> None:
    assert [p.split("-")[2] for p in _prompt_frames(INTERRUPT)] == ["A", "C", "D"]


def test_queue_positions_are_reported_when_they_change_and_running_counts_as_zero() -> None:
    tracker = PromptTracker("b", backend=BACKEND, progress_node="8", output_node="9")
    assert tracker.on_queue(QueueSnapshot(running=("x",), pending=("a", "b"))) == [PromptQueued(2)]
    assert tracker.on_queue(QueueSnapshot(running=("x",), pending=("a", "b"))) == []
    assert tracker.on_queue(QueueSnapshot(running=("a",), pending=("b",))) == [PromptQueued(1)]
    assert tracker.on_queue(QueueSnapshot(running=("b",))) == [PromptStarted()]
    assert tracker.started


def test_a_prompt_caught_running_gets_position_zero() -> None:
    tracker = PromptTracker("p", backend=BACKEND, progress_node="8", output_node="9")
    assert tracker.on_queue(QueueSnapshot(running=("p",))) == [PromptQueued(0), PromptStarted()]


def test_a_type1_preview_after_its_progress_is_labelled_with_that_step() -> None:
    tracker = PromptTracker("p", backend=BACKEND, progress_node="8", output_node="9")
    tracker.on_message("progress", {"prompt_id": "p", "node": "8", "value": 3, "max": 4})
    assert tracker.on_preview(b"jpeg", "image/jpeg") == [PromptPreview(3, b"jpeg", "image/jpeg")]


def test_a_type4_preview_waits_for_the_progress_of_its_step() -> None:
    # Subgraph node ids are strings such as "54:73".
    tracker = PromptTracker("p", backend=BACKEND, progress_node="54:73", output_node="54:80")
    assert tracker.on_preview(b"jpeg", "image/jpeg", node="54:73", ahead=True) == []
    steps = tracker.on_message(
        "progress", {"prompt_id": "p", "node": "54:73", "value": 1, "max": 2}
    )
    assert steps == [PromptProgress(1, 2), PromptPreview(1, b"jpeg", "image/jpeg")]


def test_a_save_image_websocket_frame_is_the_result() -> None:
    tracker = PromptTracker(
        "p", backend=BACKEND, progress_node="8", output_node="9", websocket_output=True
    )
    tracker.on_message("execution_start", {"prompt_id": "p"})
    assert tracker.on_preview(b"png", "image/png", node="9", ahead=True) == []
    tracker.on_message("execution_success", {"prompt_id": "p"})
    [finished] = tracker.on_message("executing", {"prompt_id": "p", "node": None})
    assert finished == PromptFinished(StoredResult("", "", "websocket", b"png"))


def test_a_websocket_result_sent_while_the_socket_was_down_is_missed_not_failed() -> None:
    tracker = PromptTracker(
        "p", backend=BACKEND, progress_node="8", output_node="9", websocket_output=True
    )
    with pytest.raises(ResultMissedError):
        tracker.on_history({"status": {"status_str": "success", "messages": []}, "outputs": {}})


def test_quiet_polls_come_from_the_queue_interval_until_the_prompt_runs() -> None:
    tracker = PromptTracker("p", backend=BACKEND, progress_node="8", output_node="9")
    pacing = FollowPacing(queue_poll_s=1.0, history_poll_s=5.0)
    assert tracker.quiet_s(pacing) == 1.0
    tracker.on_message("execution_start", {"prompt_id": "p"})
    assert tracker.quiet_s(pacing) == 5.0


def test_an_end_the_socket_did_not_explain_is_read_from_the_history() -> None:
    tracker = PromptTracker("p", backend=BACKEND, progress_node="8", output_node="9")
    tracker.on_message("execution_start", {"prompt_id": "p"})
    assert tracker.on_message("executing", {"node": None, "prompt_id": "p"}) == [ReadHistory()]
    entry = {
        "status": {"status_str": "success", "completed": True, "messages": []},
        "outputs": {"9": {"images": [{"filename": "a.png", "subfolder": "x", "type": "output"}]}},
    }
    assert tracker.on_history(entry) == [PromptFinished(StoredResult("a.png", "x", "output"))]


def test_a_history_entry_without_the_output_image_is_a_failure() -> None:
    tracker = PromptTracker("p", backend=BACKEND, progress_node="8", output_node="9")
    entry = {"status": {"status_str": "success", "messages": []}, "outputs": {}}
    with pytest.raises(PromptFailedError) as failed:
        tracker.on_history(entry)
    assert failed.value.reason == "COMFYUI_NO_OUTPUT"


def test_a_quiet_prompt_still_queued_keeps_waiting() -> None:
    tracker = PromptTracker("p", backend=BACKEND, progress_node="8", output_node="9")
    assert tracker.on_quiet() == [ReadHistory()]
    assert tracker.on_history(None) == [ReadQueue()]
    assert tracker.on_queue(QueueSnapshot(pending=("p",))) == [PromptQueued(0)]
    assert tracker.on_queue(None) == []  # an unreadable queue: the next poll will tell


def test_a_prompt_in_neither_history_nor_queue_is_lost() -> None:
    tracker = PromptTracker("p", backend=BACKEND, progress_node="8", output_node="9")
    tracker.on_message("execution_start", {"prompt_id": "p"})
    assert tracker.on_socket(connected=False) == []
    assert tracker.on_socket(connected=True) == [ReadHistory()]
    assert tracker.on_history(None) == [ReadQueue()]
    assert tracker.on_queue(QueueSnapshot()) == [ReadHistory()]
    with pytest.raises(PromptLostError):
        tracker.on_history(None)


def test_a_prompt_that_ended_between_the_two_looks_is_found_in_the_history() -> None:
    tracker = PromptTracker("p", backend=BACKEND, progress_node="8", output_node="9")
    tracker.on_quiet()
    tracker.on_history(None)
    assert tracker.on_queue(QueueSnapshot()) == [ReadHistory()]
    entry = {"status": {"status_str": "error", "messages": [["execution_error", {}]]}}
    with pytest.raises(PromptFailedError) as failed:
        tracker.on_history(entry)
    assert failed.value.reason == "COMFYUI_EXECUTION_ERROR"


def test_a_newer_servers_job_status_settles_a_quiet_prompt_in_one_read() -> None:
    tracker = PromptTracker("p", backend=BACKEND, progress_node="8", output_node="9")
    assert tracker.on_job({"id": "p", "status": "pending"}) == []
    assert tracker.on_job({"id": "p", "status": "in_progress"}) == [
        PromptQueued(0),
        PromptStarted(),
    ]
    image = {"filename": "r_00001_.png", "subfolder": "imagegen", "type": "output"}
    done = {
        "id": "p",
        "status": "completed",
        "execution_status": {"status_str": "success", "messages": []},
        "outputs": {"9": {"images": [image]}},
    }
    assert tracker.on_job(done) == [
        PromptFinished(StoredResult("r_00001_.png", "imagegen", "output"))
    ]


def test_a_job_the_newer_server_does_not_know_is_lost() -> None:
    tracker = PromptTracker("p", backend=BACKEND, progress_node="8", output_node="9")
    with pytest.raises(PromptLostError):
        tracker.on_job(None)
