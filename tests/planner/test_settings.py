"""PlannerSettings: defaults for a thinking text model, PLANNER_* variables."""

from __future__ import annotations

import pytest

from services.common.llm import ChatModelSettings
from services.common.settings import ServerSettings, settings_table
from services.planner.settings import PlannerSettings, PlanPolicy


def test_defaults_suit_a_thinking_text_model() -> None:
    settings = PlannerSettings()
    assert settings.port == 50053
    assert settings.model == "gpt-oss:20b"
    assert settings.think == "low"
    assert (settings.num_ctx, settings.num_predict, settings.temperature) == (8192, 3072, 0.6)
    assert settings.plan_policy is PlanPolicy.RULES


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PLANNER_OLLAMA_URL", "http://gpu:11434"),
        ("PLANNER_LLM_BACKEND", "ollama"),
        ("PLANNER_LLM_URL", "http://gpu:11434"),
        ("PLANNER_NUM_PREDICT", 4096),
        ("PLANNER_THINK", "high"),
    ],
)
def test_settings_come_from_planner_variables(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: object
) -> None:
    monkeypatch.setenv(variable, str(value))
    field = variable.removeprefix("PLANNER_").lower()
    assert getattr(PlannerSettings(), field) == value


def test_num_predict_leaves_room_for_the_thinking() -> None:
    with pytest.raises(ValueError, match="num_predict"):
        PlannerSettings(num_predict=255)


def test_the_shared_ollama_settings_keep_their_planner_names() -> None:
    # docker-compose.yml and the gateway's stack set these names: they must not move.
    shared = set(ChatModelSettings.model_fields) - set(ServerSettings.model_fields)
    names = {name for name, _, _ in settings_table(PlannerSettings)}
    assert {f"PLANNER_{field.upper()}" for field in shared} <= names
    assert {"PLANNER_THINK", "PLANNER_PLAN_POLICY", "IMAGEGEN_PROMPT_TOKEN_BUDGET"} <= names
