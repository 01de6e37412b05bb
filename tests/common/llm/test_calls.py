"""call_model_with_retries against a scripted Ollama: retries, seeds, deadline, 404, logs.

The retrying call speaks only the chat-model protocol; the Ollama adapter over
``httpx.MockTransport`` stands for any server here.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from services.common.errors import BackendUnavailableError, FailedPreconditionError
from services.common.llm import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    ModelNotFoundError,
    ModelRequestError,
    ModelUnavailableError,
    Release,
    UnusableAnswerError,
    call_model_with_retries,
    model_not_found,
    release_model,
)
from services.common.llm.ollama import OllamaClient
from services.common.llm.openai import RELEASE_UNSUPPORTED, OpenAICompatibleClient
from services.common.retry import RetryPolicy

URL = "http://ollama.test:11434"
LOGGER = "tests.common.llm.test_calls"
FAST = RetryPolicy(max_attempts=3, initial_backoff_s=0.0, max_backoff_s=0.0, jitter=0.0)

Reply = Callable[[], httpx.Response]


def answer(content: str) -> httpx.Response:
    """A 200 chat stream of one done line carrying ``content``."""
    line = {
        "message": {"role": "assistant", "content": content},
        "done": True,
        "done_reason": "stop",
        "eval_count": 7,
    }
    return httpx.Response(200, text=json.dumps(line) + "\n")


def status(code: int, error: str = "boom") -> httpx.Response:
    return httpx.Response(code, json={"error": error})


@dataclass
class Script:
    """Answers each chat with the next reply (the last one repeats); keeps what was asked."""

    replies: list[Reply]
    bodies: list[dict[str, Any]] = field(default_factory=list)
    read_timeouts: list[float] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        self.read_timeouts.append(request.extensions["timeout"]["read"])
        return self.replies[min(len(self.bodies), len(self.replies)) - 1]()

    @property
    def seeds(self) -> list[Any]:
        return [body["options"].get("seed") for body in self.bodies]


def question() -> ChatRequest:
    return ChatRequest(model="llava", messages=(ChatMessage("user", "How many?"),), seed=42)


def count(reply: ChatResponse) -> int:
    """Reads an answer that must be a number; anything else is an unusable answer."""
    if not reply.content.isdigit():
        raise UnusableAnswerError(f"not a number: {reply.content!r}")
    return int(reply.content)


def script(*replies: Reply) -> Script:
    return Script(list(replies))


async def ask(
    answers: Script,
    *,
    request: ChatRequest | None = None,
    policy: RetryPolicy = FAST,
    deadline_in_s: float = 30.0,
    call_timeout_s: float = 10.0,
    **kwargs: Any,
) -> int:
    """Counts with the helper against ``answers``, under the test logger."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(answers.handle)) as http:
        return await call_model_with_retries(
            OllamaClient(URL, client=http),
            request or question(),
            count,
            policy=policy,
            deadline=time.monotonic() + deadline_in_s,
            call_timeout_s=call_timeout_s,
            logger=logging.getLogger(LOGGER),
            label="counting model",
            **kwargs,
        )


async def test_a_usable_first_answer_is_parsed_and_not_asked_again() -> None:
    answers = script(lambda: answer("3"))
    assert await ask(answers) == 3
    assert len(answers.bodies) == 1
    assert answers.bodies[0]["model"] == "llava"


async def test_an_unavailable_ollama_is_asked_again_with_the_same_seed() -> None:
    answers = script(lambda: status(503), lambda: status(500), lambda: answer("5"))
    assert await ask(answers) == 5
    assert answers.seeds == [42, 42, 42]


async def test_after_an_unusable_answer_the_seed_moves_on() -> None:
    answers = script(lambda: answer("many"), lambda: status(500), lambda: answer("4"))
    assert await ask(answers) == 4
    # The failure of Ollama itself does not move the seed; the bad answer did.
    assert answers.seeds == [42, 43, 43]


async def test_a_request_without_a_seed_is_sent_without_one() -> None:
    request = ChatRequest(model="llava", messages=(ChatMessage("user", "?"),))
    answers = script(lambda: answer("x"), lambda: answer("1"))
    await ask(answers, request=request)
    assert answers.seeds == [None, None]


async def test_the_last_error_is_raised_when_the_attempts_run_out() -> None:
    answers = script(lambda: answer("never"))
    with pytest.raises(UnusableAnswerError, match="not a number"):
        await ask(answers)
    assert len(answers.bodies) == FAST.max_attempts


