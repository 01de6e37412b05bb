"""The protocol's value types: requests as log fields, seeds, images, capabilities."""

from __future__ import annotations

import pytest

from services.common.llm import ChatImage, ChatMessage, ChatRequest, ChatResponse, ModelInfo


def _request() -> ChatRequest:
    return ChatRequest(
        model="llava",
        messages=(
            ChatMessage("system", "Answer as JSON."),
            ChatMessage("user", "look", images=(ChatImage("QUJD" * 100),)),
        ),
        json_schema={"type": "object"},
        seed=42,
        keep_alive="10m",
    )


def test_for_log_replaces_image_bytes_by_their_size() -> None:
    request = _request()
    logged = request.for_log()
    assert logged["messages"] == [
        {"role": "system", "content": "Answer as JSON."},
        {"role": "user", "content": "look", "images": ["<400 base64 chars>"]},
    ]
    assert (logged["seed"], logged["keep_alive"], logged["json_schema"]) == (42, "10m", True)
    assert request.messages[1].images[0].base64 == "QUJD" * 100


def test_with_seed_changes_only_the_seed() -> None:
    request = _request()
    moved = request.with_seed(43)
    assert moved.seed == 43 and request.seed == 42
    assert moved.messages == request.messages and moved.json_schema == request.json_schema


def test_an_image_is_plain_base64_with_a_jpeg_type_by_default() -> None:
    assert ChatImage("QUJD").media_type == "image/jpeg"
    with pytest.raises(ValueError, match="data: URI"):
        ChatImage("data:image/png;base64,QUJD")


def test_capabilities_are_unknown_when_the_server_does_not_say() -> None:
    assert ModelInfo("m").has_capability("vision") is None
    assert ModelInfo("m", ("completion", "vision")).has_capability("vision") is True
    assert ModelInfo("m", ("completion",)).has_capability("vision") is False


def test_the_metrics_of_an_answer_are_log_fields() -> None:
    answer = ChatResponse("{}", finish_reason="stop", completion_tokens=7, timings={"load_ms": 1.5})
    assert answer.metrics_for_log() == {
        "finish_reason": "stop",
        "prompt_tokens": None,
        "completion_tokens": 7,
        "load_ms": 1.5,
    }
