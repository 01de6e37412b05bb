"""The planner without a model: keyword rules for the intent, a glossary for the prompt.

Used when the text model is unavailable or keeps answering invalid JSON (and the fallback
policy allows it). Three parts:

* :func:`detect_intent` — ordered keyword and stem rules, Russian and English. The first
  rule that matches decides, so strong signals (a verb such as «перекрась», «убери»,
  "add"; a phrase such as «в стиле», «сделай из») come before weak ones (a colour or
  material word, "slightly"). Russian is matched on stems, with «ё» read as «е», so
  «перекрасить», «перекрасьте» and «перекрась» are one rule.
* :func:`translate` — a small Russian→English glossary of the words people use for
  interior and photo edits (colours with «тёмно-/светло-» compounds, materials, objects,
  styles, lighting, the common verbs and prepositions). What it does not know stays as
  written; the caller is told how much that was.
* :func:`compose_prompt` — the change first (CLIP reads only the first 75 tokens), then
  the analysis of the source and what to keep.
* :func:`latin_prompt` — the last step: what the glossary left in another script is
  transliterated (Cyrillic) or dropped (:mod:`services.planner.scripts`), so no
  non-Latin word reaches Flux, and the caller is told which words.

The result is a usable, not a good, prompt: the rules cannot rewrite the source's
description around the change the way the model does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from services.planner.intents import Intent
from services.planner.plans import SourceAnalysis
from services.planner.scripts import is_latin_text, non_latin_words, transliterate

__all__ = [
    "DEFAULT_NEGATIVE_PROMPT",
    "IntentMatch",
    "LatinPrompt",
    "Translation",
    "compose_instruction",
    "compose_prompt",
    "detect_intent",
    "latin_prompt",
    "leading_words",
    "translate",
]

DEFAULT_NEGATIVE_PROMPT = (
    "blurry, low quality, distorted, deformed, artifacts, watermark, text, signature"
)
"""Negative prompt of rules plans (Flux-dev at cfg 1.0 ignores it; other workflows not)."""


def _fold(text: str) -> str:
    """«ё» → «е» (people write both), keeping the case of everything else."""
    return text.replace("ё", "е").replace("Ё", "Е")


# --------------------------------------------------------------------------- intents


@dataclass(frozen=True)
class IntentMatch:
    """The intent the rules found and the words that decided it.

    Attributes:
        intent: The intent.
        keyword: The matched text, for logs and warnings.
    """

    intent: Intent
    keyword: str


_COLOURS_RU = (
    r"красн|зелен|син|голуб|желт|черн|бел|сер|оранжев|фиолетов|розов|коричнев|бежев|"
    r"бордов|бирюзов|лилов|пурпурн|салатов|изумрудн|терракотов|горчичн|оливков|кремов|"
    r"графитов|песочн|мятн|лазурн|багров|малинов|кораллов|персиков|лавандов|сиренев|"
    r"шоколадн|молочн|кофейн|золотист|серебрист|охрист|пастельн"
)
_ADJ_ENDINGS = r"(?:ый|ий|ой|ая|яя|ое|ее|ые|ие|ого|его|ому|ему|ым|им|ом|ем|ую|юю|ых|их|ыми|ими)"
_COLOURS_EN = (
    r"red|green|blue|yellow|black|white|gr[ae]y|orange|purple|violet|pink|brown|beige|"
    r"teal|turquoise|navy|burgundy|maroon|crimson|scarlet|emerald|olive|mustard|cream|"
    r"ivory|lavender|lilac|magenta|cyan|indigo|coral|peach|mint|charcoal|khaki|"
    r"terracotta|ochre|pastel"
)
_MATERIALS_RU = (
    r"деревянн\w*|бархат\w*|мрамор\w*|кожан\w*|кож(?:а|и|у|ей|е)|металл\w*|стеклянн\w*|"
    r"стекл(?:о|а|ом|е)|каменн\w*|кам(?:ень|ня|нем|не|ни|ней)|бетон\w*|кирпич\w*|"
    r"золот(?:о|а|ом|е|ой|ая|ые|ую|ого|ым)|серебр\w*|латун\w*|мед(?:ь|и|ью|н\w*)|стал(?:ь|ью)|"
    r"стальн\w*|шелк\w*|льн(?:а|ом|е|ян\w*)|лен|хлоп(?:ок|ка|ком|ков\w*)|шерст\w*|замш\w*|"
    r"ткан\w*|керамик\w*|керамическ\w*|пластик\w*|пластмасс\w*|дубов\w*|ореховы\w*|"
    r"бамбук\w*|ротанг\w*|плетен\w*|фарфор\w*|гранит\w*|паркет\w*|плитк\w*|хром\w*|"
    r"велюр\w*|вельвет\w*|твид\w*|букле|джинс\w*|рогожк\w*|шпон\w*"
)
_MATERIALS_EN = (
    r"wood|wooden|velvet|marble|leather|metal|metallic|glass|stone|concrete|brick|gold|"
    r"golden|silver|brass|copper|steel|silk|linen|cotton|wool|woolen|suede|fabric|ceramic|"
    r"plastic|oak|walnut|bamboo|rattan|wicker|porcelain|granite|parquet|tiles?|chrome|"
    r"denim|tweed|corduroy|boucle|bouclé|velour|veneer"
)

# Ordered: the first rule that matches decides (see the module docstring).
_RULES: tuple[tuple[Intent, str], ...] = (
    # A colour verb or the word "colour" itself is the clearest signal there is.
    (
        Intent.COLOR_CHANGE,
        r"\b(?:перекрас|покрас|окрас|раскрас)\w*|\bцвет(?:а|е|ом|у)?\b|\bоттен\w*|"
        r"\bre-?colou?r\w*|\brepaint\w*|\bcolou?r(?:s|ed|ing)?\b|\bhue\b|\btint\w*",
    ),
    (
        Intent.LIGHTING_CHANGE,
        r"\bосвещ\w*|\bподсвет\w*|\bсвет(?:а|е|ом|у)?\b|\bзакат\w*|\bрассвет\w*|\bноч\w*|"
        r"\bсумер\w*|\bзолот\w* час\w*|\bтен(?:ь|и|ей|ями)\b|\bвечер(?:ом|а)?\b|"
        r"\blighting\b|\billuminat\w*|\b(?:back|moon|day|sun|candle)?lit\b|\bsunset\b|"
        r"\bsunrise\b|\bdusk\b|\bdawn\b|\bnight\w*|\bgolden hour\b|\bshadows?\b|"
        r"\b(?:moon|day|sun|candle|lamp)light\b|\blight\b(?!\s*-?\s*(?:"
        + _COLOURS_EN
        + r"|wood|oak|colou?r|tone)\b)",
    ),
    (
        Intent.MINOR_EDIT,
        r"\bретуш\w*|\bшум\w*|\bрезкост\w*|\bчетче\b|\bцарапин\w*|\bпятн\w*|\bпылин\w*|"
        r"\bдефект\w*|\bморщин\w*|\bподправ\w*|\bисправ\w*|\bпоправ\w*|\bулучш\w*|"
        r"\bподчист\w*|\bretouch\w*|\bnoise\b|\bdenois\w*|\bsharpen\w*|\bscratch\w*|"
        r"\bblemish\w*|\bstains?\b|\bdust\b|\bwrinkles?\b|\btouch[- ]?up\b|\bfix\w*|"
        r"\benhance\w*|\bclean[- ]?up\b|\btweak\w*",
    ),
    (
        Intent.REMOVE_OBJECT,
        r"\bубер\w*|\bубра\w*|\bудал\w*|\bсотр\w*|\bстереть\b|\bизбав\w*|\bвырежь\w*|"
        r"\bочист\w*|\bremov\w*|\bdelet\w*|\berase\w*|\bget rid of\b|\btake (?:out|away)\b",
    ),
    (
        Intent.ADD_OBJECT,
        r"\bдобав\w*|\bпостав\w*|\bпомест\w*|\bразмест\w*|\bдорису\w*|\bпририс\w*|"
        r"\bповес\w*|\bвстав\w*|\bположи\w*|\bпосади\w*|\badd\w*|\bput\b|"
        r"\bplace[sd]?\b|\binsert\w*|\binclude\w*|\bhang\w*",
    ),
    (
        Intent.FULL_REIMAGINING,
        r"\bпереосмысл\w*|\bполностью\b|\bцеликом\b|\bс нуля\b|\bсовсем (?:друг|ин)\w*|"
        r"\bпревра\w*|\breimagin\w*|\bre-imagin\w*|\bfrom scratch\b|\bcompletely\b|"
        r"\bentirely\b|\btotally different\b|\btransform\w* (?:\w+ )*?into\b|"
        r"\bturn (?:\w+ ){1,3}into\b",
    ),
    (
        Intent.STYLE_TRANSFER,
        r"\bв стиле\b|\bстил(?:ь|я|е|ем)\b|\bстилизу\w*|\bв духе\b|\bакварел\w*|\bаниме\b|"
        r"\bмульт\w*|\bкомикс\w*|\bмаслом\b|\bмаслян\w*|\bживопис\w*|\bкак (?:на )?картин\w*|"
        r"\bимпрессион\w*|\bкубизм\w*|\bсюрреал\w*|\bпоп-арт\w*|\bпиксел\w*|\bэскиз\w*|"
        r"\bнабросок\b|\bнаброск\w*|\bкарандаш\w*|\bгравюр\w*|\bван гог\w*|\bкиберпанк\w*|"
        r"\bстимпанк\w*|\bвинтаж\w*|\bретро\b|\bнуар\b|\bфотореалист\w*|\bгибли\b|\bпиксар\w*|"
        r"\bбарокко\b|\bар[- ]деко\b|\bготическ\w*|"
        r"\bstyles?\b|\bstyli[sz]\w*|\bin the manner of\b|\bwatercolou?r\w*|\banime\b|"
        r"\bcartoon\w*|\bcomic\w*|\boil paint\w*|\bpainting\b|\bpainterly\b|\bimpressionis\w*|"
        r"\bcubis\w*|\bsurreal\w*|\bpop art\b|\bpixel art\b|\bsketch\w*|\bpencil\b|"
        r"\bcharcoal drawing\b|\bengraving\b|\bvan gogh\b|\bmonet\b|\bpicasso\b|\bcyberpunk\b|"
        r"\bsteampunk\b|\bvintage\b|\bretro\b|\bnoir\b|\bphotorealis\w*|\bghibli\b|\bpixar\b|"
        r"\bart deco\b|\bbaroque\b|\bgothic\b|\bclaymation\b|\bukiyo-e\b|\blow[- ]poly\b",
    ),
    (
        Intent.MATERIAL_CHANGE,
        r"\bсдела\w* из\b|\bиз (?:" + _MATERIALS_RU + r")\b|\bматериал\w*|\bфактур\w*|"
        r"\bтекстур\w*|\bобив\w*|\bперетян\w*|\bmade (?:of|from|out of)\b|\bout of (?:"
        + _MATERIALS_EN
        + r")\b|\bmaterials?\b|\btextures?\b|\bfinish\b|\b(?:re)?upholster\w*",
    ),
    (Intent.MATERIAL_CHANGE, r"\b(?:" + _MATERIALS_RU + "|" + _MATERIALS_EN + r")\b"),
    (
        Intent.COLOR_CHANGE,
        r"\b(?:" + _COLOURS_RU + ")" + _ADJ_ENDINGS + r"\b|\b(?:" + _COLOURS_EN + r")\b",
    ),
    # Brighter or darker without a colour or material named is about the light.
    (
        Intent.LIGHTING_CHANGE,
        r"\bярче\b|\bтемнее\b|\bсветлее\b|\bbrighter\b|\bdarker\b|\blighter\b|\bdim\w*",
    ),
    # "Replace the dog with a cat": an object goes, another comes (same denoise range).
    (Intent.ADD_OBJECT, r"\bзамен\w*|\bпомен\w* на\b|\breplac\w*|\bswap\w*"),
    (
        Intent.MINOR_EDIT,
        r"\bнемного\b|\bчуть\b|\bслегка\b|\bедва\b|\bнезначительн\w*|\bslightly\b|"
        r"\ba (?:little )?bit\b|\bsubtl\w*|\bminor\b|\bsmall change\w*",
    ),
)
_COMPILED_RULES = tuple((intent, re.compile(pattern, re.IGNORECASE)) for intent, pattern in _RULES)


def detect_intent(instruction: str) -> IntentMatch | None:
    """Finds the intent of an instruction by keyword rules (Russian and English).

    Args:
        instruction: The caller's instruction.

    Returns:
        The first matching rule's intent and keyword, or None when nothing matched.
    """
    text = _fold(instruction)
    for intent, pattern in _COMPILED_RULES:
        match = pattern.search(text)
        if match:
            return IntentMatch(intent=intent, keyword=match.group(0))
    return None


# --------------------------------------------------------------------------- glossary

_MATERIAL_GENITIVES = (
    r"бархат|мрамор|кож|металл|стекл|камн|бетон|кирпич|золот|серебр|латун|мед|стал|шелк|"
    r"льн|хлопк|шерст|замш|ткан|керамик|пластик|фарфор|гранит|дуб|орех|бамбук|ротанг|"
    r"велюр|вельвет|букле"
)
_NOUN_ENDINGS = r"(?:а|я|о|е|и|ы|у|ю|ой|ей|ом|ем|ам|ям|ами|ями|ах|ях|ов|ев|ь|ью)?"
_PLURAL_ENDINGS = r"(?:ы|и|ов|ев|ам|ям|ами|ями|ах|ях)"


def _adjective(stem: str, english: str) -> list[tuple[str, str]]:
    return [(rf"\b{stem}{_ADJ_ENDINGS}\b", english)]


def _noun(stem: str, singular: str, plural: str | None = None) -> list[tuple[str, str]]:
    entries = []
    if plural is not None:
        entries.append((rf"\b{stem}{_PLURAL_ENDINGS}\b", plural))
    entries.append((rf"\b{stem}{_NOUN_ENDINGS}\b", singular))
    return entries


def _word(pattern: str, english: str) -> list[tuple[str, str]]:
    return [(rf"\b(?:{pattern})\b", english)]


# Most specific first: phrases, then compounds, then words, then prepositions.
_GLOSSARY: tuple[tuple[str, str], ...] = tuple(
    entry
    for group in (
        # Phrases.
        _word(r"в стиле", "in the style of"),
        _word(r"в духе", "in the spirit of"),
        _word(r"не меняя|не изменяя", "without changing"),
        _word(r"журнальн\w* столик\w*", "coffee table"),
        _word(r"дневн\w* свет\w*", "daylight"),
        _word(r"золот\w* час\w*", "golden hour"),
        _word(r"ван гог\w*", "Van Gogh"),
        _word(r"из дерева", "out of wood"),
        _word(r"картин\w* маслом|маслян\w* живопис\w*", "oil painting"),
        _word(r"как на картин\w*|как картин\w*", "like a painting"),
        [(r"\bиз(?=\s+(?:" + _MATERIAL_GENITIVES + r"))", "out of")],
        # Compound colours: «тёмно-зелёный» → "dark green".
        [(r"\bтемно-(?=\w)", "dark "), (r"\bсветло-(?=\w)", "light ")],
        [(r"\bярко-(?=\w)", "bright "), (r"\bбледно-(?=\w)", "pale ")],
        [(r"\bнасыщенно-(?=\w)", "deep "), (r"\bглубоко-(?=\w)", "deep ")],
        [(r"\bсине-(?=\w)", "blue-"), (r"\bзелено-(?=\w)", "green-")],
        [(r"\bсеро-(?=\w)", "grey-"), (r"\bжелто-(?=\w)", "yellow-")],
        [(r"\bкрасно-(?=\w)", "red-"), (r"\bчерно-(?=\w)", "black-")],
        [(r"\bбело-(?=\w)", "white-"), (r"\bрозово-(?=\w)", "pink-")],
        # Colours.
        _adjective("красн", "red"),
        _adjective("зелен", "green"),
        _adjective("син", "blue"),
        _adjective("голуб", "light blue"),
        _adjective("желт", "yellow"),
        _adjective("черн", "black"),
        _adjective("бел", "white"),
        _adjective("сер", "grey"),
        _adjective("оранжев", "orange"),
        _adjective("фиолетов", "purple"),
        _adjective("розов", "pink"),
        _adjective("коричнев", "brown"),
        _adjective("бежев", "beige"),
        _adjective("бордов", "burgundy"),
        _adjective("бирюзов", "turquoise"),
        _adjective("лилов", "lilac"),
        _adjective("сиренев", "lilac"),
        _adjective("пурпурн", "purple"),
        _adjective("салатов", "lime green"),
        _adjective("изумрудн", "emerald green"),
        _adjective("терракотов", "terracotta"),
        _adjective("горчичн", "mustard yellow"),
        _adjective("оливков", "olive green"),
        _adjective("кремов", "cream"),
        _adjective("графитов", "graphite grey"),
        _adjective("песочн", "sand-coloured"),
        _adjective("мятн", "mint green"),
        _adjective("лазурн", "azure"),
        _adjective("багров", "crimson"),
        _adjective("малинов", "raspberry red"),
        _adjective("кораллов", "coral"),
        _adjective("персиков", "peach"),
        _adjective("лавандов", "lavender"),
        _adjective("шоколадн", "chocolate brown"),
        _adjective("молочн", "milky white"),
        _adjective("кофейн", "coffee brown"),
        _adjective("золотист", "golden"),
        _adjective("серебрист", "silvery"),
        _adjective("пастельн", "pastel"),
        _word(r"цветы|цветов|цветами|цветах|цветочк\w*", "flowers"),
        _word(r"цвет(?:а|е|ом|у)?", "colour"),
        _word(r"оттен\w*", "shade"),
        # Materials.
        _noun("бархат", "velvet"),
        _adjective("бархатн", "velvet"),
        _noun("дерев", "tree", "trees"),
        _word(r"деревья|деревьев|деревьями", "trees"),
        _adjective("деревянн", "wooden"),
        _noun("мрамор", "marble"),
        _adjective("мраморн", "marble"),
        _word(r"кож(?:а|и|у|ей|е)", "leather"),
        _adjective("кожан", "leather"),
        _noun("металл", "metal"),
        _adjective("металлическ", "metallic"),
        _word(r"стекл(?:о|а|ом|е)", "glass"),
        _adjective("стеклянн", "glass"),
        _word(r"кам(?:ень|ня|нем|не|ни|ней)", "stone"),
        _adjective("каменн", "stone"),
        _noun("бетон", "concrete"),
        _adjective("бетонн", "concrete"),
        _noun("кирпич", "brick"),
        _adjective("кирпичн", "brick"),
        _word(r"золот(?:о|а|ом|е)", "gold"),
        _adjective("золот", "gold"),
        _word(r"серебр(?:о|а|ом|е)", "silver"),
        _adjective("серебрян", "silver"),
        _word(r"латун(?:ь|и|ью)", "brass"),
        _adjective("латунн", "brass"),
        _word(r"мед(?:ь|и|ью)", "copper"),
        _adjective("медн", "copper"),
        _word(r"стал(?:ь|ью)", "steel"),
        _adjective("стальн", "steel"),
        _word(r"шелк(?:а|ом|е|у)?", "silk"),
        _adjective("шелков", "silk"),
        _word(r"лен|льна|льном|льне", "linen"),
        _adjective("льнян", "linen"),
        _word(r"хлоп(?:ок|ка|ком|ке)", "cotton"),
        _adjective("хлопков", "cotton"),
        _word(r"шерст(?:ь|и|ью)", "wool"),
        _adjective("шерстян", "woollen"),
        _word(r"замш(?:а|и|у|ей|е)", "suede"),
        _adjective("замшев", "suede"),
        _noun("ткан", "fabric", "fabrics"),
        _noun("керамик", "ceramic"),
        _adjective("керамическ", "ceramic"),
        _noun("пластик", "plastic"),
        _adjective("пластиков", "plastic"),
        _noun("фарфор", "porcelain"),
        _noun("гранит", "granite"),
        _noun("паркет", "parquet"),
        _noun("плитк", "tiles"),
        _adjective("дубов", "oak"),
        _adjective("орехов", "walnut"),
        _noun("бамбук", "bamboo"),
        _noun("ротанг", "rattan"),
        _adjective("плетен", "wicker"),
        _noun("велюр", "velour"),
        _noun("вельвет", "corduroy"),
        _word(r"букле", "bouclé"),
        _noun("материал", "material", "materials"),
        _noun("текстур", "texture"),
        _noun("фактур", "texture"),
        _noun("обивк", "upholstery"),
        # Objects and places.
        _noun("диван", "sofa", "sofas"),
        _noun("кресл", "armchair", "armchairs"),
        _word(r"стулья|стульев|стульями|стульях", "chairs"),
        _noun("стул", "chair"),
        _noun("стол", "table", "tables"),
        _noun("столик", "small table", "small tables"),
        _noun("кроват", "bed", "beds"),
        _noun("шкаф", "wardrobe", "wardrobes"),
        _noun("комод", "chest of drawers"),
        _noun("тумбочк", "nightstand", "nightstands"),
        _noun("полк", "shelf", "shelves"),
        _noun("торшер", "floor lamp"),
        _noun("ламп", "lamp", "lamps"),
        _noun("люстр", "chandelier"),
        _word(r"окн(?:о|а|ом|е|у)", "window"),
        _word(r"окна|окон|окнами|окнах", "windows"),
        _noun("двер", "door", "doors"),
        _noun("стен", "wall", "walls"),
        _word(r"пол(?:а|у|ом)?", "floor"),
        _word(r"полы|полов", "floors"),
        _word(r"потол(?:ок|ка|ку|ком|ке)", "ceiling"),
        _word(r"ков(?:ер|ра|ру|ром|ре)", "rug"),
        _word(r"ковры|ковров", "rugs"),
        _noun("штор", "curtains"),
        _noun("занавеск", "curtains"),
        _noun("подушк", "cushion", "cushions"),
        _noun("картин", "painting", "paintings"),
        _word(r"зеркал(?:о|а|ом|е)", "mirror"),
        _word(r"растени(?:е|я|ем|ю|й|ями|ях)", "plants"),
        _word(r"цвет(?:ок|ка|ком)", "flower"),
        _noun("ваз", "vase", "vases"),
        _noun("чашк", "cup", "cups"),
        _noun("чаш", "bowl", "bowls"),
        _noun("кружк", "mug", "mugs"),
        _noun("тарелк", "plate", "plates"),
        _noun("кухн", "kitchen"),
        _noun("комнат", "room", "rooms"),
        _noun("спальн", "bedroom"),
        _noun("гостин", "living room"),
        _word(r"ванн(?:ая|ой|ую)", "bathroom"),
        _noun("ванн", "bathtub"),
        _noun("дом", "house", "houses"),
        _noun("здани", "building"),
        _noun("фасад", "facade"),
        _noun("крыш", "roof"),
        _noun("балкон", "balcony"),
        _noun("камин", "fireplace"),
        _noun("лестниц", "stairs"),
        _noun("обои", "wallpaper"),
        _noun("телевизор", "TV"),
        _noun("книг", "book", "books"),
        _noun("машин", "car", "cars"),
        _noun("автомобил", "car", "cars"),
        _noun("кот", "cat", "cats"),
        _noun("кошк", "cat", "cats"),
        _noun("собак", "dog", "dogs"),
        _noun("птиц", "bird", "birds"),
        _word(r"человек|человека|человеку|человеком", "person"),
        _word(r"люди|людей|людьми", "people"),
        _noun("женщин", "woman", "women"),
        _noun("мужчин", "man", "men"),
        _noun("девушк", "young woman"),
        _word(r"ребен(?:ок|ка|ку|ком|ке)", "child"),
        _word(r"дети|детей|детьми", "children"),
        _word(r"неб(?:о|а|у|ом|е)", "sky"),
        _word(r"облак(?:о|а|ов|ами)", "clouds"),
        _word(r"солнц(?:е|а|ем|у)", "sun"),
        _noun("лун", "moon"),
        _word(r"мор(?:е|я|ю|ем)", "sea"),
        _word(r"гор(?:а|ы|у|ой|ах)", "mountains"),
        _noun("лес", "forest"),
        _noun("сад", "garden"),
        _noun("трав", "grass"),
        _word(r"снег(?:а|ом|у)?", "snow"),
        _noun("улиц", "street"),
        _noun("город", "city"),
        _noun("пляж", "beach"),
        _noun("волос", "hair"),
        _noun("плать", "dress"),
        _noun("фон", "background"),
        _noun("мебел", "furniture"),
        _noun("интерьер", "interior"),
        _noun("резкост", "sharpness"),
        _noun("яркост", "brightness"),
        _noun("контраст", "contrast"),
        _noun("насыщенност", "saturation"),
        _noun("шум", "noise"),
        # Styles.
        _noun("стил", "style"),
        _noun("акварел", "watercolour"),
        _adjective("акварельн", "watercolour"),
        _word(r"аниме", "anime"),
        _word(r"мульт\w*", "cartoon"),
        _noun("комикс", "comic book"),
        _word(r"маслом", "in oil paint"),
        _noun("живопис", "painting"),
        _noun("импрессионизм", "impressionism"),
        _adjective("импрессионистск", "impressionist"),
        _noun("кубизм", "cubism"),
        _noun("сюрреализм", "surrealism"),
        _word(r"поп-арт\w*", "pop art"),
        _word(r"пиксель-арт\w*", "pixel art"),
        _noun("эскиз", "sketch"),
        _word(r"набросок|наброска|наброском", "sketch"),
        _noun("карандаш", "pencil"),
        _noun("гравюр", "engraving"),
        _noun("киберпанк", "cyberpunk"),
        _noun("стимпанк", "steampunk"),
        _noun("винтаж", "vintage"),
        _adjective("винтажн", "vintage"),
        _word(r"ретро", "retro"),
        _word(r"нуар", "noir"),
        _adjective("фотореалистичн", "photorealistic"),
        _noun("фотографи", "photograph"),
        _word(r"фото", "photo"),
        _noun("лофт", "loft"),
        _adjective("скандинавск", "Scandinavian"),
        _noun("минимализм", "minimalism"),
        _adjective("минималистичн", "minimalist"),
        _word(r"барокко", "baroque"),
        _word(r"ар[- ]деко", "art deco"),
        _adjective("готическ", "gothic"),
        _adjective("японск", "Japanese"),
        _adjective("современн", "modern"),
        _adjective("классическ", "classic"),
        # Lighting and mood.
        _noun("закат", "sunset"),
        _adjective("закатн", "sunset"),
        _noun("рассвет", "sunrise"),
        _word(r"ноч(?:ь|и|ью)", "night"),
        _adjective("ночн", "night"),
        _word(r"сумерк(?:и|ах|ами)|сумерек", "dusk"),
        _word(r"утр(?:о|а|ом)", "morning"),
        _adjective("утренн", "morning"),
        _word(r"вечер(?:а|ом)?", "evening"),
        _adjective("вечерн", "evening"),
        _noun("освещени", "lighting"),
        _noun("подсветк", "backlighting"),
        _word(r"свет(?:а|ом|у|е)?", "light"),
        _word(r"тень|тени|теней|тенями", "shadows"),
        _adjective("солнечн", "sunlit"),
        _adjective("неонов", "neon"),
        _adjective("темн", "dark"),
        _adjective("светл", "light"),
        _adjective("ярк", "bright"),
        _adjective("тепл", "warm"),
        _adjective("холодн", "cool"),
        _adjective("мягк", "soft"),
        _adjective("матов", "matte"),
        _adjective("глянцев", "glossy"),
        _adjective("уютн", "cozy"),
        _adjective("больш", "large"),
        _adjective("маленьк", "small"),
        _adjective("нов", "new"),
        _adjective("стар", "old"),
        _word(r"ярче", "brighter"),
        _word(r"темнее", "darker"),
        _word(r"светлее", "lighter"),
        _word(r"теплее", "warmer"),
        _word(r"холоднее", "cooler"),
        # Verbs (imperative, infinitive and polite forms share the stem).
        _word(r"перекрас\w*", "recolour"),
        _word(r"покрас\w*|окрас\w*|раскрас\w*", "paint"),
        _word(r"сдела\w*", "make"),
        _word(r"добав\w*|дорису\w*|пририс\w*", "add"),
        _word(r"убер\w*|убра\w*|удал\w*|сотр\w*|стереть", "remove"),
        _word(r"замен\w*", "replace"),
        _word(r"помен\w*|измен\w*", "change"),
        _word(r"постав\w*|положи\w*", "put"),
        _word(r"помест\w*|размест\w*", "place"),
        _word(r"повес\w*", "hang"),
        _word(r"нарису\w*", "draw"),
        _word(r"перерису\w*", "redraw"),
        _word(r"преврат\w*", "turn"),
        _word(r"переосмысл\w*", "reimagine"),
        _word(r"осветл\w*", "lighten"),
        _word(r"затемн\w*", "darken"),
        _word(r"остав\w*|сохран\w*", "keep"),
        _word(r"стилизу\w*", "stylise"),
        _word(r"повыс\w*|увелич\w*|усил\w*", "increase"),
        _word(r"пониз\w*|уменьш\w*|сниз\w*|ослаб\w*", "reduce"),
        _adjective("реалистичн", "realistic"),
        # Small words.
        _word(r"остальн\w*", "the rest"),
        _word(r"полностью|целиком", "completely"),
        _word(r"немного|чуть-чуть|чуть|слегка", "slightly"),
        _word(r"очень", "very"),
        _word(r"более|больше", "more"),
        _word(r"менее|меньше", "less"),
        _word(r"вместо", "instead of"),
        _word(r"рядом с|рядом", "next to"),
        _word(r"около|возле", "near"),
        _word(r"перед", "in front of"),
        _word(r"между", "between"),
        _word(r"вокруг", "around"),
        _word(r"все|весь|всю|вся", "all"),
        _word(r"эт(?:от|а|о|у|ой|ом|и|их)", "this"),
        _word(r"его|ее|их", "it"),
        _word(r"как", "like"),
        _word(r"или", "or"),
        _word(r"но", "but"),
        _word(r"не", "not"),
        _word(r"без", "without"),
        _word(r"для", "for"),
        _word(r"под", "under"),
        _word(r"над", "above"),
        _word(r"за", "behind"),
        _word(r"из", "from"),
        _word(r"на", "on"),
        _word(r"с|со", "with"),
        _word(r"в|во", "in"),
        _word(r"и", "and"),
        _word(r"у", "by"),
        _word(r"к|ко", "to"),
        _word(r"по", "along"),
    )
    for entry in group
)
_COMPILED_GLOSSARY = tuple(
    (re.compile(pattern, re.IGNORECASE), english) for pattern, english in _GLOSSARY
)


@dataclass(frozen=True)
class Translation:
    """An instruction put into English as far as the glossary reaches.

    Attributes:
        text: The translated instruction; unknown words kept as written.
        translated_words: Non-English words the glossary replaced.
        untranslated: Non-English words left as written, in order.
    """

    text: str
    translated_words: int
    untranslated: tuple[str, ...]


def translate(instruction: str) -> Translation:
    """Replaces the words the glossary knows by English, keeping everything else.

    Args:
        instruction: The instruction, any language (English passes through unchanged).

    Returns:
        The translation and how much of it the glossary covered.
    """
    text = _fold(instruction)
    before = len(non_latin_words(text))
    if before == 0:
        return Translation(text=instruction, translated_words=0, untranslated=())
    for pattern, english in _COMPILED_GLOSSARY:
        text = pattern.sub(english, text)
    untranslated = non_latin_words(text)
    text = re.sub(r"\s+", " ", text).strip()
    return Translation(
        text=text, translated_words=before - len(untranslated), untranslated=untranslated
    )


_WORD_RUNS = re.compile(r"\S+")


def leading_words(text: str, budget: int) -> str:
    """The part of ``text`` a prompt of ``budget`` CLIP tokens can draw on: its first
    ``2 × budget`` words (runs without whitespace), whitespace as written.

    Every word becomes at least one token in the prompt (the glossary's English, a
    transliteration, or the word itself; punctuation is a token of its own), so a prompt
    cut to the budget never reaches past word ``budget``; the second half is a margin for
    glossary phrases across the cut and for words dropped as untransliterable. The
    glossary then works on a few thousand characters, not on the instruction limit
    (its ~300 patterns took ~0.5 s of CPU on 65,536 characters of Russian).
    """
    limit = 2 * max(1, budget)
    pieces = _WORD_RUNS.finditer(text)
    for index, match in enumerate(pieces):
        if index == limit:
            return text[: match.start()].rstrip()
    return text


# --------------------------------------------------------------------------- prompt


def _sentence(text: str) -> str:
    text = text.strip().rstrip(",;:")
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def _listing(items: Sequence[str]) -> str:
    return ", ".join(item.strip() for item in items if item.strip())


def compose_prompt(change: str, intent: Intent | None, analysis: SourceAnalysis | None) -> str:
    """The rules' positive prompt: the change first, then what the source shows.

    Args:
        change: The instruction in English (as far as it could be translated).
        intent: The detected intent (decides what of the source is kept).
        analysis: The source analysis; None for text-to-image or when there is none.

    Returns:
        A prompt of plain sentences (validated by the caller).
    """
    parts = [_sentence(change)]
    if analysis is None or analysis.is_empty:
        return " ".join(part for part in parts if part)
    reimagined = intent is Intent.FULL_REIMAGINING
    parts.append(_sentence(analysis.description))
    if analysis.subjects and not reimagined:
        parts.append(_sentence("In the scene: " + _listing(analysis.subjects)))
    if analysis.materials and intent not in (Intent.MATERIAL_CHANGE, Intent.FULL_REIMAGINING):
        parts.append(_sentence("Materials: " + _listing(analysis.materials)))
    if analysis.colors and intent not in (Intent.COLOR_CHANGE, Intent.FULL_REIMAGINING):
        parts.append(_sentence("Colours: " + _listing(analysis.colors)))
    if analysis.style and intent not in (Intent.STYLE_TRANSFER, Intent.FULL_REIMAGINING):
        parts.append(_sentence(f"Style: {analysis.style}"))
    if analysis.lighting and intent not in (Intent.LIGHTING_CHANGE, Intent.FULL_REIMAGINING):
        parts.append(_sentence(f"Lighting: {analysis.lighting}"))
    if analysis.composition and not reimagined:
        parts.append(_sentence(f"Composition: {analysis.composition}"))
    return " ".join(part for part in parts if part)


KEEP_THE_REST = "Keep everything else in the picture unchanged."
"""What the rules' Kontext instruction keeps: they cannot tell which objects the change spares."""


