"""Keyword rules that stand in for a planner model's understanding of an instruction.

Users write in Russian or English («Перекрась диван в тёмно-зелёный бархат», "remove the
background"). The rules here do what a competent planner model does with such a request:

* :func:`detect_concepts` recognises what kind of change is asked for, by an ordered
  table of word stems (Russian, with «ё» read as «е») and English words. Strong signals
  come first — a recolouring verb, «убери», "add", «в стиле» — weak ones last (a colour
  or material named without a verb, "slightly"), so «перекрась … бархат» is a colour
  change while «сделай стол из мрамора» is a material change.
* :func:`choose_intent` maps those concepts onto whatever intent values a schema offers,
  by the words in the values ("color_change", "img2img_restyle", "minor_edit"…): a value
  is reached through its distinctive word only, so a generic "edit" request never lands
  on ``minor_edit``. The first value is the last resort.
* :func:`render_instruction` puts the instruction into English — Russian through a
  glossary of stems (colours with «тёмно-/светло-» compounds, materials, furniture and
  other objects, styles, light, verbs, prepositions) with articles where English needs
  them; English as written, minus politeness — and lists the objects, colours,
  materials and styles it names, so a prompt and a negative prompt can be built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "CONCEPTS",
    "ENGLISH_COLOURS",
    "ENGLISH_MATERIALS",
    "Concept",
    "Rendering",
    "choose_intent",
    "concept_named",
    "detect_concepts",
    "english_phrases",
    "has_cyrillic",
    "render_instruction",
    "value_concept",
]


# --------------------------------------------------------------------------- concepts


@dataclass(frozen=True)
class Concept:
    """A kind of request and how schemas tend to name it."""

    name: str
    """Also the intent a free-form answer (no enum) gives, e.g. ``color_change``."""
    marks: tuple[str, ...]
    """Words that make an intent value this concept's own ("colo" in ``color_change``)."""
    fallbacks: tuple[str, ...]
    """Words tried after the marks, in order: other concepts' marks it may borrow (a
    "replace" is planned like an "add"), then generic ones ("edit", "img2img")."""
    denoise: float
    """How far an img2img pass should move from the source for this kind of change."""

    @property
    def label(self) -> str:
        """The name in words, e.g. ``"color change"``."""
        return _LABELS.get(self.name, self.name.replace("_", " "))

    @property
    def preferences(self) -> tuple[str, ...]:
        """Marks, then fallbacks."""
        return self.marks + self.fallbacks


_LABELS = {"generate": "new image", "edit": "general edit"}
_GENERIC = ("edit", "modif", "img2img", "image_to_image", "transform", "change")

# Order matters twice: value_concept() gives a value to the first concept whose mark it
# contains, and the fallback after an unmatched instruction is looked up by name.
CONCEPTS: tuple[Concept, ...] = (
    Concept("color_change", ("colo", "recolo", "hue", "tint"), _GENERIC, 0.85),
    Concept("material_change", ("material", "textur", "fabric"), _GENERIC, 0.80),
    Concept("style_transfer", ("styl",), _GENERIC, 0.72),
    Concept("add_object", ("add", "insert"), ("inpaint", *_GENERIC), 0.68),
    Concept("remove_object", ("remov", "eras", "delet"), ("inpaint", *_GENERIC), 0.68),
    Concept("lighting_change", ("light", "illumin"), _GENERIC, 0.52),
    Concept(
        "minor_edit",
        ("minor", "touch", "subtle", "small", "tweak"),
        ("enhanc", "restor", *_GENERIC),
        0.42,
    ),
    Concept(
        "full_reimagining",
        ("reimagin", "full", "rework", "redraw", "overhaul"),
        ("variat", "remix", *_GENERIC),
        0.90,
    ),
    Concept(
        "upscale",
        ("upscal", "enhanc", "super_res", "superres", "restor", "sharpen"),
        ("minor", "touch", *_GENERIC),
        0.30,
    ),
    Concept("variation", ("variat", "vary", "remix"), ("reimagin", *_GENERIC), 0.55),
    Concept("background", ("background", "backdrop"), ("replac", "inpaint", *_GENERIC), 0.65),
    Concept("replace_object", ("replac", "swap"), ("add", "insert", "inpaint", *_GENERIC), 0.68),
    # A change nothing more specific describes: planned like a replacement (the planner's
    # own rules give such instructions 0.68, the add/replace value).
    Concept("edit", (), (*_GENERIC, "replac", "swap", "add", "insert"), 0.60),
    Concept(
        "generate",
        ("txt2img", "text2img", "text_to_image", "t2i", "generat", "creat", "compose"),
        (),
        1.0,
    ),
)
_BY_NAME = {concept.name: concept for concept in CONCEPTS}
_ALL_MARKS = tuple(mark for concept in CONCEPTS for mark in concept.marks)


def concept_named(name: str) -> Concept:
    """The concept called ``name`` (see :data:`CONCEPTS`)."""
    return _BY_NAME[name]


# English words the rules need as alternations.
ENGLISH_COLOURS = (
    "red", "green", "blue", "yellow", "black", "white", "grey", "gray", "orange", "purple",
    "violet", "pink", "brown", "beige", "teal", "turquoise", "navy", "burgundy", "maroon",
    "crimson", "scarlet", "emerald", "olive", "mustard", "cream", "ivory", "lavender",
    "lilac", "magenta", "cyan", "indigo", "coral", "peach", "mint", "charcoal", "khaki",
    "terracotta", "ochre", "azure", "gold", "golden", "silver",
)  # fmt: skip
"""Colour words an English instruction or analysis may use."""
ENGLISH_MATERIALS = (
    "wood", "wooden", "velvet", "marble", "leather", "metal", "metallic", "glass", "stone",
    "concrete", "brick", "brass", "copper", "steel", "silk", "linen", "cotton", "wool",
    "woolen", "woollen", "suede", "fabric", "ceramic", "plastic", "oak", "walnut", "bamboo",
    "rattan", "wicker", "porcelain", "granite", "parquet", "tile", "tiles", "chrome",
    "denim", "tweed", "corduroy", "boucle", "velour", "veneer", "gold", "silver",
)  # fmt: skip
"""Material words an English instruction or analysis may use."""
_SHADES = r"(?:(?:dark|light|bright|pale|deep|soft|warm|cool|muted|pastel)[\s-]+)?"
_COLOURS_EN = "|".join(ENGLISH_COLOURS)
_MATERIALS_EN = "|".join(ENGLISH_MATERIALS)
_ADJ_END = r"(?:ый|ий|ой|ая|яя|ое|ее|ые|ие|ого|его|ому|ему|ым|им|ом|ем|ую|юю|ых|их|ыми|ими|ою|ею)"
_COLOURS_RU = (
    r"(?:(?:темно|светло|ярко|бледно|насыщенно|глубоко|нежно)-)?"
    r"(?:красн|зелен|син|голуб|желт|черн|бел|сер|оранжев|фиолетов|розов|коричнев|бежев|"
    r"бордов|бирюзов|лилов|сиренев|пурпурн|салатов|изумрудн|терракотов|горчичн|оливков|"
    r"кремов|графитов|песочн|мятн|лазурн|малинов|кораллов|персиков|лавандов|шоколадн|"
    r"золотист|серебрист|пастельн)"
)
_MATERIALS_RU = (
    r"бархат\w*|деревянн\w*|мрамор\w*|кожан\w*|кож(?:а|и|у|ей|е)|металл\w*|"
    r"стеклянн\w*|стекл(?:о|а|ом|е)|каменн\w*|кам(?:ень|ня|нем|не|ни|ней)|бетон\w*|"
    r"кирпич\w*|золот(?:о|а|ом|е)|серебр(?:о|а|ом|е|ян\w*)|латун\w*|мед(?:ь|и|ью)|медн\w*|"
    r"стал(?:ь|ью)|стальн\w*|шелк\w*|льн(?:а|ом|е|ян\w*)|лен|хлоп(?:ок|ка|ком|ков\w*)|"
    r"шерст\w*|замш\w*|ткан\w*|керамик\w*|керамическ\w*|пластик\w*|пластмасс\w*|дубов\w*|"
    r"орехов\w*|бамбук\w*|ротанг\w*|плетен\w*|фарфор\w*|гранит\w*|паркет\w*|плитк\w*|"
    r"хром\w*|велюр\w*|вельвет\w*|твид\w*|букле|джинс\w*"
)

