"""English guaranteed: a prompt in another script is re-asked once, then planned by rules,
and the rules never pass a non-Latin word on."""

from __future__ import annotations

from imagegen.common.v1 import common_pb2
from services.planner.scripts import is_latin_text
from standins.ollama.server import RunningFakeOllama
from tests.planner.conftest import (
    chat_bodies,
    living_room_proto,
    plan_json,
    plan_request,
    planner_server,
    planner_settings,
)

RECOLOUR = "Recolour чашку in dark green"
CYRILLIC_PLAN = plan_json(
    positive_prompt="A dark green чашка on a white saucer, photograph.",
    negative_prompt="белая чашка, blurry",
)
ENGLISH_PLAN = plan_json(positive_prompt="A dark green cup on a white saucer, photograph.")


async def _rules_plan(
    ollama: RunningFakeOllama,
    instruction: str,
    analysis: common_pb2.ImageAnalysis | None = None,
) -> common_pb2.PromptPlan:
    """The plan with the model server down: the keyword rules make it."""
    await ollama.stop()
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(
            plan_request(instruction, analysis=analysis or living_room_proto())
        )
    assert response.plan.source == common_pb2.PLAN_SOURCE_RULES
    plan: common_pb2.PromptPlan = response.plan
    return plan


async def test_a_cyrillic_prompt_is_reasked_once_naming_the_words(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.script.queue(CYRILLIC_PLAN, ENGLISH_PLAN, model="gpt-oss:20b")
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(plan_request(RECOLOUR, analysis=living_room_proto()))

    first, second = chat_bodies(ollama)
    reask = second["messages"][-1]
    assert reask["role"] == "user"
    assert "«чашка»" in reask["content"] and "«белая»" in reask["content"]
    assert second["messages"][-2]["role"] == "assistant"
    assert second["messages"][-2]["content"] == CYRILLIC_PLAN
    assert first["messages"] == second["messages"][:-2]
    plan = response.plan
    assert plan.source == common_pb2.PLAN_SOURCE_MODEL
    assert plan.positive_prompt == "A dark green cup on a white saucer, photograph."
    assert any("not in English (чашка, белая" in w for w in plan.warnings)


async def test_a_prompt_that_stays_cyrillic_is_planned_by_the_rules_with_a_warning(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.script.always(CYRILLIC_PLAN, model="gpt-oss:20b")
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(plan_request(RECOLOUR, analysis=living_room_proto()))

    assert len(chat_bodies(ollama)) == 2
    plan = response.plan
    assert plan.source == common_pb2.PLAN_SOURCE_RULES
    assert is_latin_text(plan.positive_prompt) and is_latin_text(plan.negative_prompt)
    assert any("not in English even when asked again (чашка" in w for w in plan.warnings)


async def test_an_english_prompt_is_not_reasked(ollama: RunningFakeOllama) -> None:
    ollama.fake.script.always(plan_json(positive_prompt="A green café table."), model="gpt-oss:20b")
    async with planner_server(planner_settings(ollama.url)) as (_, stub):
        response = await stub.PlanPrompt(plan_request(RECOLOUR, analysis=living_room_proto()))
    assert len(chat_bodies(ollama)) == 1
    assert response.plan.positive_prompt == "A green café table."


async def test_the_rules_give_an_all_latin_prompt_for_a_mixed_instruction(
    ollama: RunningFakeOllama,
) -> None:
    plan = await _rules_plan(ollama, RECOLOUR)
    assert plan.positive_prompt.startswith("Recolour cup in dark green.")
    assert is_latin_text(plan.positive_prompt)
    assert any("glossary replaced 1 word(s)" in w for w in plan.warnings)


async def test_the_rules_transliterate_words_the_glossary_does_not_know(
    ollama: RunningFakeOllama,
) -> None:
    plan = await _rules_plan(ollama, "Добавь на стол кальян и 茶")
    assert is_latin_text(plan.positive_prompt)
    assert "kalyan" in plan.positive_prompt and "茶" not in plan.positive_prompt
    (note,) = [w for w in plan.warnings if "transliterated" in w]
    assert "кальян → kalyan" in note
    assert "dropped the words in a script without a transliteration: 茶" in note


async def test_the_rules_translate_then_transliterate_a_russian_description_too(
    ollama: RunningFakeOllama,
) -> None:
    analysis = common_pb2.ImageAnalysis(
        description="Белая чашка и кальян у окна", source=common_pb2.ANALYSIS_SOURCE_USER
    )
    plan = await _rules_plan(ollama, "make the cup green", analysis)
    assert is_latin_text(plan.positive_prompt)
    assert "white cup and kalyan by window" in plan.positive_prompt
    (note,) = [w for w in plan.warnings if "glossary" in w]
    assert note.startswith("the analysis is not in English")
    assert "кальян → kalyan" in note
