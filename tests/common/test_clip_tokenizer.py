"""The CLIP tokenizer the prompt budget is counted with."""

from __future__ import annotations

import itertools
import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.clip_tokenizer import _merge, _merge_by_heap, default_tokenizer


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


def _clip_rounds(piece: str, ranks: dict[tuple[str, ...], int]) -> tuple[str, ...]:
    """CLIP's ``simple_tokenizer.bpe`` as written: round by round, every occurrence of the
    lowest-ranked pair (the reference the heap-ordered merge must agree with)."""
    word: tuple[str, ...] = (*piece[:-1], piece[-1] + "</w>")
    while len(word) > 1:
        best = min(itertools.pairwise(word), key=lambda pair: ranks.get(pair, len(ranks)))
        if best not in ranks:
            break
        merged: list[str] = []
        i = 0
        while i < len(word):
            if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                merged.append(word[i] + word[i + 1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = tuple(merged)
    return word


_PIECES = st.one_of(
    st.text(alphabet="aeinorst", min_size=1, max_size=40),  # many repeated pairs
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz'-.,!", min_size=1, max_size=30),
    st.sampled_from(["a", "aaaa", "aaaaaaaaa", "mississippi", "photorealistic", "...!!!", "ssss"]),
)


@settings(max_examples=300, deadline=None)
@given(text=_PIECES)
def test_merges_agree_with_clips_round_by_round_bpe(text: str) -> None:
    tokenizer = default_tokenizer()
    ranks = tokenizer._ranks
    for piece in tokenizer._pieces(text):
        expected = _clip_rounds(piece, ranks)
        assert _merge(piece, ranks) == expected, piece
        # The heap that finishes long pieces, here from the first round on.
        assert _merge_by_heap([*piece[:-1], piece[-1] + "</w>"], ranks) == expected, piece


@pytest.mark.parametrize(
    "text",
    [
        "a" * 5000,
        "я" * 3000,
        "🙂" * 500,
        "".join(random.Random(7).choice(string.ascii_lowercase) for _ in range(3000)),
        "".join(random.Random(8).choice("aeinorst'-") for _ in range(3000)),
    ],
    ids=["one-letter", "cyrillic", "emoji", "random-letters", "few-letters"],
)
def test_a_pasted_run_without_spaces_is_merged_as_clip_merges_it(text: str) -> None:
    tokenizer = default_tokenizer()
    for piece in tokenizer._pieces(text):
        assert _merge(piece, tokenizer._ranks) == _clip_rounds(piece, tokenizer._ranks)