def compose_instruction(change: str) -> str:
    """The rules' instruction for an instruction-editing model: the change, then what stays.

    Args:
        change: The instruction in English (as far as it could be translated).

    Returns:
        Imperative sentences (validated by the caller); empty when ``change`` is.
    """
    order = _sentence(change)
    return f"{order} {KEEP_THE_REST}" if order else ""


_NAMED = 6  # words named in one warning


def _named(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_NAMED])
    return shown + (f" and {len(items) - _NAMED} more" if len(items) > _NAMED else "")


@dataclass(frozen=True)
class LatinPrompt:
    """The rules' prompt with every word in the Latin script.

    Attributes:
        text: The prompt: the glossary's English, Cyrillic it does not know
            transliterated, other scripts' letters dropped.
        warnings: One warning naming the words concerned; empty for English text.
        transliterated: The words transliterated or dropped, for the logs.
    """

    text: str
    warnings: tuple[str, ...]
    transliterated: tuple[str, ...]


def latin_prompt(instruction: str, prompt: str) -> LatinPrompt:
    """The rules' prompt in English as far as the glossary reaches, and Latin throughout.

    Args:
        instruction: The caller's instruction (names what was not in English).
        prompt: The composed prompt (the instruction plus the analysis), any language.

    Returns:
        The prompt and what it took.
    """
    glossed = translate(prompt)
    latin = transliterate(glossed.text)
    notes: list[str] = []
    if glossed.translated_words or glossed.untranslated:
        what = "instruction" if not is_latin_text(instruction) else "analysis"
        notes.append(
            f"the {what} is not in English and was not translated by a model: a glossary "
            f"replaced {glossed.translated_words} word(s)"
        )
    if latin.transliterated:
        spelled = [f"{word} → {latin_word}" for word, latin_word in latin.transliterated]
        notes.append(f"transliterated the words the glossary does not know: {_named(spelled)}")
    if latin.dropped:
        notes.append(
            f"dropped the words in a script without a transliteration: {_named(latin.dropped)}"
        )
    return LatinPrompt(
        text=latin.text,
        warnings=("; ".join(notes),) if notes else (),
        transliterated=(*(word for word, _ in latin.transliterated), *latin.dropped),
    )
