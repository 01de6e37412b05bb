"""The reply schema, the tidying of answers, the completeness check and the re-ask."""

from __future__ import annotations

import json

import pytest

from services.common.llm import UnusableAnswerError, is_retryable
from services.vision.analysis import (
    ANALYSIS_FIELDS,
    ANALYSIS_SCHEMA,
    ModelReply,
    empty_fields,
    find_gaps,
    mentions_subject,
    merge_replies,
    parse_reply,
    reask_prompt,
)

COMPLETE = {
    "description": "A cup of coffee on a saucer on a wooden table.",
    "subjects": ["coffee cup", "saucer"],
    "colors": ["dark brown", "white"],
    "materials": ["ceramic", "wood"],
    "style": "photograph",
    "lighting": "soft daylight",
    "composition": "close-up from above",
}


def test_schema_requires_every_field_and_is_flat() -> None:
    assert set(ANALYSIS_SCHEMA["required"]) == set(ModelReply.model_fields)
    assert "$defs" not in ANALYSIS_SCHEMA
    assert ANALYSIS_SCHEMA["properties"]["colors"]["type"] == "array"


def test_parse_reply_reads_a_complete_answer() -> None:
    reply = parse_reply(json.dumps(COMPLETE))
    assert reply.colors == ["dark brown", "white"]
    assert find_gaps(reply) == []


def test_parse_reply_drops_placeholders_and_duplicates() -> None:
    reply = parse_reply(
        json.dumps({**COMPLETE, "colors": ["Brown", "brown ", "unknown", ""], "style": "N/A"})
    )
    assert reply.colors == ["Brown"]
    assert reply.style == ""


def test_parse_reply_treats_absent_keys_as_empty_not_as_garbage() -> None:
    reply = parse_reply(json.dumps({"description": "A cat.", "subjects": ["cat"]}))
    assert reply.colors == [] and reply.materials == []


@pytest.mark.parametrize(
    "content",
    ["Sure! Here is the JSON: {", '["not", "an", "object"]', json.dumps({"subjects": "several"})],
)
def test_parse_reply_refuses_garbage_as_a_retryable_error(content: str) -> None:
    with pytest.raises(UnusableAnswerError) as caught:
        parse_reply(content)
    assert is_retryable(caught.value)


def test_find_gaps_names_each_empty_required_list() -> None:
    reply = parse_reply(json.dumps({**COMPLETE, "colors": [], "materials": ["none"]}))
    assert [gap.field for gap in find_gaps(reply)] == ["colors", "materials"]


def test_find_gaps_requires_the_description_to_name_the_main_subject() -> None:
    reply = parse_reply(json.dumps({**COMPLETE, "description": "A calm morning scene."}))
    gaps = find_gaps(reply)
    assert [gap.field for gap in gaps] == ["description"]
    assert "coffee cup" in gaps[0].problem
    # The description says something: it is re-asked, not reported as empty.
    assert not gaps[0].empty


@pytest.mark.parametrize("field", ANALYSIS_FIELDS)
def test_every_field_of_the_schema_is_checked(field: str) -> None:
    empty: object = [] if isinstance(COMPLETE[field], list) else ""
    reply = parse_reply(json.dumps({**COMPLETE, field: empty}))
    (gap,) = find_gaps(reply)
    assert gap.field == field and gap.empty
    assert reask_prompt([gap]).count(f"- {field}:") == 1


def test_the_completeness_check_covers_the_whole_schema() -> None:
    assert set(ANALYSIS_FIELDS) == set(ANALYSIS_SCHEMA["properties"])


def test_lighting_style_and_composition_left_empty_are_gaps() -> None:
    reply = parse_reply(
        json.dumps({**COMPLETE, "style": "unknown", "lighting": "", "composition": "N/A"})
    )
    assert [gap.field for gap in find_gaps(reply)] == ["style", "lighting", "composition"]
    assert empty_fields(reply) == ("style", "lighting", "composition")


def test_mentions_subject_folds_plurals() -> None:
    assert mentions_subject("Two cats sleep on a sofa.", "cat")
    assert mentions_subject("A cup of coffee.", "coffee cup")
    assert not mentions_subject("A tabby sleeps.", "cat")


def test_reask_prompt_names_exactly_the_missing_fields() -> None:
    reply = parse_reply(json.dumps({**COMPLETE, "colors": [], "materials": []}))
    prompt = reask_prompt(find_gaps(reply))
    assert "colors:" in prompt and "materials:" in prompt
    assert "subjects:" not in prompt


def test_merge_replies_fills_only_the_gaps() -> None:
    first = parse_reply(json.dumps({**COMPLETE, "colors": []}))
    second = parse_reply(
        json.dumps({**COMPLETE, "colors": ["brown"], "materials": ["steel"], "style": "render"})
    )
    merged = merge_replies(first, second, find_gaps(first))
    assert merged.colors == ["brown"]
    assert merged.materials == ["ceramic", "wood"]
    assert merged.style == "photograph"


def test_merge_replies_takes_a_description_that_names_the_subject() -> None:
    first = parse_reply(json.dumps({**COMPLETE, "description": "A calm morning."}))
    second = parse_reply(json.dumps(COMPLETE))
    assert merge_replies(first, second, find_gaps(first)).description == COMPLETE["description"]
