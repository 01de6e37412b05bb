"""A caller's text cannot push the planner's question past the model's context window."""

from __future__ import annotations

from services.common.llm.context import estimate_tokens, input_budget
from standins.ollama.server import RunningFakeOllama
from tests.planner.conftest import (
    chat_bodies,
    living_room_proto,
    plan_json,
    plan_request,
    planner_server,
    planner_settings,
)


async def test_a_huge_description_is_cut_to_the_context_with_a_warning(
    ollama: RunningFakeOllama,
) -> None:
    ollama.fake.script.queue(plan_json(), model="gpt-oss:20b")
    analysis = living_room_proto()
    # The caller's own description, as the gateway forwards it: 64,800 characters.
    analysis.description = "A living room with a sofa and a lamp. " * 1705
    settings = planner_settings(ollama.url)
    async with planner_server(settings) as (_, stub):
        response = await stub.PlanPrompt(plan_request(analysis=analysis))
    (body,) = chat_bodies(ollama)
    sent = sum(estimate_tokens(message["content"]) for message in body["messages"])
    assert sent <= input_budget(settings.num_ctx, settings.num_predict)
    system, user = body["messages"]
    assert system["role"] == "system" and not system["content"].endswith("[cut]")
    assert user["content"].endswith(" … [cut]")
    assert any(
        "user message #2" in warning and "was cut" in warning for warning in response.plan.warnings
    )
