"""The plan's second prompt shape: an imperative instruction for FLUX.1 Kontext."""

from __future__ import annotations

from services.common.llm import Backend
from services.planner.plans import Mode, PlanRequest, PlanSource
from services.planner.rules import KEEP_THE_REST, compose_instruction
from services.planner.schema import SYSTEM_PROMPT
from tests.planner.conftest import LIVING_ROOM, SOFA, chat_stream, plan_json, scripted_planner

ORDER = "Make the sofa dark green velvet. Keep the room and the light unchanged."


async def test_the_models_instruction_is_kept_beside_the_description(
    llm_backend: Backend,
) -> None:
    planner, _, _ = scripted_planner(
        llm_backend, lambda: chat_stream(plan_json(edit_instruction=ORDER))
    )
    plan = await planner.plan(PlanRequest(SOFA, Mode.IMAGE_TO_IMAGE, LIVING_ROOM))
    assert plan.edit_instruction == ORDER
    assert plan.positive_prompt.startswith("A dark green velvet sofa")


async def test_a_missing_model_instruction_is_made_from_the_callers_instruction(
    llm_backend: Backend,
) -> None:
    planner, _, _ = scripted_planner(llm_backend, lambda: chat_stream(plan_json()))
    plan = await planner.plan(PlanRequest(SOFA, Mode.IMAGE_TO_IMAGE, LIVING_ROOM))
    assert plan.source is PlanSource.MODEL
    assert "green" in plan.edit_instruction
    assert plan.edit_instruction.endswith(KEEP_THE_REST)


async def test_text_to_image_has_no_edit_instruction(llm_backend: Backend) -> None:
    planner, _, _ = scripted_planner(
        llm_backend,
        lambda: chat_stream(plan_json(intent="text_to_image", denoise=1.0, edit_instruction="")),
    )
    plan = await planner.plan(PlanRequest("a red house", Mode.TEXT_TO_IMAGE, None))
    assert plan.edit_instruction == ""


def test_the_rules_instruction_gives_the_order_then_keeps_the_rest() -> None:
    assert compose_instruction("make the cup dark green") == (
        "Make the cup dark green. Keep everything else in the picture unchanged."
    )
    assert compose_instruction("  ") == ""


def test_the_system_prompt_asks_for_an_imperative_that_says_what_stays() -> None:
    assert "edit_instruction" in SYSTEM_PROMPT
    assert "imperative" in SYSTEM_PROMPT and "what must stay" in SYSTEM_PROMPT