# Ordered, strongest signal first. A concept is listed once, at its first matching rule.
_RULES: tuple[tuple[str, str], ...] = (
    # A recolouring verb, the word "colour" itself, or "make it <colour>".
    (
        "color_change",
        r"\b(?:перекрас|покрас|окрас|раскрас|перекраш)\w*|\bцвет(?:а|е|ом|у|ов)?\b|\bоттен\w*|"
        r"\bre-?colou?r\w*|\brepaint\w*|\bpaint(?:ed)?\s+(?:it|them|this|that|the)\b|"
        r"\bcolou?r(?:s|ed|ing)?\b|\bhue\b|\btint\w*|"
        r"\b(?:make|turn|paint)\s+(?:it|them|this|that|(?:the\s+|all\s+|my\s+)?[a-z]+"
        r"(?:\s+[a-z]+)?)\s+" + _SHADES + r"(?:" + _COLOURS_EN + r")\b",
    ),
    (
        "lighting_change",
        r"\bосвещ\w*|\bподсвет\w*|\bсвет(?:а|е|ом|у)?\b|\bзолот\w* час\w*|\bтен(?:ь|и|ей|ями)\b|"
        r"\blighting\b|\billuminat\w*|\b(?:back|moon|day|sun|candle)?lit\b|\bgolden hour\b|"
        r"\bshadows?\b|\b(?:moon|day|sun|candle|lamp)light\b|\blight\b(?![\s-]*(?:"
        + _COLOURS_EN
        + r"|wood|oak|colou?r|tone|shade)\b)",
    ),
    (
        "upscale",
        r"\bапскейл\w*|\bразрешени\w*|\bрезкост\w*|\bчеткост\w*|\bчетче\b|\bрезче\b|"
        r"\bшум\w*|\bкачеств\w*|\bулучш\w*|"
        r"\bupscal\w*|\bresolution\b|\bsuper-?res\w*|\benhanc\w*|\bsharpen\w*|\bsharper\b|"
        r"\bdenois\w*|\bnoise\b|\bquality\b",
    ),
    (
        "minor_edit",
        r"\bретуш\w*|\bцарапин\w*|\bпятн\w*|\bпылин\w*|\bдефект\w*|\bморщин\w*|\bподправ\w*|"
        r"\bисправ\w*|\bпоправ\w*|\bподчист\w*|\bслегка\b|\bнемного\b|\bчуть(?:-чуть)?\b|"
        r"\bretouch\w*|(?<!from )\bscratch\w*|\bblemish\w*|\bstains?\b|\bdust\b|\bwrinkles?\b|"
        r"\btouch[- ]?up\b|\bfix\w*|\bclean[- ]?up\b|\btweak\w*|\bslightly\b",
    ),
    (
        "remove_object",
        r"\bубер\w*|\bубра\w*|\bудал\w*|\bсотр\w*|\bстере\w*|\bизбав\w*|\bвырежь\w*|"
        r"\bremov\w*|\bdelet\w*|\berase\w*|\bget rid of\b|\btake (?:out|away)\b",
    ),
    (
        "add_object",
        r"\bдобав\w*|\bпостав\w*|\bпомест\w*|\bразмест\w*|\bдорису\w*|\bпририс\w*|"
        r"\bповес\w*|\bвстав\w*|\bположи\w*|\bпосади\w*|"
        r"\badd\w*|\bput\b|\bplace[sd]?\b|\binsert\w*|\binclude\w*|\bhang\w*",
    ),
    (
        "full_reimagining",
        r"\bпереосмысл\w*|\bполностью\b|\bцеликом\b|\bсовсем (?:друг|ин)\w*|"
        r"\breimagin\w*|\bre-imagin\w*|\bcompletely\b|\bentirely\b|\btotally different\b|"
        r"\boverhaul\w*",
    ),
    (
        "variation",
        r"\bвариац\w*|\bвариант\w*|\bещ[её] (?:одн|один|раз)\w*|\bверси\w*|"
        r"\bvariation\w*|\banother (?:version|take)\b|\balternative\w*|\bsimilar\b",
    ),
    (
        "style_transfer",
        r"\bв стиле\b|\bстил(?:ь|я|е|ем)\b|\bстилизу\w*|\bв духе\b|\bакварел\w*|\bаниме\b|"
        r"\bмульт\w*|\bкомикс\w*|\bмаслом\b|\bмаслян\w*|\bживопис\w*|\bкартин\w* маслом\b|"
        r"\bимпрессион\w*|\bкубизм\w*|\bсюрреал\w*|\bпоп-арт\w*|\bпиксел\w*|\bэскиз\w*|"
        r"\bнабросок\b|\bнаброск\w*|\bкарандаш\w*|\bгравюр\w*|\bван гог\w*|\bкиберпанк\w*|"
        r"\bстимпанк\w*|\bвинтаж\w*|\bретро\b|\bнуар\b|\bфотореалист\w*|\bгибли\b|"
        r"\bпиксар\w*|\bбарокко\b|\bар-деко\b|\bготическ\w*|\bминимализм\w*|"
        r"\bstyles?\b|\bstyli[sz]\w*|\brestyle\w*|\bin the manner of\b|\bwatercolou?r\w*|"
        r"\banime\b|\bcartoon\w*|\bcomic\w*|\boil paint\w*|\bpainting\b|\bpainterly\b|"
        r"\bimpressionis\w*|\bcubis\w*|\bsurreal\w*|\bpop art\b|\bpixel art\b|\bsketch\w*|"
        r"\bpencil\b|\bcharcoal drawing\b|\bengraving\b|\bvan gogh\b|\bmonet\b|\bpicasso\b|"
        r"\bcyberpunk\b|\bsteampunk\b|\bvintage\b|\bretro\b|\bnoir\b|\bphotoreal\w*|"
        r"\bghibli\b|\bpixar\b|\bart deco\b|\bbaroque\b|\bgothic\b|\bclaymation\b|"
        r"\bukiyo-e\b|\blow[- ]poly\b",
    ),
    # A time of day: after a style, so «в стиле акварели, ночью» stays a style transfer.
    (
        "lighting_change",
        r"\bзакат\w*|\bрассвет\w*|\bноч\w*|\bсумер\w*|\bвечер(?:ом|а)?\b|\bвечерн\w*|"
        r"\bsunset\b|\bsunrise\b|\bdusk\b|\bdawn\b|\bnight\w*|\bevening\b",
    ),
    # The target named as a material: «сделай из …», «из мрамора», "made of".
    (
        "material_change",
        r"\bсдела\w* из\b|\bиз дерева\b|\bиз (?:" + _MATERIALS_RU + r")\b|\bматериал\w*|"
        r"\bфактур\w*|"
        r"\bтекстур\w*|\bобив\w*|\bперетян\w*|\bmade (?:of|from|out of)\b|"
        r"\bout of (?:" + _MATERIALS_EN + r")\b|\bmaterials?\b|\btextures?\b|"
        r"\b(?:re)?upholster\w*",
    ),
    ("material_change", r"\b(?:" + _MATERIALS_RU + "|" + _MATERIALS_EN + r")\b"),
    ("color_change", r"\b" + _COLOURS_RU + _ADJ_END + r"\b|\b(?:" + _COLOURS_EN + r")\b"),
    # Brighter or darker with no colour or material named is about the light.
    (
        "lighting_change",
        r"\bярче\b|\bтемнее\b|\bсветлее\b|\bbrighter\b|\bdarker\b|\blighter\b|\bdim\w*",
    ),
    ("remove_object", r"\bбез\b|\bwithout\b"),
    ("background", r"\bфон(?:а|у|ом|е)?\b|\bbackground\w*|\bbackdrop\w*"),
    ("replace_object", r"\bзамен\w*|\bпомен\w* на\b|\bсмени\w*|\breplac\w*|\bswap\w*"),
    (
        "minor_edit",
        r"\bедва\b|\bнезначительн\w*|\ba (?:little )?bit\b|\bsubtl\w*|\bminor\b|"
        r"\bsmall change\w*",
    ),
    (
        "generate",
        r"\bнарису\w*|\bсоздай\w*|\bсоздать\b|\bсгенерир\w*|\bпридума\w*|\bизобрази\w*|"
        r"\bс нуля\b|\bdraw\b|\bcreate\b|\bgenerate\b|\bimagine\b|\bfrom scratch\b|"
        r"\bnew image\b|\bpicture of\b|\bimage of\b|\bphoto of\b",
    ),
    (
        "edit",
        r"\bпоменя\w*|\bизмени\w*|\bсдела\w*|\bпреврат\w*|\bchange\w*|\bturn\b|\bmake\b|"
        r"\bedit\w*|\bmodify\w*|\btransform\w*",
    ),
)
_COMPILED_RULES = tuple((name, re.compile(pattern)) for name, pattern in _RULES)

