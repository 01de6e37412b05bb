"""Every text sent to a model fits its context window: estimates, cuts and their notes."""

from __future__ import annotations

import logging

import pytest

from services.common.llm import ChatMessage
from services.common.llm.context import estimate_tokens, fit_messages, input_budget
from services.common.llm.settings import ChatModelSettings


class _Settings(ChatModelSettings):
    model: str = "gpt-oss:20b"
    num_ctx: int = 8192
    num_predict: int = 3072
    temperature: float = 0.5


def test_ascii_counts_a_token_per_three_characters_and_other_scripts_one_per_character() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcdef") == 2
    assert estimate_tokens("abcdefg") == 3
    assert estimate_tokens("диван") == 5
    assert estimate_tokens("沙发 sofa") == 2 + 2


def test_the_budget_leaves_room_for_the_answer_and_the_template() -> None:
    assert input_budget(8192, 3072) == 8192 - 3072 - 128
    # An answer budget as large as the window still leaves a quarter for the question.
    assert input_budget(4096, 4096) == 1024


def test_messages_that_fit_are_sent_unchanged() -> None:
    messages = (ChatMessage("system", "Answer in JSON."), ChatMessage("user", "a sofa"))
    assert fit_messages(messages, 100) == (messages, ())


def test_an_oversized_user_message_loses_its_tail_and_the_system_prompt_stays_whole(
    caplog: pytest.LogCaptureFixture,
) -> None:
    system = ChatMessage("system", "S" * 300)
    user = ChatMessage("user", "word " * 13_000)  # 65,000 characters
    with caplog.at_level(logging.WARNING, logger="services.common.llm.context"):
        (kept_system, kept_user), notes = fit_messages((system, user), 1000)
    assert kept_system == system
    assert kept_user.content.endswith(" … [cut]")
    assert kept_user.content.startswith("word word")
    assert estimate_tokens(kept_system.content) + estimate_tokens(kept_user.content) <= 1000
    assert len(notes) == 1
    assert "user message #2 has 65000 characters" in notes[0]
    assert "1000 tokens" in notes[0]
    assert [r.cut for r in caplog.records] == list(notes)  # type: ignore[attr-defined]


def test_the_longest_message_is_cut_first_and_another_only_when_still_needed() -> None:
    messages = (
        ChatMessage("system", "rules"),
        ChatMessage("user", "q" * 900),
        ChatMessage("assistant", "a" * 3000),
        ChatMessage("user", "again"),
    )
    fitted, notes = fit_messages(messages, 700)
    assert fitted[1] == messages[1] and fitted[3] == messages[3]
    assert len(fitted[2].content) < 3000
    assert len(notes) == 1 and "assistant message #3" in notes[0]
    assert sum(estimate_tokens(m.content) for m in fitted) <= 700


def test_a_non_latin_text_is_cut_by_its_own_cost() -> None:
    user = ChatMessage("user", "диван " * 5000)
    (fitted,), _ = fit_messages((user,), 500)
    assert estimate_tokens(fitted.content) <= 500
    assert len(fitted.content) > 400


def test_every_request_a_service_builds_is_fitted_and_says_what_was_cut() -> None:
    settings = _Settings()
    request = settings.chat_request(
        [ChatMessage("system", "plan"), ChatMessage("user", "x " * 40_000)]
    )
    budget = input_budget(settings.num_ctx, settings.num_predict)
    assert sum(estimate_tokens(m.content) for m in request.messages) <= budget
    assert len(request.cut) == 1 and "80000 characters" in request.cut[0]
    assert request.messages[0].content == "plan"