async def test_a_refused_request_is_not_asked_again() -> None:
    answers = script(lambda: status(400, "invalid think value"))
    with pytest.raises(ModelRequestError):
        await ask(answers)
    assert len(answers.bodies) == 1


async def test_a_model_that_is_not_pulled_fails_the_precondition_without_retries() -> None:
    answers = script(lambda: status(404, "model 'llava' not found"))
    with pytest.raises(FailedPreconditionError) as caught:
        await ask(answers)
    assert len(answers.bodies) == 1
    error = caught.value
    assert isinstance(error.__cause__, ModelNotFoundError)
    assert "ollama pull llava" in error.message
    assert error.reason == "MODEL_NOT_FOUND"
    assert error.metadata == {"backend": "ollama", "model": "llava"}
    (violation,) = error.violations
    assert (violation.type, violation.subject) == ("OLLAMA_MODEL", "llava")
    assert violation.description == "run `ollama pull llava` on the Ollama host"


def test_model_not_found_names_the_model_as_requested() -> None:
    error = model_not_found(
        ModelNotFoundError("gpt-oss:20b", backend="ollama", server="Ollama", remedy="pull it")
    )
    assert error.metadata["model"] == "gpt-oss:20b"
    assert error.violations[0].subject == "gpt-oss:20b"


def test_model_not_found_on_an_openai_server_names_its_backend_and_remedy() -> None:
    missing = ModelNotFoundError(
        "qwen", backend="openai", server="the server", remedy="configure one of: llama"
    )
    error = model_not_found(missing)
    assert error.metadata == {"backend": "openai", "model": "qwen"}
    (violation,) = error.violations
    assert (violation.type, violation.description) == ("OPENAI_MODEL", "configure one of: llama")


async def test_no_pause_is_started_that_would_end_after_the_deadline() -> None:
    slow = RetryPolicy(max_attempts=5, initial_backoff_s=1.0, jitter=0.0)
    answers = script(lambda: status(503))
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError):
        await ask(answers, policy=slow, deadline_in_s=0.5)
    assert time.monotonic() - started < 0.5
    assert len(answers.bodies) == 1


async def test_each_attempt_gets_at_most_what_is_left_of_the_deadline() -> None:
    near = script(lambda: answer("1"))
    await ask(near, deadline_in_s=2.0, call_timeout_s=60.0)
    (read_timeout,) = near.read_timeouts
    assert 1.0 < read_timeout <= 2.0
    far = script(lambda: answer("1"))
    await ask(far, deadline_in_s=60.0, call_timeout_s=3.0)
    assert far.read_timeouts == [3.0]


async def test_every_attempt_is_logged_with_the_label_and_the_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        await ask(
            script(lambda: answer("many"), lambda: answer("2")), log_fields={"phase": "count"}
        )
    lines = [(r.getMessage(), r.__dict__) for r in caplog.records if r.name == LOGGER]
    assert [message for message, _ in lines] == [
        "counting model request",
        "counting model reply",
        "counting model attempt failed",
        "counting model request",
        "counting model reply",
    ]
    for _, fields in lines:
        assert fields["phase"] == "count" and fields["model"] == "llava"
    assert [fields["attempt"] for _, fields in lines] == [1, 1, 1, 2, 2]
    request, reply, failed = (fields for _, fields in lines[:3])
    assert request["request"]["seed"] == 42
    assert request["timeout_s"] > 0
    assert reply["content"] == "many" and reply["completion_tokens"] == 7
    assert reply["reasoning_chars"] == 0
    assert failed["error_type"] == "UnusableAnswerError" and failed["retryable"] is True
    assert lines[3][1]["request"]["seed"] == 43


async def test_the_request_line_can_log_only_part_of_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        await ask(script(lambda: answer("1")), request_log=lambda chat: {"seed": chat.seed})
    (request,) = [r.__dict__ for r in caplog.records if r.getMessage().endswith(" request")]
    assert request["seed"] == 42
    assert "request" not in request


async def test_a_release_the_server_cannot_be_asked_for_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        with pytest.raises(BackendUnavailableError, match="could not release 'llava'") as caught:
            await release_model(OllamaClient(URL, client=http), "llava", timeout_s=1.0)
    assert caught.value.backend == "ollama"


async def test_a_server_that_cannot_unload_says_so_instead_of_failing() -> None:
    client = OpenAICompatibleClient("http://vllm.test:8000/v1")
    try:
        release = await release_model(client, "qwen", timeout_s=1.0)
    finally:
        await client.aclose()
    assert release == Release(unsupported=RELEASE_UNSUPPORTED)