_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)


def has_cyrillic(text: str) -> bool:
    """True when the text contains Russian letters."""
    return bool(_CYRILLIC.search(text))


def _fold(text: str) -> str:
    return text.lower().replace("ё", "е")


def detect_concepts(instruction: str) -> list[Concept]:
    """The kinds of change an instruction asks for, strongest signal first.

    Args:
        instruction: The user's words, Russian or English.

    Returns:
        Matching concepts, each once, in the order of their first matching rule
        (possibly empty).
    """
    return [concept_named(name) for name in _detected_names(instruction)]


@lru_cache(maxsize=256)
def _detected_names(instruction: str) -> tuple[str, ...]:
    text = _fold(instruction)
    found: dict[str, None] = {}
    for name, pattern in _COMPILED_RULES:
        if name not in found and pattern.search(text):
            found[name] = None
    return tuple(found)


def _normalise(value: str) -> str:
    return value.lower().replace("-", "_").replace(" ", "_")


def value_concept(value: str) -> Concept | None:
    """The concept an intent value belongs to by its words (``minor_edit`` → minor edit),
    or None for a generic value such as ``img2img_edit``."""
    key = _normalise(value)
    for concept in CONCEPTS:
        if any(mark in key for mark in concept.marks):
            return concept
    return None


def _reaches(word: str, key: str) -> bool:
    """Whether ``word`` may select the value ``key``: it must occur in it, and a value with
    a distinctive word ("minor" in ``minor_edit``) is reached through such a word only."""
    if word not in key:
        return False
    distinctive = [mark for mark in _ALL_MARKS if mark in key]
    return not distinctive or word in distinctive


def _match(concept: Concept, values: Sequence[str]) -> str | None:
    keys = [(_normalise(value), value) for value in values]
    for word in concept.preferences:
        for key, value in keys:
            if key == word:
                return value
        for key, value in keys:
            if _reaches(word, key):
                return value
    return None


def choose_intent(
    allowed: Sequence[str],
    instruction: str,
    *,
    has_source_image: bool,
    text_to_image: bool = False,
) -> tuple[str, Concept | None]:
    """Pick the schema's intent value for an instruction.

    Each detected concept, strongest first, looks for a value of its own, then for one
    it may borrow; the first concept that finds one decides.

    Args:
        allowed: The enum values of the intent field (any naming).
        instruction: The user's words.
        has_source_image: Whether there is a source image. With one, "generate"-like
            words («нарисуй кота») mean drawing into it and come last; without one, an
            instruction nothing matches is a generation.
        text_to_image: The request says it is text-to-image: generation comes first.

    Returns:
        The chosen value and the concept whose denoise suits it (the value's own concept
        when it has one); the first value and None when nothing matched at all.
    """
    detected = detect_concepts(instruction)
    generate, edit = concept_named("generate"), concept_named("edit")
    if text_to_image:
        order = [generate, *detected]
    elif has_source_image:
        order = [c for c in detected if c is not generate] + [edit, generate]
    else:
        order = [*detected, generate]
    for concept in dict.fromkeys(order):
        value = _match(concept, allowed)
        if value is not None:
            return value, value_concept(value) or concept
    return allowed[0], value_concept(allowed[0])


# --------------------------------------------------------------------------- glossary


@dataclass(frozen=True)
class _Entry:
    english: str
    kind: str
    """verb, object (countable noun), thing (uncountable, takes "the" after a verb:
    "colour", "lighting"), mass (material, style, time: no article), adj, adv, prep,
    word."""
    role: str = ""
    """colour, material or style: what :class:`Rendering` lists it under."""
    plural: str | None = None
    plural_endings: frozenset[str] = frozenset()


_ADJ = frozenset(_ADJ_END[3:-1].split("|"))
_NOUN = frozenset(
    {"", "а", "я", "о", "е", "и", "ы", "у", "ю", "ой", "ей", "ом", "ем", "ам", "ям", "ами",
     "ями", "ах", "ях", "ов", "ев", "ь", "ью"}
)  # fmt: skip
_PLURAL = frozenset({"ы", "и", "ов", "ев", "ам", "ям", "ами", "ями", "ах", "ях"})
_SOFT_PLURAL = frozenset({"ей", "ям", "ями", "ях"})

_Lookup = tuple[str, frozenset[str] | None, _Entry]
"""A stem, the endings it takes (None: any) and what it means."""


def _noun(
    stem: str,
    english: str,
    plural: str | None = None,
    *,
    soft: bool = False,
    endings: Iterable[str] = _NOUN,
) -> list[_Lookup]:
    entry = _Entry(english, "object", "", plural, _SOFT_PLURAL if soft else _PLURAL)
    return [(stem, frozenset(endings), entry)]


def _mass(stem: str, english: str, role: str = "", endings: Iterable[str] = _NOUN) -> list[_Lookup]:
    return [(stem, frozenset(endings), _Entry(english, "mass", role))]


def _thing(stem: str, english: str, endings: Iterable[str] = _NOUN) -> list[_Lookup]:
    return [(stem, frozenset(endings), _Entry(english, "thing"))]


def _adj(stem: str, english: str, role: str = "") -> list[_Lookup]:
    return [(stem, _ADJ, _Entry(english, "adj", role))]


def _verb(stems: str, english: str) -> list[_Lookup]:
    return [(stem, None, _Entry(english, "verb")) for stem in stems.split("|")]


