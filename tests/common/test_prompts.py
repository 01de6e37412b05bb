"""Prompt validation: cleaning, weighting syntax, the token budget, never empty."""

from __future__ import annotations

import pytest

from services.common.clip_tokenizer import default_tokenizer
from services.common.prompts import (
    EmptyPromptError,
    balance_weighting,
    clean_text,
    fit_to_budget,
    validate_prompt,
)

COUNT = default_tokenizer().count


def test_control_and_invisible_characters_are_removed() -> None:
    assert clean_text("a\x00 red\u200b sofa\x1b[31m\u202e") == "a red sofa[31m"


def test_whitespace_is_normalised() -> None:
    assert clean_text("  a\tred\n\nsofa \r\n ") == "a red sofa"


def test_unbalanced_brackets_are_removed_and_balanced_weights_kept() -> None:
    text, notes = balance_weighting("(red:1.2) sofa) in a (bright room")
    assert text == "(red:1.2) sofa in a bright room"
    assert notes


def test_escaped_brackets_are_literal_text() -> None:
    text, notes = balance_weighting(r"a sign saying \(open\)")
    assert text == r"a sign saying \(open\)"
    assert notes == []


def test_extreme_weights_are_clamped() -> None:
    text, notes = balance_weighting("(red:9.5) sofa")
    assert text == "(red:2) sofa"
    assert notes


def test_embedding_syntax_is_defused() -> None:
    text, notes = balance_weighting("a sofa, embedding:../../secret")
    assert "embedding:" not in text
    assert notes


def test_a_prompt_within_the_budget_is_unchanged() -> None:
    prompt = validate_prompt("A green velvet sofa. Soft light.", budget=77, count=COUNT)
    assert prompt.text == "A green velvet sofa. Soft light."
    assert prompt.warnings == ()
    assert prompt.tokens == COUNT(prompt.text)


def test_a_long_prompt_is_cut_at_a_sentence_boundary_with_a_warning() -> None:
    sentences = [f"Sentence number {i} describes the sofa in the room." for i in range(100)]
    prompt = validate_prompt(" ".join(sentences), budget=60, count=COUNT)
    assert prompt.tokens <= 60
    assert prompt.text.endswith(".")
    assert prompt.text in " ".join(sentences)
    assert any("sentence boundary" in w for w in prompt.warnings)


def test_a_single_overlong_sentence_is_cut_at_a_word() -> None:
    text = "a sofa " * 200
    shortened, tokens, boundary = fit_to_budget(text.strip(), 30, COUNT)
    assert tokens <= 30
    assert boundary == "word"
    assert shortened.startswith("a sofa a sofa")


def test_a_word_longer_than_the_budget_is_cut_at_a_character() -> None:
    shortened, tokens, boundary = fit_to_budget("x" * 5000, 10, COUNT)
    assert shortened == "x" * len(shortened)
    assert 0 < tokens <= 10
    assert boundary == "character"


def test_a_cut_never_strands_half_a_bracket() -> None:
    prompt = validate_prompt(
        "A sofa. (A very " + "long " * 200 + "clause.)", budget=20, count=COUNT
    )
    assert prompt.text.count("(") == prompt.text.count(")")


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01", "(((", "\u200b\u200b"])
def test_a_prompt_with_nothing_printable_is_refused(text: str) -> None:
    with pytest.raises(EmptyPromptError):
        validate_prompt(text, budget=77, count=COUNT)


def test_every_change_is_named_in_a_warning() -> None:
    prompt = validate_prompt(
        "(masterpiece:9.5), embedding:evil, a\x00 red sofa",
        budget=77,
        count=COUNT,
        what="positive prompt",
    )
    assert prompt.text == "(masterpiece:2), a red sofa"
    assert prompt.warnings == (
        "removed 1 control or invisible character(s) in the positive prompt",
        "removed the embedding reference(s) embedding:evil in the positive prompt",
        "clamped the weight of (masterpiece:9.5) to 2 in the positive prompt",
    )


def test_an_embedding_reference_inside_a_weight_leaves_no_syntax_behind() -> None:
    text, notes = balance_weighting("a sofa, (embedding:evil:1.2), soft light")
    assert text == "a sofa, soft light"
    assert notes


def test_a_prompt_that_is_only_an_embedding_reference_is_refused() -> None:
    with pytest.raises(EmptyPromptError):
        validate_prompt("embedding:evil", budget=77, count=COUNT)
