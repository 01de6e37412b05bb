"""Prompt validation: what every prompt passes before it reaches a text encoder.

The one set of rules for every prompt, whoever wrote it: the planner's model, its keyword
rules, or a caller (an approved plan, a prompt override at the gateway). A prompt is

1. cleaned: Unicode NFC; control, format (zero-width, bidi), surrogate and private-use
   characters removed; every run of whitespace one space; no leading or trailing space;
2. made safe for ComfyUI's prompt parser: ``embedding:name`` references (which make
   ComfyUI load a file) are removed, parentheses and brackets that do not pair up are
   dropped (an open ``(`` would weight the rest of the prompt), and explicit weights
   ``(text:w)`` are held to 0–2;
3. kept within the text encoders' budget, counted in CLIP tokens (see
   :mod:`services.common.clip_tokenizer`): a longer prompt is cut at the last sentence
   boundary that fits (a clause or word boundary when even the first sentence is too
   long);
4. never empty: an empty result is reported to the caller (:class:`EmptyPromptError`),
   who decides what to do (the planner retries the model or falls back to the rules; the
   gateway refuses the request).

Every change but plain whitespace clean-up comes back as a warning that names what was
changed, e.g. ``clamped the weight of (masterpiece:9.5) to 2 in the positive prompt``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "DEFAULT_PROMPT_TOKEN_BUDGET",
    "EmptyPromptError",
    "ValidatedPrompt",
    "balance_weighting",
    "clean_text",
    "fit_to_budget",
    "validate_prompt",
]

DEFAULT_PROMPT_TOKEN_BUDGET = 400
"""Most CLIP tokens in a prompt unless configured: Flux-dev's T5 encoder was trained on
512 tokens and splits English a little finer than CLIP's BPE, hence the margin."""

_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})
_WHITESPACE = re.compile(r"\s+")
_WEIGHT = re.compile(r"\(([^():]*):\s*([+-]?\d+(?:\.\d+)?|[+-]?\.\d+)\s*\)")
_MAX_WEIGHT = 2.0
# ComfyUI takes a word starting with "embedding:" as a file name up to the next space.
_EMBEDDING = re.compile(r"\bembedding:[^\s,()\[\]]*", re.IGNORECASE)
_EMPTY_LIST_ITEMS = re.compile(r"\s*,(?:\s*,)+")
_EMPTY_GROUP = re.compile(r"(?<!\\)\(\s*\)|(?<!\\)\[\s*\]")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_CLAUSE_END = re.compile(r"(?<=[,:])\s+")
_TRAILING_JOINERS = re.compile(r"[\s,;:\-–—]+$")
_PAIRS = {")": "(", "]": "["}
_SPLITTERS = (("sentence", _SENTENCE_END), ("clause", _CLAUSE_END), ("word", _WHITESPACE))
_SHOWN = 5  # examples named in one warning


class EmptyPromptError(ValueError):
    """Nothing printable was left of a prompt after cleaning."""


@dataclass(frozen=True)
class ValidatedPrompt:
    """A prompt that passed validation.

    Attributes:
        text: The prompt to send on.
        tokens: Its length in CLIP tokens.
        warnings: What was changed that a caller should know (removed characters and
            syntax, clamped weights, truncation), one sentence per change naming the text
            concerned and the prompt; plain whitespace clean-up is not reported.
        changes: The same changes without the prompt's name, to list in one message.
    """

    text: str
    tokens: int
    warnings: tuple[str, ...]
    changes: tuple[str, ...] = ()


def clean_text(text: str) -> str:
    """Normalises ``text`` and removes invisible and control characters.

    Args:
        text: Any text.

    Returns:
        NFC text without control, format, surrogate or private-use characters, with
        whitespace runs (tabs and newlines included) collapsed to one space and stripped.
    """
    return _clean(text)[0]


def _clean(text: str) -> tuple[str, int]:
    """:func:`clean_text`, plus how many characters other than whitespace it removed."""
    text = unicodedata.normalize("NFC", text)
    # Tabs and newlines are control characters too, but they separate words: make them
    # spaces before the rest of the control characters go.
    text = _WHITESPACE.sub(" ", text)
    if text.isprintable():  # in C: no character of a removed category (nor any other odd one)
        return text.strip(), 0
    kept = "".join(ch for ch in text if unicodedata.category(ch) not in _REMOVED_CATEGORIES)
    return _WHITESPACE.sub(" ", kept).strip(), len(text) - len(kept)


def _named(items: list[str]) -> str:
    shown = ", ".join(dict.fromkeys(items[:_SHOWN]))
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _tidy(text: str) -> str:
    """Whitespace, empty brackets and the commas a removal left behind."""
    text = _EMPTY_GROUP.sub(" ", text)
    text = _EMPTY_LIST_ITEMS.sub(",", _WHITESPACE.sub(" ", text))
    return text.strip(" ,")