def _forms(
    forms: str, english: str, kind: str, role: str = "", *, plural: bool = False
) -> list[_Lookup]:
    """Whole words only, e.g. ``_forms("ночью", "at night", "adv")``."""
    entry = (
        _Entry(english, kind, role, english, frozenset({""}))
        if plural
        else _Entry(english, kind, role)
    )
    return [(form, frozenset({""}), entry) for form in forms.split("|")]


def _colour(stem: str, english: str) -> list[_Lookup]:
    return _adj(stem, english, "colour")


def _material(stem: str, english: str, endings: Iterable[str] = _NOUN) -> list[_Lookup]:
    return _mass(stem, english, "material", endings)


def _style(stem: str, english: str, endings: Iterable[str] = _NOUN) -> list[_Lookup]:
    return _mass(stem, english, "style", endings)


_GROUPS: tuple[list[_Lookup], ...] = (
    # Colours (adjectives in every case and gender). Compounds («тёмно-зелёный») are
    # put together from their parts, see _COMPOUND_SHADES.
    _colour("красн", "red"),
    _colour("зелен", "green"),
    _colour("син", "blue"),
    _colour("голуб", "light blue"),
    _colour("желт", "yellow"),
    _colour("черн", "black"),
    _colour("бел", "white"),
    _colour("сер", "grey"),
    _colour("оранжев", "orange"),
    _colour("фиолетов", "purple"),
    _colour("розов", "pink"),
    _colour("коричнев", "brown"),
    _colour("бежев", "beige"),
    _colour("золот", "gold"),
    _colour("золотист", "golden"),
    _colour("серебрян", "silver"),
    _colour("серебрист", "silvery"),
    _colour("бордов", "burgundy"),
    _colour("бирюзов", "turquoise"),
    _colour("лилов", "lilac"),
    _colour("сиренев", "lilac"),
    _colour("пурпурн", "purple"),
    _colour("салатов", "lime green"),
    _colour("изумрудн", "emerald green"),
    _colour("терракотов", "terracotta"),
    _colour("горчичн", "mustard yellow"),
    _colour("оливков", "olive green"),
    _colour("кремов", "cream"),
    _colour("графитов", "graphite grey"),
    _colour("песочн", "sand-coloured"),
    _colour("мятн", "mint green"),
    _colour("лазурн", "azure"),
    _colour("малинов", "raspberry red"),
    _colour("кораллов", "coral"),
    _colour("персиков", "peach"),
    _colour("лавандов", "lavender"),
    _colour("шоколадн", "chocolate brown"),
    _colour("пастельн", "pastel"),
    _forms("цвет|цвета|цвету|цветом|цвете", "colour", "thing"),
    _noun("оттен", "shade", "shades", endings=("ок", "ка", "ком", "ки", "ков", "ками")),
    # Materials.
    _material("бархат", "velvet"),
    _adj("бархатн", "velvet", "material"),
    _adj("деревянн", "wooden", "material"),
    _material("мрамор", "marble"),
    _adj("мраморн", "marble", "material"),
    _material("кож", "leather", ("а", "и", "у", "ей", "е")),
    _adj("кожан", "leather", "material"),
    _material("металл", "metal"),
    _adj("металлическ", "metallic", "material"),
    _material("стекл", "glass", ("о", "а", "ом", "е")),
    _adj("стеклянн", "glass", "material"),
    _forms("камень|камня|камнем|камне|камни|камней", "stone", "mass", "material"),
    _adj("каменн", "stone", "material"),
    _material("бетон", "concrete"),
    _adj("бетонн", "concrete", "material"),
    _material("кирпич", "brick"),
    _adj("кирпичн", "brick", "material"),
    _material("золот", "gold", ("о", "а", "ом", "е")),
    _material("серебр", "silver", ("о", "а", "ом", "е")),
    _forms("латунь|латуни|латунью", "brass", "mass", "material"),
    _adj("латунн", "brass", "material"),
    _forms("медь|меди|медью", "copper", "mass", "material"),
    _adj("медн", "copper", "material"),
    _forms("сталь|сталью", "steel", "mass", "material"),
    _adj("стальн", "steel", "material"),
    _material("шелк", "silk", ("", "а", "ом", "е", "у")),
    _adj("шелков", "silk", "material"),
    _forms("лен|льна|льном|льне|льну", "linen", "mass", "material"),
    _adj("льнян", "linen", "material"),
    _forms("хлопок|хлопка|хлопком|хлопке", "cotton", "mass", "material"),
    _adj("хлопков", "cotton", "material"),
    _material("шерст", "wool", ("ь", "и", "ью")),
    _adj("шерстян", "woollen", "material"),
    _material("замш", "suede", ("а", "и", "у", "ей", "е")),
    _adj("замшев", "suede", "material"),
    _material("ткан", "fabric", ("ь", "и", "ью", "ей", "ям", "ями", "ях")),
    _adj("тканев", "fabric", "material"),
    _material("керамик", "ceramic"),
    _adj("керамическ", "ceramic", "material"),
    _material("пластик", "plastic"),
    _adj("пластиков", "plastic", "material"),
    _material("фарфор", "porcelain"),
    _adj("фарфоров", "porcelain", "material"),
    _material("гранит", "granite"),
    _material("паркет", "parquet"),
    _material("плитк", "tiles"),
    _material("дуб", "oak", ("", "а", "ом", "е")),
    _adj("дубов", "oak", "material"),
    _adj("орехов", "walnut", "material"),
    _material("бамбук", "bamboo"),
    _material("ротанг", "rattan"),
    _adj("плетен", "wicker", "material"),
    _material("велюр", "velour"),
    _material("вельвет", "corduroy"),
    _forms("букле", "boucle", "mass", "material"),
    _adj("матов", "matte"),
    _adj("глянцев", "glossy"),
    _thing("материал", "material"),
    _thing("текстур", "texture"),
    _thing("фактур", "texture"),
    _thing("обивк", "upholstery"),
    # Furniture, rooms, things.
    _noun("диван", "sofa", "sofas"),
    _noun("кресл", "armchair", "armchairs"),
    _noun("стол", "table", "tables"),
    _noun("столик", "small table", "small tables"),
    _noun("стул", "chair"),
    _forms("стулья|стульев|стульями|стульях", "chairs", "object", plural=True),
    _noun("табурет", "stool", "stools"),
    _noun("кроват", "bed", "beds", soft=True),
    _noun("шкаф", "wardrobe", "wardrobes"),
    _noun("комод", "chest of drawers"),
    _noun("тумбочк", "nightstand", "nightstands"),
    _noun("полк", "shelf", "shelves", endings=("а", "у", "и", "е", "ой", "ам", "ами", "ах")),
    _noun("торшер", "floor lamp"),
    _noun("ламп", "lamp", "lamps"),
    _noun("люстр", "chandelier"),
    _noun("стен", "wall", "walls", endings=_NOUN - {""}),
    _forms("стен", "walls", "object", plural=True),
    _noun("пол", "floor", "floors", endings=("", "а", "у", "ом", "ы", "ов")),
    _noun("потол", "ceiling", "ceilings", endings=("ок", "ка", "ку", "ком", "ке", "ки", "ков")),
    _noun("окн", "window", endings=("о", "а", "у", "ом", "е")),
    _forms("окон|окнами|окнах", "windows", "object", plural=True),
    _noun("двер", "door", "doors", soft=True),
    _noun("ков", "rug", "rugs", endings=("ер", "ра", "ру", "ром", "ре", "ры", "ров")),
    _noun("штор", "curtains"),
    _noun("занавеск", "curtains"),
    _noun("подушк", "cushion", "cushions"),
    _noun("картин", "painting", "paintings"),
    _noun("надпис", "lettering", endings=("ь", "и", "ью", "ей")),
    _noun("логотип", "logo", "logos"),
    _noun("знак", "sign", "signs"),
    _thing("узор", "pattern", ("", "а", "ом", "ы", "ов")),
    _thing("рисун", "pattern", ("ок", "ка", "ком", "ке")),
    _thing("форм", "shape", ("а", "у", "ы", "ой", "е")),
    _noun("ручк", "handle", "handles"),
    _noun("ножк", "leg", "legs"),
    _noun("рам", "frame", endings=("а", "у", "ы", "ой", "е", "ка", "ку", "ки", "кой")),
    _noun("зеркал", "mirror", "mirrors", endings=("о", "а", "ом", "е", "ами")),
    _noun("растени", "plant", "plants", endings=("е", "я", "ем", "ю", "й", "ям", "ями", "ях")),
    _noun("цвет", "flower", endings=("ок", "ка", "ком", "ке")),
    _forms("цветы|цветов|цветами|цветах|цветочки", "flowers", "object", plural=True),
    _noun("ваз", "vase", "vases"),
    _noun("чашк", "cup", "cups"),
    _noun("кружк", "mug", "mugs"),
    _noun("блюдц", "saucer", "saucers", endings=("е", "а", "ем", "у", "ами")),
    _noun("тарелк", "plate", "plates"),
    _noun("бокал", "wine glass", "wine glasses"),
    _noun("бутылк", "bottle", "bottles"),
    _noun("книг", "book", "books"),
    _noun("телевизор", "TV"),
    _noun("камин", "fireplace"),
    _noun("лестниц", "staircase"),
    _noun("кухн", "kitchen", endings=("я", "и", "ю", "ей", "е")),
    _noun("комнат", "room", "rooms"),
    _noun("спальн", "bedroom", endings=("я", "и", "ю", "ей", "е")),
    _noun("гостин", "living room", endings=("ая", "ой", "ую")),
    _forms("ванная|ванной|ванную", "bathroom", "object"),
    _noun("ванн", "bathtub", endings=("а", "у", "ы", "е")),
    _noun("интерьер", "interior"),
    _thing("мебел", "furniture", ("ь", "и", "ью")),
    _noun("дом", "house", "houses"),
    _noun("здани", "building", "buildings", endings=("е", "я", "ем", "ю", "й", "ями")),
    _noun("фасад", "facade"),
    _noun("крыш", "roof"),
    _noun("балкон", "balcony"),
    _noun("забор", "fence"),
    _noun("машин", "car", "cars"),
    _noun("автомобил", "car", "cars", endings=("ь", "я", "ю", "ем", "е", "и", "ей")),
    _noun("велосипед", "bicycle"),
    _noun("кот", "cat", "cats"),
    _noun("кошк", "cat", "cats"),
    _noun("котен", "kitten", endings=("ок", "ка", "ку", "ком", "ке")),
    _forms("котята|котят|котятами", "kittens", "object", plural=True),
    _noun("собак", "dog", "dogs"),
    _forms("пес|пса|псом|псу", "dog", "object"),
    _noun("щен", "puppy", endings=("ок", "ка", "ку", "ком", "ки", "ков")),
    _noun("птиц", "bird", "birds"),
    _noun("лошад", "horse", "horses", soft=True),
    _noun("лис", "fox", endings=("а", "у", "ы", "ой", "е", "ица", "ицу")),
    _noun("волк", "wolf"),
    _noun("медвед", "bear", endings=("ь", "я", "ю", "ем", "е")),
    _noun("рыб", "fish"),
    _noun("дракон", "dragon"),
    _noun("тигр", "tiger"),
    _forms("лев|льва|львом|льву", "lion", "object"),
    _forms("человек|человека|человеку|человеком", "person", "object"),
    _forms("люди|людей|людьми", "people", "object", plural=True),
    _noun("женщин", "woman", "women"),
    _noun("мужчин", "man", "men"),
    _noun("девушк", "young woman", "young women"),
    _forms("ребенок|ребенка|ребенку|ребенком", "child", "object"),
    _forms("дети|детей|детьми", "children", "object", plural=True),
    _noun("портрет", "portrait"),
    _noun("лиц", "face", endings=("о", "а", "ом", "е", "у")),
    _thing("волос", "hair", ("", "ы", "ами")),
    _noun("плать", "dress", endings=("е", "я", "ем", "ю")),
    _noun("шляп", "hat", "hats"),
    _forms("очки|очками|очков", "glasses", "object", plural=True),
    _noun("зонт", "umbrella"),
    _noun("корон", "crown"),
    # Scenery.
    _noun("неб", "sky", endings=("о", "а", "у", "ом", "е", "еса")),
    _noun("облак", "cloud", "clouds", endings=("о", "а", "ов", "ами", "ах")),
    _noun("солнц", "sun", endings=("е", "а", "ем", "у")),
    _noun("лун", "moon", endings=("а", "у", "ой", "е", "ы")),
    _noun("звезд", "star", "stars", endings=("а", "у", "ы", "", "ами")),
    _noun("мор", "sea", endings=("е", "я", "ю", "ем")),
    _noun("пляж", "beach"),
    _noun("лес", "forest", endings=("", "а", "у", "ом", "е")),
    _noun("гор", "mountains", endings=("а", "ы", "у", "ой", "ах", "ами")),
    _noun("город", "city"),
    _noun("улиц", "street"),
    _noun("сад", "garden", endings=("", "а", "у", "ом", "е")),
    _noun("рек", "river", endings=("а", "у", "и", "ой", "е")),
    _noun("озер", "lake", endings=("о", "а", "у", "ом", "е")),
    _noun("мост", "bridge", endings=("", "а", "у", "ом", "е")),
    _noun("зам", "castle", endings=("ок", "ка", "ку", "ком", "ке")),
    _noun("дерев", "tree", endings=("о", "а", "у", "ом", "е")),
    _forms("деревья|деревьев|деревьями|деревьях", "trees", "object", plural=True),
    _thing("трав", "grass", ("а", "у", "ой", "е", "ы")),
    _thing("снег", "snow", ("", "а", "ом", "у", "е")),
    _adj("снежн", "snowy"),
    _thing("дожд", "rain", ("ь", "я", "ем", "е")),
    _thing("туман", "fog"),
    _mass("космос", "outer space"),
    _adj("космическ", "outer space"),
    _noun("фон", "background", endings=("", "а", "у", "ом", "е")),
    # Styles.
    _forms("стиль|стиля|стилю|стилем|стиле", "style", "mass"),
    _style("акварел", "watercolor painting", ("ь", "и", "ью")),
    _adj("акварельн", "watercolor", "style"),
    _forms("аниме", "anime", "mass", "style"),
    _style("мульт", "cartoon", ("", "а", "ик", "ика", "фильм", "фильма")),
    _adj("мультяшн", "cartoon", "style"),
    _style("комикс", "comic book"),
    _forms("маслом", "in oil paint", "adv", "style"),
    _style("живопис", "painting", ("ь", "и", "ью")),
    _style("карандаш", "pencil sketch"),
    _style("эскиз", "sketch"),
    _forms("набросок|наброска|наброском", "sketch", "mass", "style"),
    _style("пиксел", "pixel art", ("ь", "и", "ей", "ями")),
    _adj("пиксельн", "pixel art", "style"),
    _style("гравюр", "engraving"),
    _style("импрессионизм", "impressionist painting"),
    _adj("импрессионистск", "impressionist", "style"),
    _style("кубизм", "cubism"),
    _style("сюрреализм", "surrealism"),
    _style("киберпанк", "cyberpunk"),
    _style("стимпанк", "steampunk"),
    _style("винтаж", "vintage"),
    _adj("винтажн", "vintage", "style"),
    _forms("ретро", "retro", "mass", "style"),
    _forms("нуар", "film noir", "mass", "style"),
    _adj("фотореалистичн", "photorealistic", "style"),
    _adj("реалистичн", "realistic", "style"),
    _style("фотографи", "photograph", ("я", "и", "ю", "ей")),
    _forms("фото", "photograph", "mass", "style"),
    _style("минимализм", "minimalism"),
    _adj("минималистичн", "minimalist", "style"),
    _style("лофт", "loft"),
    _adj("скандинавск", "Scandinavian", "style"),
    _adj("японск", "Japanese", "style"),
    _adj("готическ", "gothic", "style"),
    _forms("барокко", "baroque", "mass", "style"),
    _forms("ар-деко", "art deco", "mass", "style"),
    _forms("поп-арт", "pop art", "mass", "style"),
    _adj("современн", "modern"),
    _adj("классическ", "classic"),
    # Light and time.
    _mass("закат", "sunset"),
    _adj("закатн", "sunset"),
    _mass("рассвет", "dawn"),
    _forms("ночью", "at night", "adv"),
    _forms("ночь|ночи", "night", "mass"),
    _adj("ночн", "night"),
    _forms("вечером", "in the evening", "adv"),
    _forms("вечер|вечера", "evening", "mass"),
    _adj("вечерн", "evening"),
    _forms("утром", "in the morning", "adv"),
    _forms("утро|утра", "morning", "mass"),
    _adj("утренн", "morning"),
    _forms("днем", "in daylight", "adv"),
    _forms("зимой", "in winter", "adv"),
    _noun("зим", "winter", endings=("а", "у", "ы", "е")),
    _adj("зимн", "winter"),
    _forms("летом", "in summer", "adv"),
    _forms("лето|лета", "summer", "mass"),
    _adj("летн", "summer"),
    _forms("осенью", "in autumn", "adv"),
    _mass("осен", "autumn", endings=("ь", "и")),
    _adj("осенн", "autumn"),
    _forms("весной", "in spring", "adv"),
    _mass("весн", "spring", endings=("а", "у", "ы", "е")),
    _adj("весенн", "spring"),
    _mass("сумерк", "dusk", endings=("и", "ах", "ами")),
    _thing("освещени", "lighting", ("е", "я", "ем", "ю")),
    _thing("подсветк", "backlighting", ("а", "у", "и", "ой", "е")),
    _forms("свет|света|светом|свету|свете", "light", "thing"),
    _forms("тень|тени|теней|тенями", "shadows", "thing"),
    _adj("солнечн", "sunlit"),
    _adj("неонов", "neon"),
    # Other adjectives and comparatives.
    _adj("темн", "dark"),
    _adj("светл", "light"),
    _adj("ярк", "bright"),
    _adj("тепл", "warm"),
    _adj("холодн", "cool"),
    _adj("мягк", "soft"),
    _adj("уютн", "cozy"),
    _adj("больш", "large"),
    _adj("маленьк", "small"),
    _adj("нов", "new"),
    _adj("стар", "old"),
    _adj("красив", "beautiful"),
    _adj("высок", "tall"),
    _adj("длинн", "long"),
    _adj("коротк", "short"),
    _adj("кругл", "round"),
    _adj("квадратн", "square"),
    _adj("пушист", "fluffy"),
    _adj("блестящ", "shiny"),
    _adj("прозрачн", "transparent"),
    _adj("журнальн", "coffee"),
    _adj("обеденн", "dining"),
    _adj("письменн", "writing"),
    _adj("рабоч", "work"),
    _forms("ярче", "brighter", "adv"),
    _forms("темнее", "darker", "adv"),
    _forms("светлее", "lighter", "adv"),
    _forms("теплее", "warmer", "adv"),
    _forms("холоднее", "cooler", "adv"),
    _forms("четче|резче", "sharper", "adv"),
    _forms("больше", "larger", "adv"),
    _forms("меньше", "smaller", "adv"),
    _thing("разрешени", "resolution", ("е", "я", "ем", "ю")),
    _thing("резкост", "sharpness", ("ь", "и", "ью")),
    _thing("четкост", "sharpness", ("ь", "и", "ью")),
    _thing("яркост", "brightness", ("ь", "и", "ью")),
    _thing("контраст", "contrast"),
    _thing("насыщенност", "saturation", ("ь", "и", "ью")),
    _thing("шум", "noise", ("", "а", "ы", "ов", "ом")),
    _thing("качеств", "quality", ("о", "а", "ом", "е")),
    _mass("остальн", "the rest", endings=("ое", "ого", "ому", "ым", "ом", "ые")),
    # Verbs: imperative, infinitive and polite forms share the stem.
    _verb("перекрас|перекраш", "recolor"),
    _verb("покрас|окрас|раскрас", "paint"),
    _verb("добав|дорису|пририс", "add"),
    _verb("убер|убра|удал", "remove"),
    _verb("сотр|стере", "erase"),
    _verb("избав", "get rid of"),
    _verb("вырежь|выреж", "cut out"),
    _verb("сдела", "make"),
    _verb("замен|смени", "replace"),
    _verb("поменя|измени|измен", "change"),
    _verb("сохрани|сохран|остав", "keep"),
    _verb("нарису", "draw"),
    _verb("перерису", "redraw"),
    _verb("создай|созда", "create"),
    _verb("сгенерир", "generate"),
    _verb("изобрази", "depict"),
    _verb("придума", "imagine"),
    _verb("преврат", "turn"),
    _verb("переосмысл", "reimagine"),
    _verb("постав|положи|полож", "put"),
    _verb("помест|размест", "place"),
    _verb("повес", "hang"),
    _verb("встав", "insert"),
    _verb("посади", "seat"),
    _verb("улучш", "improve"),
    _verb("увелич|повыс|усил", "increase"),
    _verb("пониз|уменьш|сниз|ослаб", "reduce"),
    _verb("осветл", "brighten"),
    _verb("затемн", "darken"),
    _verb("стилизу", "stylize"),
    _verb("исправ|поправ|подправ", "fix"),
    _verb("ретуш", "retouch"),
    _verb("очист|почист|подчист", "clean up"),
    _verb("верни|вернут", "restore"),
    _verb("покажи", "show"),
    # Small words.
    _forms("полностью|целиком", "completely", "adv"),
    _forms("немного|слегка|чуть|чуть-чуть", "slightly", "adv"),
    _forms("очень", "very", "adv"),
    _forms("более", "more", "adv"),
    _forms("менее", "less", "adv"),
    _forms("снова|опять", "again", "adv"),
    _forms("вместо", "instead of", "prep"),
    _forms("около|возле|рядом", "near", "prep"),
    _forms("перед", "in front of", "prep"),
    _forms("между", "between", "prep"),
    _forms("вокруг", "around", "prep"),
    _forms("без", "without", "prep"),
    _forms("для", "for", "prep"),
    _forms("под", "under", "prep"),
    _forms("над", "above", "prep"),
    _forms("за", "behind", "prep"),
    _forms("из", "from", "prep"),
    _forms("на", "on", "prep"),
    _forms("с|со", "with", "prep"),
    _forms("в|во", "in", "prep"),
    _forms("у", "by", "prep"),
    _forms("к|ко", "to", "prep"),
    _forms("и", "and", "word"),
    _forms("или", "or", "word"),
    _forms("но|а", "but", "word"),
    _forms("не", "not", "word"),
    _forms("как", "like", "word"),
    _forms("все|весь|всю|вся|всех", "all", "word"),
    _forms("этот|эта|это|эту|этой|этом|этого", "this", "word"),
    _forms("эти|этих|этими", "these", "word"),
    _forms("его|ее", "it", "word"),
    _forms("их", "them", "word"),
)
# Longest stem first, so «столик» wins over «стол» and «серебрист» over «сер».
_LOOKUPS: tuple[_Lookup, ...] = tuple(
    sorted((item for group in _GROUPS for item in group), key=lambda item: -len(item[0]))
)

