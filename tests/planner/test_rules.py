"""Keyword rules, glossary and rules prompt (Russian and English)."""

from __future__ import annotations

import pytest

from services.common.clip_tokenizer import default_tokenizer
from services.common.prompts import validate_prompt
from services.planner.intents import Intent
from services.planner.plans import SourceAnalysis
from services.planner.rules import (
    compose_prompt,
    detect_intent,
    latin_prompt,
    leading_words,
    translate,
)

INSTRUCTIONS: list[tuple[str, Intent | None]] = [
    ("Перекрась диван в тёмно-зелёный бархат", Intent.COLOR_CHANGE),
    ("Перекрась стены в тёплый бежевый", Intent.COLOR_CHANGE),
    ("Поменяй цвет штор на синий", Intent.COLOR_CHANGE),
    ("Сделай стены синими", Intent.COLOR_CHANGE),
    ("Recolor the car bright red", Intent.COLOR_CHANGE),
    ("Make the sofa green", Intent.COLOR_CHANGE),
    ("Сделай стол из мрамора", Intent.MATERIAL_CHANGE),
    ("Сделай из дерева", Intent.MATERIAL_CHANGE),
    ("Сделай диван кожаным", Intent.MATERIAL_CHANGE),
    ("Replace the wooden floor with marble", Intent.MATERIAL_CHANGE),
    ("Make the chair out of brass", Intent.MATERIAL_CHANGE),
    ("Сделай картинку в стиле Ван Гога", Intent.STYLE_TRANSFER),
    ("Нарисуй это акварелью", Intent.STYLE_TRANSFER),
    ("Make it look like a watercolor painting", Intent.STYLE_TRANSFER),
    ("Anime style, please", Intent.STYLE_TRANSFER),
    ("Добавь вазу с цветами на стол", Intent.ADD_OBJECT),
    ("Поставь торшер рядом с креслом", Intent.ADD_OBJECT),
    ("Add a cat sleeping on the sofa", Intent.ADD_OBJECT),
    ("Replace the dog with a cat", Intent.ADD_OBJECT),
    ("Убери стул у окна", Intent.REMOVE_OBJECT),
    ("Удали людей с фотографии", Intent.REMOVE_OBJECT),
    ("Remove the lamp from the table", Intent.REMOVE_OBJECT),
    ("Get rid of the clutter on the desk", Intent.REMOVE_OBJECT),
    ("Сделай закатное освещение", Intent.LIGHTING_CHANGE),
    ("Добавь больше света", Intent.LIGHTING_CHANGE),
    ("Сделай ночь за окном", Intent.LIGHTING_CHANGE),
    ("Сделай фото ярче", Intent.LIGHTING_CHANGE),
    ("Make the lighting warmer, like golden hour", Intent.LIGHTING_CHANGE),
    ("Убери шум и немного повысь резкость", Intent.MINOR_EDIT),
    ("Slightly sharpen the photo", Intent.MINOR_EDIT),
    ("Retouch the scratches on the table", Intent.MINOR_EDIT),
    ("Полностью переосмысли комнату", Intent.FULL_REIMAGINING),
    ("Reimagine the room as a spaceship interior", Intent.FULL_REIMAGINING),
    ("Преврати гостиную в джунгли", Intent.FULL_REIMAGINING),
    ("Что-нибудь интересное", None),
    ("Surprise me", None),
]


@pytest.mark.parametrize(("instruction", "expected"), INSTRUCTIONS)
def test_rules_detect_the_intent_of_an_instruction(
    instruction: str, expected: Intent | None
) -> None:
    match = detect_intent(instruction)
    assert (match.intent if match else None) is expected


def test_rules_read_yo_and_ye_alike() -> None:
    first = detect_intent("Сделай зелёный диван")
    second = detect_intent("Сделай зеленый диван")
    assert first is not None and second is not None
    assert first.intent is second.intent is Intent.COLOR_CHANGE


def test_colour_words_inside_other_words_do_not_count() -> None:
    # «белка» (squirrel) and «сердце» (heart) start like «белый» and «серый».
    assert detect_intent("Белка и сердце") is None


def test_glossary_translates_the_sofa_instruction_into_english() -> None:
    translation = translate("Перекрась диван в тёмно-зелёный бархат")
    assert translation.text == "recolour sofa in dark green velvet"
    assert translation.untranslated == ()
    assert translation.translated_words == 6  # «тёмно-зелёный» counts as two words


def test_glossary_keeps_unknown_words_as_written() -> None:
    translation = translate("Добавь на стол кальян")
    assert "add" in translation.text
    assert "table" in translation.text
    assert "кальян" in translation.text
    assert translation.untranslated == ("кальян",)


def test_glossary_leaves_english_untouched() -> None:
    assert translate("Make the Sofa green").text == "Make the Sofa green"


def test_rules_prompt_puts_the_change_first_and_keeps_the_source() -> None:
    analysis = SourceAnalysis(
        description="A living room with a grey sofa.",
        subjects=("sofa", "window"),
        colors=("grey", "white"),
        materials=("fabric", "wood"),
        style="photograph",
        lighting="soft daylight",
        composition="wide shot",
    )
    prompt = compose_prompt("recolour sofa in dark green velvet", Intent.COLOR_CHANGE, analysis)
    assert prompt.startswith("Recolour sofa in dark green velvet. A living room")
    assert "Lighting: soft daylight." in prompt
    assert "Style: photograph." in prompt
    # The source's colours are what changes, so they are not asked for again.
    assert "Colours:" not in prompt


def test_rules_prompt_without_analysis_is_the_change_alone() -> None:
    assert compose_prompt("a red fox in the snow", None, None) == "A red fox in the snow."


def test_leading_words_keeps_twice_the_budget_in_words_as_written() -> None:
    text = "один  два\tтри\nчетыре пять"
    assert leading_words(text, 2) == "один  два\tтри\nчетыре"
    assert leading_words(text, 3) == text
    assert leading_words("", 400) == ""


def test_a_long_instruction_gives_the_prompt_its_leading_words_give() -> None:
    # The rules translate only the leading words of an instruction; what reaches a prompt
    # cut to the budget is the same as from translating all of it.
    sentences = [
        "Перекрась диван в тёмно-зелёный бархат, а стены сделай тёплыми бежевыми.",
        "Добавь вазу с цветами на стол и убери стул у окна.",
        "Сделай закатное освещение, ярче и теплее, в стиле Ван Гога.",
        "Ковёр замени на деревянный пол, шторы сделай синими.",
    ]
    instruction = " ".join(sentences[i % 4] for i in range(400))
    count = default_tokenizer().count

    def prompt(change: str) -> str:
        composed = latin_prompt(instruction, compose_prompt(change, Intent.COLOR_CHANGE, None))
        return validate_prompt(composed.text, budget=400, count=count).text

    cut = leading_words(instruction, 400)
    assert len(cut) < len(instruction) // 3
    assert prompt(cut) == prompt(instruction)