def balance_weighting(text: str) -> tuple[str, list[str]]:
    """Makes ComfyUI's weighting syntax well-formed and harmless.

    ``embedding:name`` references are removed (no text may make ComfyUI load an
    embedding file), unpaired ``(``, ``)``, ``[`` and ``]`` are dropped (escaped ``\\(``
    and ``\\)`` are literal text and stay), and explicit weights outside 0–2 are clamped.

    Args:
        text: A cleaned prompt.

    Returns:
        The repaired prompt and a note per kind of repair, naming what was changed
        (``"clamped the weight of (red:9.5) to 2"``).
    """
    notes: list[str] = []
    embeddings = [match.group(0) for match in _EMBEDDING.finditer(text)]
    if embeddings:
        text = _tidy(_EMBEDDING.sub(" ", text))
        notes.append(f"removed the embedding reference(s) {_named(embeddings)}")

    drop: set[int] = set()
    stack: list[tuple[str, int]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "()[]":
            i += 2
            continue
        if ch in "([":
            stack.append((ch, i))
        elif ch in ")]":
            if stack and stack[-1][0] == _PAIRS[ch]:
                stack.pop()
            else:
                drop.add(i)
        i += 1
    drop.update(index for _, index in stack)
    if drop:
        text = "".join(ch for index, ch in enumerate(text) if index not in drop)
        text = _tidy(text)
        notes.append(f"removed {len(drop)} unbalanced weighting bracket(s)")

    clamped: list[str] = []

    def clamp_weight(match: re.Match[str]) -> str:
        weight = float(match.group(2))
        if 0.0 <= weight <= _MAX_WEIGHT:
            return match.group(0)
        bounded = min(max(weight, 0.0), _MAX_WEIGHT)
        clamped.append(f"{match.group(0)} to {bounded:g}")
        return f"({match.group(1)}:{bounded:g})"

    text = _WEIGHT.sub(clamp_weight, text)
    if clamped:
        notes.append(f"clamped the weight of {_named(clamped)}")
    return text, notes


def fit_to_budget(
    text: str, budget: int, count: Callable[[str], int], *, total: int | None = None
) -> tuple[str, int, str]:
    """Shortens ``text`` to at most ``budget`` tokens at the best boundary available.

    Whole sentences are kept while they fit; when not even the first sentence fits, its
    clauses, then its words, then its characters are kept instead. Token counts add up
    across whitespace (CLIP never merges over a space), so each piece is counted once.

    Args:
        text: A cleaned prompt.
        budget: Most tokens allowed (at least 1).
        count: Token counter, e.g. ``ClipTokenizer.count``.
        total: ``count(text)`` when the caller has it already.

    Returns:
        The text (unchanged when it fits), its token count, and the boundary it was cut
        at: ``"sentence"``, ``"clause"``, ``"word"``, ``"character"``, or ``""`` when it
        already fitted.
    """
    if budget < 1:
        raise ValueError("budget must be at least 1")
    if total is None:
        total = count(text)
    if total <= budget:
        return text, total, ""
    for boundary, splitter in _SPLITTERS:
        parts = splitter.split(text)
        if len(parts) == 1:
            continue  # nothing to cut at here; the text is still known to be too long
        kept = _leading_parts(parts, budget, count)
        if kept:
            shortened = _TRAILING_JOINERS.sub("", " ".join(kept))
            if shortened:
                return shortened, count(shortened), boundary
        # Not even one part fits: look inside the first part with a finer splitter.
        text = parts[0]
    # One "word" longer than the whole budget (e.g. a run without spaces): cut characters.
    # The cut is searched in prefixes of doubling length first, so a pasted run of
    # 65,536 letters costs a few counts of a few hundred characters, not of all of it.
    low, high = 0, min(len(text), budget)
    while high < len(text) and count(text[:high]) <= budget:
        low, high = high, min(len(text), 2 * high)
    while low < high:
        middle = (low + high + 1) // 2
        if count(text[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    shortened = text[:low].strip()
    return shortened, count(shortened), "character"


def _leading_parts(parts: list[str], budget: int, count: Callable[[str], int]) -> list[str]:
    kept: list[str] = []
    used = 0
    for part in parts:
        used += count(part)
        if used > budget:
            break
        kept.append(part)
    return kept


def validate_prompt(
    text: str, *, budget: int, count: Callable[[str], int], what: str = "prompt"
) -> ValidatedPrompt:
    """Cleans, repairs and bounds a prompt (the whole pipeline of the module docstring).

    Args:
        text: The prompt as written.
        budget: Most CLIP tokens allowed.
        count: Token counter.
        what: Name used in warnings, e.g. ``"positive prompt"``.

    Returns:
        The validated prompt.

    Raises:
        EmptyPromptError: Nothing printable is left.
    """
    cleaned, removed = _clean(text)
    notes = [f"removed {removed} control or invisible character(s)"] if removed else []
    cleaned, repairs = balance_weighting(cleaned)
    notes += repairs
    if not cleaned:
        raise EmptyPromptError(f"the {what} is empty after cleaning")
    warnings = [f"{note} in the {what}" for note in notes]
    before = count(cleaned)
    fitted, tokens, boundary = fit_to_budget(cleaned, budget, count, total=before)
    if boundary:
        # A cut can strand one half of a pair of brackets.
        fitted, _ = balance_weighting(fitted)
        tokens = count(fitted)
        warnings.append(
            f"the {what} was {before} CLIP tokens, over the budget of {budget}; "
            f"truncated to {tokens} tokens at a {boundary} boundary"
        )
        notes.append(
            f"truncated from {before} to {tokens} CLIP tokens (the budget is {budget}) "
            f"at a {boundary} boundary"
        )
    if not fitted:
        raise EmptyPromptError(f"the {what} is empty after truncation")
    return ValidatedPrompt(
        text=fitted, tokens=tokens, warnings=tuple(warnings), changes=tuple(notes)
    )
