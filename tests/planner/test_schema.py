"""What the text model is asked and how its answer is read."""

from __future__ import annotations

import json

import pytest

from services.common.llm import UnusableAnswerError, is_retryable
from services.planner.intents import Intent
from services.planner.plans import Mode, SourceAnalysis
from services.planner.schema import PLAN_SCHEMA, SYSTEM_PROMPT, parse_plan, user_message


def test_schema_is_flat_and_requires_every_field() -> None:
    assert "$defs" not in PLAN_SCHEMA and "$ref" not in json.dumps(PLAN_SCHEMA)
    assert set(PLAN_SCHEMA["required"]) == {
        "intent",
        "positive_prompt",
        "negative_prompt",
        "edit_instruction",
        "denoise",
        "steps",
        "guidance",
    }
    assert PLAN_SCHEMA["properties"]["intent"]["enum"] == [i.value for i in Intent]


def test_system_prompt_lists_every_intent_with_its_range() -> None:
    for intent in Intent:
        assert intent.value in SYSTEM_PROMPT
    assert "0.80–0.90" in SYSTEM_PROMPT


def test_user_message_carries_the_instruction_and_the_analysis_as_json() -> None:
    analysis = SourceAnalysis(description="A grey sofa.", subjects=("sofa",), colors=("grey",))
    message = user_message("Перекрась диван", Mode.IMAGE_TO_IMAGE, analysis)
    assert "Instruction: Перекрась диван" in message
    embedded = json.loads(message.split("(JSON): ", 1)[1])
    assert embedded == {"description": "A grey sofa.", "subjects": ["sofa"], "colors": ["grey"]}


def test_text_to_image_message_has_no_analysis() -> None:
    message = user_message("a fox", Mode.TEXT_TO_IMAGE, None)
    assert message == "Mode: text-to-image\nInstruction: a fox"


def test_out_of_range_numbers_are_parsed_for_clamping_later() -> None:
    plan = parse_plan(
        '{"intent": "color_change", "positive_prompt": "a sofa", "negative_prompt": "",'
        ' "denoise": 1.7, "steps": 0, "guidance": 3.5}'
    )
    assert (plan.denoise, plan.steps) == (1.7, 0)


@pytest.mark.parametrize(
    "content",
    [
        "Sure! Here is the JSON: {",
        '{"intent": "color_change"}',
        '{"intent": "paint_it_black", "positive_prompt": "x", "negative_prompt": "",'
        ' "denoise": 0.8, "steps": 25, "guidance": 3.5}',
        '["not", "an", "object"]',
    ],
)
def test_an_invalid_answer_is_a_retryable_error(content: str) -> None:
    with pytest.raises(UnusableAnswerError) as caught:
        parse_plan(content)
    assert is_retryable(caught.value)