# Several words that mean one thing: (folded word patterns, entry). Tried before words.
_PHRASES: tuple[tuple[tuple[re.Pattern[str], ...], _Entry], ...] = tuple(
    (tuple(re.compile(part) for part in parts.split(" ")), entry)
    for parts, entry in (
        ("в стиле", _Entry("in the style of", "prep")),
        ("в духе", _Entry("in the spirit of", "prep")),
        ("не (?:меняя|изменяя|трогая)", _Entry("without changing", "prep")),
        ("рядом с|со", _Entry("next to", "prep")),
        ("вместе с|со", _Entry("together with", "prep")),
        ("на закате", _Entry("at sunset", "adv")),
        ("на рассвете", _Entry("at dawn", "adv")),
        ("в сумерках", _Entry("at dusk", "adv")),
        ("из дерева", _Entry("out of wood", "mass", "material")),
        ("журнальн\\w* столик\\w*", _Entry("coffee table", "object")),
        ("водян\\w* знак\\w*", _Entry("watermark", "object")),
        ("дневн\\w* свет\\w*", _Entry("daylight", "mass")),
        ("золот\\w* час\\w*", _Entry("golden hour", "mass")),
        ("ван гог\\w*", _Entry("Van Gogh", "mass", "style")),
        ("картин\\w* маслом", _Entry("oil painting", "mass", "style")),
        ("маслян\\w* живопис\\w*", _Entry("oil painting", "mass", "style")),
        ("масл\\w* краск\\w*", _Entry("oil paint", "mass", "style")),
        ("как есть", _Entry("as it is", "adv")),
        ("все остальное", _Entry("everything else", "mass")),
    )
)

