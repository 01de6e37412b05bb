"""The CLIP tokenizer the prompt budget is counted with."""

from __future__ import annotations

from services.common.clip_tokenizer import default_tokenizer


def test_tokens_match_clip_for_a_reference_sentence() -> None:
    # CLIP's own tokenizer gives these ids for this sentence.
    assert default_tokenizer().encode("A person riding a motorcycle") == [
        320,
        2533,
        6765,
        320,
        10297,
    ]


def test_counting_is_case_and_whitespace_insensitive() -> None:
    tokenizer = default_tokenizer()
    assert tokenizer.count("A  Green\tSOFA") == tokenizer.count("a green sofa") == 3


def test_counts_add_up_across_whitespace() -> None:
    tokenizer = default_tokenizer()
    first, second = "A dark green velvet sofa.", "Soft daylight, photorealistic!"
    assert tokenizer.count(f"{first} {second}") == tokenizer.count(first) + tokenizer.count(second)


def test_cyrillic_text_is_counted_in_bytes_not_refused() -> None:
    assert default_tokenizer().count("диван") > 1
