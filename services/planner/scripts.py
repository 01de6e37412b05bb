"""Writing systems: what in a prompt is not in the Latin script, and how to make it Latin.

Flux's text encoders were trained on English: a Cyrillic or Chinese word in a prompt
reaches CLIP and T5 as byte pieces that mean nothing to the image. The planner checks
every prompt with :func:`non_latin_words` (a letter counts as Latin when its Unicode name
says so, which covers accented letters such as «é» and «ß»; digits and punctuation are
script-neutral), and the keyword rules, which have no model to translate for them, make
what their glossary missed Latin with :func:`transliterate`::

    non_latin_words("Recolour чашку in dark green")     # ("чашку",)
    transliterate("Recolour чашку in dark green").text  # "Recolour chashku in dark green"

Cyrillic (Russian, Ukrainian, Belarusian letters) is transliterated by a small table
after the common romanisation (BGN/PCGN without diacritics): the word stays recognisable
to the encoder when it is a name or a loan word (кальян → kalyan). Letters of other
scripts have no table here and are dropped, with the words they were in reported.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Transliteration", "is_latin_text", "non_latin_words", "transliterate"]

_WORD = re.compile(r"\w+")
_CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "yo", "ж": "zh",
    "з": "z", "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o",
    "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts",
    "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu",
    "я": "ya", "і": "i", "ї": "yi", "є": "ye", "ґ": "g", "ў": "w",
}  # fmt: skip


def _is_latin_letter(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith("LATIN")


@functools.lru_cache(maxsize=4096)
def _foreign_letter(ch: str) -> bool:
    return ch.isalpha() and not _is_latin_letter(ch)


def _foreign(ch: str) -> bool:
    """A letter of a script other than Latin."""
    return not ch.isascii() and _foreign_letter(ch)


def is_latin_text(text: str) -> bool:
    """Whether every letter of ``text`` is of the Latin script.

    A cheap test, not language detection: it tells Russian (or Chinese…) from English,
    not French from English.
    """
    return text.isascii() or not any(_foreign(ch) for ch in text)


def non_latin_words(text: str) -> tuple[str, ...]:
    """The words of ``text`` with a letter of another script, in order.

    Args:
        text: Any text.

    Returns:
        The words as often as they occur (a hyphen separates words), e.g.
        ``("чашку",)``; empty for all-Latin text.
    """
    if text.isascii():
        return ()
    return tuple(word for word in _WORD.findall(text) if any(_foreign(ch) for ch in word))


@dataclass(frozen=True)
class Transliteration:
    """Text made Latin.

    Attributes:
        text: The text with Cyrillic transliterated and other scripts' letters dropped.
        transliterated: ``(word, Latin spelling)`` of each transliterated word.
        dropped: Words that lost letters of a script without a table here.
    """

    text: str
    transliterated: tuple[tuple[str, str], ...]
    dropped: tuple[str, ...]


def _latin_letter(ch: str) -> str:
    if not _foreign(ch):
        return ch
    spelled = _CYRILLIC.get(ch.lower())
    if spelled is None:
        return ""
    return spelled.capitalize() if ch.isupper() else spelled


def transliterate(text: str) -> Transliteration:
    """Makes every word of ``text`` Latin (Cyrillic by table, other scripts dropped).

    Args:
        text: Any text.

    Returns:
        The Latin text and what was changed; ``text`` itself when it is all Latin.
    """
    words = non_latin_words(text)
    if not words:
        return Transliteration(text=text, transliterated=(), dropped=())
    transliterated: list[tuple[str, str]] = []
    dropped: list[str] = []

    def latin_word(match: re.Match[str]) -> str:
        word = match.group(0)
        if not any(_foreign(ch) for ch in word):
            return word
        spelled = "".join(_latin_letter(ch) for ch in word)
        if any(_foreign(ch) and ch.lower() not in _CYRILLIC for ch in word):
            dropped.append(word)
        else:
            transliterated.append((word, spelled))
        return spelled

    latin = _WORD.sub(latin_word, text)
    # A dropped word leaves its spaces behind.
    latin = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s+", " ", latin)).strip()
    return Transliteration(
        text=latin,
        transliterated=tuple(dict.fromkeys(transliterated)),
        dropped=tuple(dict.fromkeys(dropped)),
    )