# «тёмно-» and the like in front of a colour: "dark green".
_COMPOUND_SHADES = {
    "темно": "dark",
    "светло": "light",
    "ярко": "bright",
    "бледно": "pale",
    "насыщенно": "deep",
    "глубоко": "deep",
    "нежно": "soft",
}
# «сине-зелёный»: "blue-green".
_COMPOUND_COLOURS = {
    "сине": "blue",
    "зелено": "green",
    "красно": "red",
    "желто": "yellow",
    "черно": "black",
    "бело": "white",
    "серо": "grey",
    "розово": "pink",
    "голубо": "light blue",
    "оранжево": "orange",
    "фиолетово": "purple",
    "коричнево": "brown",
    "золото": "gold",
}


@dataclass(frozen=True)
class _Word:
    text: str
    kind: str
    role: str = ""
    plural: bool = False


def _lookup(word: str) -> _Word | None:
    """One folded Russian word in English, or None when the glossary does not know it."""
    for stem, endings, entry in _LOOKUPS:
        if not word.startswith(stem):
            continue
        rest = word[len(stem) :]
        if endings is not None and rest not in endings:
            continue
        if entry.plural is not None and rest in entry.plural_endings:
            return _Word(entry.plural, entry.kind, entry.role, plural=True)
        return _Word(entry.english, entry.kind, entry.role)
    if "-" in word:
        return _compound(word)
    return None


