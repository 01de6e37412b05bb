"""Keyword rules that stand in for a planner model's understanding of an instruction.

Users write in Russian or English ("сделай в стиле акварели", "remove the background").
The rules here recognise what kind of change is asked for (:func:`detect_concepts`), map
that onto whatever intent values a schema allows (:func:`choose_intent`), and turn the
instruction into English prompt phrases (:func:`english_phrases`) through a small
glossary, so the planner's Flux prompt is English as the real model's would be.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "CONCEPTS",
    "Concept",
    "choose_intent",
    "detect_concepts",
    "english_phrases",
    "has_cyrillic",
]


@dataclass(frozen=True)
class Concept:
    """A kind of request, how users say it, and how schemas tend to name it."""

    name: str
    keywords: tuple[str, ...]
    """Word stems (Russian) and words or phrases (English) that signal it."""
    enum_words: tuple[str, ...]
    """Intent values a schema might use for it, most specific first."""
    denoise: float
    """How far an img2img pass should move from the source for this kind of change."""


# Most specific first: "upscale" or "variation" must win over the generic "edit" verbs
# that also appear in such requests.
CONCEPTS: tuple[Concept, ...] = (
    Concept(
        "upscale",
        (
            "улучш",
            "увелич",
            "повыс",
            "резкост",
            "чётк",
            "четк",
            "апскейл",
            "upscale",
            "enhance",
            "sharpen",
            "higher resolution",
            "increase resolution",
            "super-resolution",
        ),
        ("upscale", "enhance", "super_resolution", "restore"),
        0.3,
    ),
    Concept(
        "variation",
        (
            "вариац",
            "похож",
            "ещё одн",
            "еще одн",
            "другой вариант",
            "variation",
            "similar",
            "another version",
            "alternative",
        ),
        ("variation", "variations", "vary", "reimagine", "remix"),
        0.55,
    ),
    Concept(
        "style",
        (
            "стил",
            "акварел",
            "масл",
            "аниме",
            "мульт",
            "комикс",
            "карандаш",
            "эскиз",
            "набросок",
            "пиксел",
            "импрессион",
            "ван гог",
            "киберпанк",
            "стимпанк",
            "винтаж",
            "ретро",
            "нуар",
            "style",
            "watercolor",
            "watercolour",
            "oil painting",
            "anime",
            "cartoon",
            "comic",
            "sketch",
            "pixel art",
            "painting",
            "impressionis",
            "cyberpunk",
            "steampunk",
            "vintage",
            "retro",
            "noir",
        ),
        ("restyle", "style_transfer", "stylize", "stylise", "style", "img2img", "image_to_image"),
        0.75,
    ),
    Concept(
        "remove",
        (
            "убер",
            "удали",
            "сотри",
            "стере",
            "без ",
            "remove",
            "erase",
            "delete",
            "get rid",
            "take out",
            "without",
        ),
        ("remove", "erase", "inpaint", "edit", "modify", "img2img", "image_to_image"),
        0.6,
    ),
    Concept(
        "add",
        ("добав", "дорису", "помест", "add ", "insert", "put ", "include"),
        ("add", "insert", "inpaint", "edit", "modify", "img2img", "image_to_image"),
        0.6,
    ),
    Concept(
        "background",
        ("фон", "background", "backdrop"),
        ("background", "replace_background", "edit", "inpaint", "img2img", "image_to_image"),
        0.65,
    ),
    Concept(
        "edit",
        (
            "замени",
            "поменя",
            "измени",
            "сделай",
            "преврат",
            "перекрас",
            "change",
            "replace",
            "swap",
            "turn ",
            "make ",
            "recolor",
            "recolour",
            "edit",
            "modify",
            "transform",
        ),
        ("edit", "modify", "inpaint", "img2img", "image_to_image", "transform", "restyle"),
        0.6,
    ),
    Concept(
        "generate",
        (
            "нарису",
            "создай",
            "сгенерир",
            "придума",
            "изобрази",
            "с нуля",
            "draw",
            "create",
            "generate",
            "imagine",
            "from scratch",
            "new image",
            "picture of",
            "image of",
        ),
        ("generate", "txt2img", "text_to_image", "create", "new", "compose"),
        1.0,
    ),
)

_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)


def has_cyrillic(text: str) -> bool:
    """True when the text contains Russian letters."""
    return bool(_CYRILLIC.search(text))


def detect_concepts(instruction: str) -> list[Concept]:
    """The kinds of change an instruction asks for, most specific first.

    Args:
        instruction: The user's words, any language.

    Returns:
        Matching concepts in :data:`CONCEPTS` order (possibly empty).
    """
    text = " " + instruction.lower().replace("ё", "е") + " "
    found: list[Concept] = []
    for concept in CONCEPTS:
        for keyword in concept.keywords:
            needle = keyword.replace("ё", "е")
            if needle.isascii() and needle.strip().isalpha() and needle == needle.strip():
                # English words must match whole words ("add" is not "address").
                if re.search(rf"\b{re.escape(needle)}", text):
                    found.append(concept)
                    break
            elif needle in text:
                found.append(concept)
                break
    return found


def choose_intent(
    allowed: Sequence[str], instruction: str, *, has_source_image: bool
) -> tuple[str, Concept | None]:
    """Pick the schema's intent value for an instruction.

    Args:
        allowed: The enum values of the intent field (any naming).
        instruction: The user's words.
        has_source_image: Whether an image analysis came with the instruction; without
            one, "generate"-like values are preferred when nothing else matches.

    Returns:
        The chosen value and the concept behind it (None when none matched).
    """
    lowered = {value.lower().replace("-", "_").replace(" ", "_"): value for value in allowed}
    concepts = detect_concepts(instruction)
    fallback = next(c for c in CONCEPTS if c.name == ("edit" if has_source_image else "generate"))
    for concept in [*concepts, fallback]:
        for word in concept.enum_words:
            if word in lowered:
                return lowered[word], concept
        for word in concept.enum_words:
            for key, value in lowered.items():
                if word in key:
                    return value, concept
    return allowed[0], concepts[0] if concepts else None


# Russian stems → English phrases. Matching is by word start, longest stem first, and a
# stem listed in _WHOLE_WORDS matches only the whole word (so "лев" is not "левый").
_GLOSSARY: dict[str, str] = {
    "акварел": "watercolor painting",
    "масл": "oil painting",
    "аниме": "anime style",
    "мульт": "cartoon style",
    "комикс": "comic book style",
    "карандаш": "pencil sketch",
    "эскиз": "sketch",
    "набросок": "sketch",
    "пиксел": "pixel art",
    "фотореал": "photorealistic",
    "реалист": "photorealistic",
    "фото": "photograph",
    "импрессион": "impressionist painting",
    "гог": "in the style of Van Gogh",
    "киберпанк": "cyberpunk",
    "стимпанк": "steampunk",
    "винтаж": "vintage",
    "ретро": "retro",
    "нуар": "film noir",
    "минимал": "minimalist",
    "неон": "neon lights",
    "ноч": "at night",
    "закат": "at sunset",
    "рассвет": "at dawn",
    "зим": "in winter",
    "снег": "snow",
    "снеж": "snowy",
    "дожд": "rain",
    "туман": "fog",
    "осен": "autumn",
    "весн": "spring",
    "лето": "summer",
    "летом": "summer",
    "летн": "summer",
    "море": "sea",
    "моря": "sea",
    "морем": "sea",
    "морск": "sea",
    "пляж": "beach",
    "лес": "forest",
    "леса": "forest",
    "лесу": "forest",
    "лесн": "forest",
    "город": "city",
    "гор": "mountains",
    "горы": "mountains",
    "гора": "mountains",
    "горах": "mountains",
    "горн": "mountains",
    "улиц": "street",
    "небо": "sky",
    "небе": "sky",
    "небес": "sky",
    "облак": "clouds",
    "солнц": "sun",
    "лун": "moon",
    "звезд": "stars",
    "цветок": "flower",
    "цветы": "flowers",
    "цветами": "flowers",
    "цветов": "flowers",
    "река": "river",
    "реки": "river",
    "реку": "river",
    "озер": "lake",
    "сад": "garden",
    "дом": "house",
    "замок": "castle",
    "мост": "bridge",
    "машин": "car",
    "корабл": "ship",
    "лодк": "boat",
    "космос": "outer space",
    "космич": "outer space",
    "котен": "kitten",
    "кот": "cat",
    "кота": "cat",
    "коты": "cat",
    "котом": "cat",
    "котик": "cat",
    "кошк": "cat",
    "собак": "dog",
    "пес": "dog",
    "пса": "dog",
    "щен": "puppy",
    "птиц": "bird",
    "лошад": "horse",
    "лиса": "fox",
    "лису": "fox",
    "лисы": "fox",
    "лисиц": "fox",
    "волк": "wolf",
    "медвед": "bear",
    "рыб": "fish",
    "дракон": "dragon",
    "тигр": "tiger",
    "лев": "lion",
    "льва": "lion",
    "человек": "person",
    "люд": "people",
    "девушк": "young woman",
    "женщин": "woman",
    "мужчин": "man",
    "ребен": "child",
    "дети": "children",
    "детей": "children",
    "портрет": "portrait",
    "кофе": "coffee",
    "чашк": "cup",
    "стол": "table",
    "книг": "book",
    "шляп": "hat",
    "очк": "glasses",
    "зонт": "umbrella",
    "корон": "crown",
    "красн": "red",
    "синий": "blue",
    "синяя": "blue",
    "синее": "blue",
    "синие": "blue",
    "синем": "blue",
    "голуб": "light blue",
    "зелен": "green",
    "желт": "yellow",
    "черн": "black",
    "бел": "white",
    "серый": "gray",
    "серая": "gray",
    "серое": "gray",
    "серые": "gray",
    "оранж": "orange",
    "фиолет": "purple",
    "розов": "pink",
    "коричн": "brown",
    "золот": "golden",
    "больш": "large",
    "маленьк": "small",
    "старый": "old",
    "старая": "old",
    "старое": "old",
    "ярк": "bright",
    "темн": "dark",
    "красив": "beautiful",
    "фон": "background",
}
_WHOLE_WORDS = frozenset(
    {"гор", "лев", "льва", "кот", "кота", "коты", "пес", "пса", "лес", "леса", "лесу"}
)
_STEMS = sorted(_GLOSSARY, key=len, reverse=True)

# Words of a request that are not part of the picture: dropped anywhere in English text.
_ENGLISH_COMMANDS = frozenset(
    {
        "please", "could", "would", "you", "can", "i", "want", "like", "make", "draw",
        "create", "generate", "paint", "render", "imagine", "depict", "show", "give", "me",
        "let", "us", "turn", "change", "convert", "transform", "it", "this", "that",
        "should", "so", "be", "image", "picture", "version",
    }
)  # fmt: skip
# Verbs whose object stays in the prompt with a preposition ("remove the hat" → "without
# the hat"), in both languages.
_ENGLISH_VERBS = {"remove": "without", "erase": "without", "delete": "without", "add": "with"}
_RUSSIAN_VERBS = {"убери": "without", "удали": "without", "сотри": "without", "без": "without",
                  "добавь": "with", "с": "with", "со": "with"}  # fmt: skip
# Trimmed from the ends of a phrase only ("a cat" → "cat", but "cat in a hat" stays).
_EDGE_WORDS = frozenset({"a", "an", "the", "to", "into", "in", "on", "at", "of", "and", "with"})


def english_phrases(instruction: str) -> list[str]:
    """English prompt fragments for an instruction, in the order they were said.

    Russian words are looked up in the glossary (unknown ones are dropped, never passed
    through); English words are kept minus request verbs ("please make", "draw").
    Punctuation separates phrases.

    Args:
        instruction: The user's words.

    Returns:
        Distinct phrases, e.g. ``["watercolor painting at night"]``; may be empty.
    """
    phrases: list[str] = []
    current: list[str] = []

    def flush() -> None:
        while current and current[-1].lower() in _EDGE_WORDS | {"without"}:
            current.pop()
        while current and current[0].lower() in _EDGE_WORDS:
            current.pop(0)
        if current:
            phrases.append(" ".join(current))
        current.clear()

    for token in re.findall(r"[A-Za-zА-Яа-яЁё0-9'-]+|[,.;:!?\n]", instruction):
        lowered = token.lower().replace("ё", "е")
        if not lowered[0].isalnum():
            flush()
        elif has_cyrillic(lowered):
            word = _RUSSIAN_VERBS.get(lowered) or _translate(lowered)
            if word is not None:
                current.append(word)
        elif lowered in _ENGLISH_VERBS:
            current.append(_ENGLISH_VERBS[lowered])
        elif lowered not in _ENGLISH_COMMANDS:
            current.append(token)
    flush()
    distinct: dict[str, str] = {}
    for phrase in phrases:
        distinct.setdefault(phrase.lower(), phrase)
    return list(distinct.values())


def _translate(word: str) -> str | None:
    for stem in _STEMS:
        if stem in _WHOLE_WORDS:
            if word == stem:
                return _GLOSSARY[stem]
        elif word.startswith(stem):
            return _GLOSSARY[stem]
    return None
