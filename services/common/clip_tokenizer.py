"""The CLIP text tokenizer, to measure prompts in the tokens Flux's text encoders see.

Flux encodes the prompt twice: CLIP-L (its pooled vector; 77 tokens, the first 75 of the
prompt) and T5-XXL (the sequence the model attends to; Flux-dev was trained with 512
tokens). A prompt budget in words is a guess; this is the byte-level BPE of OpenAI's
CLIP, so the planner counts what the encoder will actually get.

It is a faithful port of CLIP's ``simple_tokenizer`` with two documented differences,
both irrelevant to English prompts: the text is not passed through ``ftfy`` (only NFC
normalisation and HTML unescaping), and the pre-tokenising pattern uses the standard
``re`` module, where ``\\p{L}`` becomes ``[^\\W\\d_]`` (which also admits the rare
non-decimal numerals such as ``²``).

The merges ship in ``clip_merges.json`` beside this module (MIT licence, OpenAI; the
licence text is inside the file)::

    tokenizer = default_tokenizer()
    tokenizer.count("a green velvet sofa")   # 4
    tokenizer.encode("A person riding a motorcycle")  # [320, 2533, 6765, 320, 10297]
"""

from __future__ import annotations

import functools
import heapq
import html
import itertools
import json
import re
import unicodedata
from importlib import resources

__all__ = ["ClipTokenizer", "default_tokenizer"]

_MERGES_FILE = "clip_merges.json"

# CLIP's pattern with the `regex`-only classes spelled for `re` (see the module docstring).
_PRETOKENIZE = re.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+",
    re.IGNORECASE,
)
_WHITESPACE = re.compile(r"\s+")
_END_OF_WORD = "</w>"
_CACHED_PIECES = 100_000
_CACHED_PIECE_CHARS = 64
_ROUNDS_BEFORE_HEAP = 8
_LONG_PIECE = 64


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible map of the 256 byte values to printable characters."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes), strict=True))


class ClipTokenizer:
    """CLIP's byte-level BPE over a list of merges.

    Args:
        merges: The merge rules in rank order, each ``"left right"``.
    """

    def __init__(self, merges: list[str]) -> None:
        self._byte_encoder = _bytes_to_unicode()
        pairs = [tuple(merge.split()) for merge in merges]
        vocab = list(self._byte_encoder.values())
        vocab += [symbol + _END_OF_WORD for symbol in vocab]
        vocab += ["".join(pair) for pair in pairs]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self._encoder = {symbol: index for index, symbol in enumerate(vocab)}
        self._ranks: dict[tuple[str, ...], int] = {pair: rank for rank, pair in enumerate(pairs)}
        self._cache: dict[str, tuple[str, ...]] = {}

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without the start and end markers.

        Args:
            text: Any text.

        Returns:
            The ids CLIP's tokenizer gives (before padding or truncation to 77).
        """
        ids: list[int] = []
        for piece in self._pieces(text):
            ids.extend(self._encoder[symbol] for symbol in self._bpe(piece))
        return ids

    def count(self, text: str) -> int:
        """How many tokens ``text`` takes (start and end markers not counted)."""
        return sum(len(self._bpe(piece)) for piece in self._pieces(text))

    def _pieces(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFC", html.unescape(html.unescape(text)))
        text = _WHITESPACE.sub(" ", text).strip().lower()
        return [
            "".join(self._byte_encoder[b] for b in piece.encode("utf-8"))
            for piece in _PRETOKENIZE.findall(text)
        ]

    def _bpe(self, piece: str) -> tuple[str, ...]:
        cached = self._cache.get(piece)
        if cached is not None:
            return cached
        word = _merge(piece, self._ranks)
        # Prompts repeat few distinct words; the cache stays small in practice, but a
        # hostile stream of unique (or endless) words must not grow it without bound.
        if len(piece) <= _CACHED_PIECE_CHARS and len(self._cache) < _CACHED_PIECES:
            self._cache[piece] = word
        return word


def _merge(piece: str, ranks: dict[tuple[str, ...], int]) -> tuple[str, ...]:
    """CLIP's BPE of one pre-tokenised piece: round by round, every occurrence of the
    lowest-ranked adjacent pair is merged, left to right.

    A round costs a pass over the piece, which is cheap while rounds are few (any short
    word, or a long run of one repeated pattern). A long piece still merging after
    :data:`_ROUNDS_BEFORE_HEAP` rounds (a pasted stream of varied letters, where rounds
    would number in the thousands) is finished by :func:`_merge_by_heap` instead, which
    gives the same result in O(n log n).
    """
    word: tuple[str, ...] = (*piece[:-1], piece[-1] + _END_OF_WORD)
    rounds = 0
    while len(word) > 1:
        if rounds >= _ROUNDS_BEFORE_HEAP and len(word) > _LONG_PIECE:
            return _merge_by_heap(list(word), ranks)
        best = min(set(itertools.pairwise(word)), key=lambda pair: ranks.get(pair, len(ranks)))
        if best not in ranks:
            break
        first, second = best
        merged: list[str] = []
        i = 0
        while i < len(word):
            if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                merged.append(first + second)
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = tuple(merged)
        rounds += 1
    return word


def _merge_by_heap(symbols: list[str], ranks: dict[tuple[str, ...], int]) -> tuple[str, ...]:
    """The rest of :func:`_merge`'s rounds, with the pairs waiting in a heap.

    The heap orders pairs by (rank, position) over a linked list of symbols: the same
    merges happen in the same order as round by round, because a merge only creates pairs
    that contain its new symbol, and every rule containing a symbol ranks after the rule
    that made it, so nothing a merge creates can jump ahead of the round under way.
    """
    following = [*range(1, len(symbols)), -1]
    preceding = [-1, *range(len(symbols) - 1)]
    heap = [
        (rank, i)
        for i, pair in enumerate(itertools.pairwise(symbols))
        if (rank := ranks.get(pair)) is not None
    ]
    heapq.heapify(heap)
    while heap:
        rank, i = heapq.heappop(heap)
        j = following[i]
        # Entries of pairs a merge has since changed are skipped when they come up.
        if j < 0 or not symbols[i] or ranks.get((symbols[i], symbols[j])) != rank:
            continue
        symbols[i] += symbols[j]
        symbols[j] = ""
        following[i] = following[j]
        if following[i] >= 0:
            preceding[following[i]] = i
            rank_after = ranks.get((symbols[i], symbols[following[i]]))
            if rank_after is not None:
                heapq.heappush(heap, (rank_after, i))
        if preceding[i] >= 0:
            rank_before = ranks.get((symbols[preceding[i]], symbols[i]))
            if rank_before is not None:
                heapq.heappush(heap, (rank_before, preceding[i]))
    return tuple(symbol for symbol in symbols if symbol)


@functools.cache
def default_tokenizer() -> ClipTokenizer:
    """The tokenizer over the merges shipped with the package (loaded once, in milliseconds)."""
    data = json.loads(resources.files(__package__).joinpath(_MERGES_FILE).read_text("utf-8"))
    merges = data["merges"]
    if not isinstance(merges, list) or not all(isinstance(m, str) for m in merges):
        raise ValueError(f"{_MERGES_FILE} holds no list of merges")
    return ClipTokenizer(merges)