def _compound(word: str) -> _Word | None:
    first, _, rest = word.partition("-")
    tail = _lookup(rest)
    if tail is None:
        return None
    if first in _COMPOUND_SHADES and tail.role == "colour":
        return _Word(f"{_COMPOUND_SHADES[first]} {tail.text}", "adj", "colour")
    if first in _COMPOUND_COLOURS and tail.role == "colour":
        return _Word(f"{_COMPOUND_COLOURS[first]}-{tail.text}", "adj", "colour")
    head = _lookup(first)
    if head is None:
        return tail
    return _Word(f"{head.text} {tail.text}", tail.kind, tail.role, tail.plural)


# Verbs after which a bare object takes "a" rather than "the".
_INDEFINITE_VERBS = frozenset({"add", "draw", "create", "generate", "depict", "put", "place",
                               "hang", "insert", "imagine"})  # fmt: skip
# Verbs that need an object; "it" is supplied when the user left it out («сделай ярче»).
_OBJECT_VERBS = frozenset({"make", "recolor", "paint", "turn", "stylize", "redraw", "reimagine",
                           "brighten", "darken", "change"})  # fmt: skip
# «на» and «с» depend on the verb: «замени X на Y» is "replace X with Y", «поменяй цвет на
# синий» "change the colour to blue", «убери кота с кровати» "remove the cat from the bed".
_PREPOSITION_AFTER = {
    ("on", "replace"): "with",
    ("on", "change"): "to",
    ("on", "turn"): "into",
    ("with", "remove"): "from",
    ("with", "erase"): "from",
}


def _article(words: Sequence[_Word], start: int, after: _Word) -> str | None:
    """The article a noun phrase starting at ``start`` takes after a verb or preposition."""
    index = start
    while index < len(words) and words[index].kind == "adj":
        index += 1
    if index >= len(words):
        return None
    head = words[index]
    indefinite = after.kind == "verb" and after.text in _INDEFINITE_VERBS
    if head.kind == "object":
        if indefinite:
            if head.plural:
                return None
            return "an" if words[start].text[:1].lower() in "aeiou" else "a"
        if after.text == "with" and head.plural:
            return None
        return "the"
    if head.kind == "thing" and after.kind == "verb" and not indefinite:
        return "the"
    return None


def _material_follows(words: Sequence[_Word], start: int) -> bool:
    index = start
    while index < len(words) and words[index].kind == "adj" and words[index].role != "material":
        index += 1
    return index < len(words) and words[index].role == "material"


def _assemble(words: list[_Word]) -> list[_Word]:
    """Context fixes: «из» before a material, «на» after «замени», articles, "it", and
    "of" for a genitive («цвет дивана» → "colour of the sofa")."""
    fixed: list[_Word] = []
    verb = ""
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else None
        if (word.kind, word.text) == ("prep", "from") and _material_follows(words, index + 1):
            word = _Word("out of", "prep")
        if word.kind == "prep" and (word.text, verb) in _PREPOSITION_AFTER:
            word = _Word(_PREPOSITION_AFTER[word.text, verb], "prep")
        previous = fixed[-1] if fixed else None
        if (
            word.kind == "object"
            and previous is not None
            and (
                previous.kind in ("object", "thing")
                or (previous.kind, previous.role) == ("mass", "")
            )
        ):
            fixed.append(_Word("of the", "prep"))
        fixed.append(word)
        if word.kind == "verb":
            verb = word.text
        if word.kind not in ("verb", "prep") or following is None:
            continue
        article = _article(words, index + 1, word)
        if article is not None:
            fixed.append(_Word(article, "article"))
        elif (
            word.kind == "verb"
            and word.text in _OBJECT_VERBS
            and following.kind not in ("object", "thing", "word", "verb")
        ):
            fixed.append(_Word("it", "article"))
    return fixed


