"""The text model reads instructions like a planner would: intent, English prompt, numbers."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest

from standins.ollama.intents import choose_intent, detect_concepts, render_instruction

from .samples import PLAN_SCHEMA

SOFA = "Перекрась диван в тёмно-зелёный бархат"
PLANNER_INTENTS = [
    "color_change",
    "material_change",
    "style_transfer",
    "add_object",
    "remove_object",
    "lighting_change",
    "minor_edit",
    "full_reimagining",
    "text_to_image",
]
# The shape of the planner's request: flat, every key required, the intent as an enum.
PLANNER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "PromptPlan",
    "properties": {
        "intent": {"type": "string", "enum": PLANNER_INTENTS},
        "positive_prompt": {"type": "string"},
        "negative_prompt": {"type": "string"},
        "denoise": {"type": "number", "minimum": 0.0, "maximum": 1.0},
        "steps": {"type": "integer", "minimum": 1, "maximum": 100},
        "guidance": {"type": "number", "minimum": 0.0, "maximum": 10.0},
    },
    "required": ["intent", "positive_prompt", "negative_prompt", "denoise", "steps", "guidance"],
}
LIVING_ROOM = {
    "description": "A bright living room with a light grey fabric sofa under a large window.",
    "subjects": ["sofa", "window", "coffee table"],
    "colors": ["light grey", "white", "beige"],
    "materials": ["fabric", "wood"],
    "style": "photograph",
    "lighting": "soft daylight from the left",
    "composition": "eye-level wide shot, sofa centred",
}


def _user_message(instruction: str, analysis: dict[str, Any] | None = LIVING_ROOM) -> str:
    """A user message laid out as the planner lays it out."""
    if analysis is None:
        return f"Mode: text-to-image\nInstruction: {instruction}"
    return (
        f"Mode: image-to-image\nInstruction: {instruction}\n"
        f"Source image analysis (JSON): {json.dumps(analysis, ensure_ascii=False)}"
    )


async def _plan(
    http: httpx.AsyncClient,
    instruction: str,
    *,
    analysis: dict[str, Any] | None = LIVING_ROOM,
    schema: dict[str, Any] = PLANNER_SCHEMA,
) -> dict[str, Any]:
    request = {
        "model": "gpt-oss:20b",
        "messages": [
            {"role": "system", "content": "You plan image edits. Answer with JSON."},
            {"role": "user", "content": _user_message(instruction, analysis)},
        ],
        "format": schema,
        "think": "low",
        "stream": False,
    }
    response = await http.post("/api/chat", json=request)
    assert response.status_code == 200, response.text
    plan: dict[str, Any] = json.loads(response.json()["message"]["content"])
    jsonschema.validate(plan, schema)
    return plan


@pytest.mark.parametrize(
    ("instruction", "intent"),
    [
        (SOFA, "color_change"),
        ("Покрась стены в светло-бежевый", "color_change"),
        ("Сделай стены белыми", "color_change"),
        ("Измени цвет дивана на синий", "color_change"),
        ("make it navy blue", "color_change"),
        ("Recolour the armchair to mustard yellow", "color_change"),
        ("Сделай стол из мрамора", "material_change"),
        ("Сделай диван из красного бархата", "material_change"),
        ("Сделай кресло кожаным", "material_change"),
        ("make the table out of marble", "material_change"),
        ("В стиле акварели", "style_transfer"),
        ("сделай в стиле акварели, ночью", "style_transfer"),
        ("turn it into an anime illustration", "style_transfer"),
        ("in the style of Van Gogh", "style_transfer"),
        ("Добавь вазу с цветами на стол", "add_object"),
        ("add a cat on the sofa", "add_object"),
        ("Замени стул на кресло", "add_object"),
        ("Убери стул у окна", "remove_object"),
        ("Удали надпись", "remove_object"),
        ("erase the lamp from the table", "remove_object"),
        ("Сделай закатное освещение", "lighting_change"),
        ("Замени небо на закат", "lighting_change"),
        ("make it look like night", "lighting_change"),
        ("Сделай ярче", "lighting_change"),
        ("Убери шум и немного повысь резкость", "minor_edit"),
        ("слегка подправь", "minor_edit"),
        ("slightly touch up the photo", "minor_edit"),
        ("Полностью переосмысли комнату", "full_reimagining"),
        ("completely reimagine this room", "full_reimagining"),
    ],
)
def test_intent_follows_the_instruction_in_russian_and_english(
    instruction: str, intent: str
) -> None:
    assert choose_intent(PLANNER_INTENTS, instruction, has_source_image=True)[0] == intent


@pytest.mark.parametrize(
    ("instruction", "allowed", "intent"),
    [
        # A value is reached through its distinctive word only: a generic change is
        # never a "minor_edit" just because that value contains "edit".
        ("сделай что-нибудь", ["minor_edit", "img2img_edit"], "img2img_edit"),
        (SOFA, ["txt2img", "img2img_edit", "img2img_restyle"], "img2img_edit"),
        ("В стиле акварели", ["txt2img", "img2img_edit", "img2img_restyle"], "img2img_restyle"),
        ("Recolor the sofa", ["edit", "Colour Change"], "Colour Change"),
        ("убери фон", ["generate", "inpaint", "remove-object"], "remove-object"),
        # A replacement is planned as an addition when the schema has no "replace".
        ("Замени стул на кресло", ["add_object", "remove_object"], "add_object"),
        # An upscale asked of a schema without one becomes a minor edit.
        ("увеличь разрешение", ["color_change", "minor_edit"], "minor_edit"),
        # Nothing fits: the first value.
        (SOFA, ["alpha", "beta"], "alpha"),
    ],
)
def test_intent_is_mapped_onto_the_values_the_schema_offers(
    instruction: str, allowed: list[str], intent: str
) -> None:
    assert choose_intent(allowed, instruction, has_source_image=True)[0] == intent


def test_drawing_into_a_source_image_is_an_addition_not_a_new_image() -> None:
    with_source = choose_intent(PLANNER_INTENTS, "Нарисуй кота у окна", has_source_image=True)
    without = choose_intent(PLANNER_INTENTS, "Нарисуй кота у окна", has_source_image=False)
    assert (with_source[0], without[0]) == ("add_object", "text_to_image")


def test_a_recolouring_verb_outranks_the_material_it_names() -> None:
    names = [concept.name for concept in detect_concepts(SOFA)]
    assert names[:2] == ["color_change", "material_change"]


@pytest.mark.parametrize(
    ("instruction", "english"),
    [
        (SOFA, "Recolor the sofa in dark green velvet"),
        ("Сделай стол из мрамора", "Make the table out of marble"),
        ("Сделай кресло из тёмной кожи", "Make the armchair out of dark leather"),
        ("Покрась стены в светло-бежевый", "Paint the walls in light beige"),
        ("Добавь вазу с цветами на стол", "Add a vase with flowers on the table"),
        ("Убери стул у окна", "Remove the chair by the window"),
        ("убери кошку и собаку с кровати", "Remove the cat and dog from the bed"),
        ("Замени небо на закат", "Replace the sky with sunset"),
        ("Поменяй цвет стен на голубой", "Change the colour of the walls to light blue"),
        ("Сделай ярче", "Make it brighter"),
        ("Сине-зелёные шторы", "Blue-green curtains"),
        ("Перекрась кружку в ярко-красный, сохрани блюдце", "Recolor the mug in bright red"),
        ("Полностью переосмысли комнату", "Completely reimagine the room"),
        ("Нарисуй дерево у дома", "Draw a tree by the house"),
        ("Сделай деревянный пол", "Make the wooden floor"),
        ("сделай в стиле акварели, ночью", "Make it in the style of watercolor painting"),
        ("Please could you make the walls light blue", "Make the walls light blue"),
    ],
)
def test_the_instruction_is_rendered_in_english(instruction: str, english: str) -> None:
    text = render_instruction(instruction).text
    assert text.startswith(english)
    assert not re.search("[а-яА-ЯёЁ]", text)


@pytest.mark.parametrize(
    ("word", "colour"),
    [
        ("зелёный", "green"),
        ("зеленого", "green"),
        ("зелёными", "green"),
        ("синяя", "blue"),
        ("синее", "blue"),
        ("голубую", "light blue"),
        ("жёлтый", "yellow"),
        ("желтые", "yellow"),
        ("бежевой", "beige"),
        ("чёрным", "black"),
        ("серую", "grey"),
        ("коричневых", "brown"),
        ("розовое", "pink"),
        ("фиолетовый", "purple"),
        ("оранжевая", "orange"),
        ("золотой", "gold"),
        ("серебряный", "silver"),
        ("тёмно-зелёный", "dark green"),
        ("светло-серые", "light grey"),
        ("ярко-красным", "bright red"),
    ],
)
def test_colours_are_read_in_every_case_and_gender(word: str, colour: str) -> None:
    assert render_instruction(f"Перекрась диван в {word}").colours == (colour,)


def test_what_an_instruction_names_is_listed() -> None:
    rendering = render_instruction("Перекрась кресло и стол в синий бархат, убери лампу")
    assert rendering.objects == ("armchair", "table", "lamp")
    assert (rendering.colours, rendering.materials) == (("blue",), ("velvet",))
    assert rendering.removed == ("lamp",)


@pytest.mark.parametrize(
    ("instruction", "english"),
    [
        ("Добавь цветы", "flowers"),
        ("Измени цвет", "colour"),
        ("Нарисуй дерево", "tree"),
        ("Сделай из дерева", "wood"),
        ("Сделай полку", "shelf"),
        ("Перекрась пол", "floor"),
    ],
)
def test_similar_russian_words_are_told_apart(instruction: str, english: str) -> None:
    assert re.search(rf"\b{english}\b", render_instruction(instruction).text)


async def test_the_sofa_instruction_gets_a_colour_change_plan(http: httpx.AsyncClient) -> None:
    plan = await _plan(http, SOFA)
    assert plan["intent"] == "color_change"
    prompt = plan["positive_prompt"]
    assert prompt.startswith("Recolor the sofa in dark green velvet")
    assert prompt.isascii() and "sofa" in prompt and "green" in prompt
    # The rest of the source stays: its subjects, lighting and composition follow.
    assert "coffee table" in prompt and "soft daylight from the left" in prompt
    # The old colour of the sofa, read from the analysis, must not come back.
    assert plan["negative_prompt"].startswith("light grey sofa, ")
    assert (plan["denoise"], plan["steps"], plan["guidance"]) == (0.85, 28, 3.5)


@pytest.mark.parametrize(
    ("instruction", "denoise"),
    [
        (SOFA, 0.85),
        ("Сделай стол из мрамора", 0.80),
        ("В стиле акварели", 0.72),
        ("Добавь вазу на стол", 0.68),
        ("Убери стул", 0.68),
        ("Сделай закатное освещение", 0.52),
        ("Убери шум и немного повысь резкость", 0.42),
        ("Полностью переосмысли комнату", 0.90),
    ],
)
async def test_denoise_suits_the_intent(
    http: httpx.AsyncClient, instruction: str, denoise: float
) -> None:
    assert (await _plan(http, instruction))["denoise"] == denoise


async def test_a_removal_names_what_goes_in_the_negative_prompt(http: httpx.AsyncClient) -> None:
    plan = await _plan(http, "Убери стул у окна")
    assert plan["intent"] == "remove_object"
    assert plan["negative_prompt"].startswith("chair, ")


async def test_text_to_image_mode_plans_a_new_image(http: httpx.AsyncClient) -> None:
    plan = await _plan(http, "Нарисуй кота в шляпе", analysis=None)
    assert plan["intent"] == "text_to_image" and plan["denoise"] == 1.0
    assert plan["positive_prompt"].startswith("Draw a cat in the hat")


async def test_the_planner_schema_of_the_samples_validates_too(http: httpx.AsyncClient) -> None:
    plan = await _plan(http, SOFA, schema=PLAN_SCHEMA)
    assert plan["intent"] == "img2img_edit"
    assert (plan["cfg"], plan["steps"], plan["guidance"]) == (1.0, 28, 3.5)
    assert "sofa" in plan["positive_prompt"] and "green" in plan["positive_prompt"]