def _translate_clause(tokens: Sequence[str]) -> list[_Word]:
    folded = [_fold(token) for token in tokens]
    words: list[_Word] = []
    index = 0
    while index < len(tokens):
        for parts, entry in _PHRASES:
            end = index + len(parts)
            if end <= len(tokens) and all(
                p.fullmatch(w) for p, w in zip(parts, folded[index:end], strict=True)
            ):
                words.append(_Word(entry.english, entry.kind, entry.role))
                index = end
                break
        else:
            token = tokens[index]
            if has_cyrillic(token):
                found = _lookup(folded[index])
                if found is not None:
                    words.append(found)
            else:
                words.append(_Word(token, "word"))
            index += 1
    return _assemble(words)


# Politeness and request framing an English instruction may open with.
_ENGLISH_FILLER = re.compile(
    r"^(?:(?:please|pls|kindly|hey|hi|ok(?:ay)?)[\s,]+|(?:could|can|would|will)\s+you\s+"
    r"(?:please\s+)?|i\s*(?:'d| would)?\s+(?:like|want|need)\s+(?:you\s+)?to\s+|"
    r"i\s+want\s+|let'?s\s+)+",
    re.IGNORECASE,
)
_TRAILING = frozenset({"a", "an", "the", "to", "into", "in", "on", "at", "of", "and", "with",
                       "without", "or", "but", "not", "by", "from", "for"})  # fmt: skip
_TOKEN = re.compile(r"[A-Za-zА-Яа-яЁё0-9'][A-Za-zА-Яа-яЁё0-9'-]*|[,.;:!?\n]")


@dataclass(frozen=True)
class Rendering:
    """An instruction in English and what it names."""

    phrases: tuple[str, ...]
    """The instruction clause by clause, e.g. ``("Recolor the sofa in dark green
    velvet",)``; the first is capitalised."""
    objects: tuple[str, ...]
    """Things named, singular or plural as said ("sofa", "walls")."""
    colours: tuple[str, ...]
    """Colours named, with shades ("dark green")."""
    materials: tuple[str, ...]
    styles: tuple[str, ...]
    removed: tuple[str, ...]
    """What the instruction asks to take away ("chair")."""

    @property
    def text(self) -> str:
        """The phrases joined into one sentence."""
        return ", ".join(self.phrases)


def english_phrases(instruction: str) -> list[str]:
    """The instruction in English, clause by clause (see :func:`render_instruction`)."""
    return list(render_instruction(instruction).phrases)


@lru_cache(maxsize=256)
def render_instruction(instruction: str) -> Rendering:
    """Put an instruction into English and list what it names.

    Russian words go through the glossary (unknown ones are dropped, never passed
    through); English is kept as written, minus opening politeness ("please could you").
    Punctuation separates clauses; repeated clauses are kept once.

    Args:
        instruction: The user's words.

    Returns:
        The rendering; its phrases may be empty (nothing translatable).
    """
    phrases: dict[str, str] = {}
    objects: list[str] = []
    colours: list[str] = []
    materials: list[str] = []
    styles: list[str] = []
    clause: list[str] = []

    def flush() -> None:
        if not clause:
            return
        if any(has_cyrillic(token) for token in clause):
            words = _translate_clause(clause)
            for word in words:
                if word.kind == "object":
                    objects.append(word.text)
                elif word.role == "colour":
                    colours.append(word.text)
                elif word.role == "material":
                    materials.append(word.text.removeprefix("out of "))
                elif word.role == "style":
                    styles.append(word.text)
            # A verb whose object the glossary did not know («удали ???») says nothing.
            meaningful = any(w.kind not in ("verb", "prep", "article") for w in words)
            texts = [word.text for word in words] if meaningful else []
        else:
            texts = _ENGLISH_FILLER.sub("", " ".join(clause)).split()
            texts = [t for t in texts if t.lower() not in ("please", "pls")]
            _collect_english(" ".join(texts), objects, colours, materials, styles)
        while texts and texts[-1].lower() in _TRAILING:
            texts.pop()
        while texts and texts[0].lower() in ("and", "or", "but"):
            texts.pop(0)
        phrase = " ".join(texts)
        if phrase:
            phrases.setdefault(phrase.lower(), phrase)
        clause.clear()

    for token in _TOKEN.findall(instruction):
        if token[0].isalnum() or token[0] == "'":
            clause.append(token)
        else:
            flush()
    flush()
    rendered = list(phrases.values())
    if rendered:
        rendered[0] = rendered[0][:1].upper() + rendered[0][1:]
    removed = [found for phrase in rendered for found in _removed(phrase)]
    return Rendering(
        phrases=tuple(rendered),
        objects=_distinct(objects),
        colours=_distinct(colours),
        materials=_distinct(materials),
        styles=_distinct(styles),
        removed=_distinct(removed),
    )


def _distinct(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _english_vocabulary(role: str | None) -> tuple[str, ...]:
    """English words the glossary produces for objects (role None) or a role."""
    found: dict[str, None] = {}
    for _, _, entry in _LOOKUPS:
        if (role is None and entry.kind == "object") or (role and entry.role == role):
            found[entry.english.lower()] = None
            if entry.plural:
                found[entry.plural.lower()] = None
    for _, entry in _PHRASES:
        if (role is None and entry.kind == "object") or (role and entry.role == role):
            found[entry.english.lower()] = None
    return tuple(sorted(found, key=len, reverse=True))


_OBJECTS_EN = re.compile(
    r"\b(" + "|".join(re.escape(w) for w in _english_vocabulary(None)) + r")s?\b", re.IGNORECASE
)
_STYLES_EN = re.compile(
    r"\b(oil painting|watercolou?r(?: painting)?|pencil sketch|pixel art|pop art|art deco|"
    r"anime|cartoon|comic book|sketch|impressionis[mt]|cubism|surrealism|cyberpunk|"
    r"steampunk|vintage|retro|film noir|noir|photorealistic|van gogh|ghibli|pixar|baroque|"
    r"gothic|claymation|ukiyo-e|low[- ]poly|engraving|charcoal drawing|minimalis[mt])\b",
    re.IGNORECASE,
)
_COLOUR_PHRASE = re.compile(r"\b(" + _SHADES + r"(?:" + _COLOURS_EN + r"))\b", re.IGNORECASE)
_MATERIAL_WORD = re.compile(r"\b(" + _MATERIALS_EN + r")\b", re.IGNORECASE)


def _collect_english(
    text: str,
    objects: list[str],
    colours: list[str],
    materials: list[str],
    styles: list[str],
) -> None:
    styles += [m.group(1).lower() for m in _STYLES_EN.finditer(text)]
    colours += [m.group(1).lower() for m in _COLOUR_PHRASE.finditer(text)]
    materials += [m.group(1).lower() for m in _MATERIAL_WORD.finditer(text)]
    objects += [m.group(0).lower() for m in _OBJECTS_EN.finditer(text)]


_REMOVED = re.compile(
    r"\b(?:remove|erase|delete|get rid of|take (?:out|away)|cut out|without)\s+"
    r"(?:(?:the|a|an|all|this|these|that|those|any)\s+)*"
    r"([a-z][a-z' -]*?)(?=\s+(?:from|on|in|at|by|near|next|under|above|behind|with|"
    r"to|off|of|but|or)\b|$)",
    re.IGNORECASE,
)


def _removed(phrase: str) -> list[str]:
    found: list[str] = []
    for match in _REMOVED.finditer(phrase):
        for part in re.split(r",?\s+and\s+(?:the\s+|a\s+|an\s+)?|,\s*", match.group(1)):
            if part.strip():
                found.append(part.strip())
    return found
