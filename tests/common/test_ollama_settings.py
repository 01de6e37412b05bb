"""OllamaModelSettings: shared fields under each service's prefix, per-service defaults."""

from __future__ import annotations

import time

import pytest
from pydantic import Field, ValidationError
from pydantic_settings import SettingsConfigDict

from services.common.ollama import ChatMessage
from services.common.ollama_settings import (
    ContextWindow,
    OllamaModelName,
    OllamaModelSettings,
    Temperature,
    TokenLimit,
)
from services.common.settings import env_name, settings_table

SHARED_FIELDS = [
    "ollama_url",
    "model",
    "keep_alive",
    "num_ctx",
    "num_predict",
    "temperature",
    "seed",
    "retry_attempts",
    "retry_initial_backoff_s",
    "retry_max_backoff_s",
    "call_timeout_s",
    "request_timeout_s",
    "readiness_interval_s",
]


class CaptionSettings(OllamaModelSettings):
    """A service as the vision and planner services declare theirs."""

    model_config = SettingsConfigDict(env_prefix="CAPTION_")

    model: OllamaModelName = Field(default="llava", description="The captioning model.")
    num_ctx: ContextWindow = 2048
    num_predict: TokenLimit = Field(default=128, ge=32)
    temperature: Temperature = 0.2
    caption_words: int = Field(default=12, ge=1, description="Longest caption, in words.")


def test_the_shared_fields_are_read_under_the_service_prefix() -> None:
    names = [name for name, _, _ in settings_table(CaptionSettings)]
    for field in SHARED_FIELDS:
        assert f"CAPTION_{field.upper()}" in names
    assert "CAPTION_CAPTION_WORDS" in names


def test_the_shared_fields_come_before_the_service_own_ones() -> None:
    fields = list(CaptionSettings.model_fields)
    assert fields.index("readiness_interval_s") < fields.index("caption_words")


@pytest.mark.parametrize(
    ("field", "value"),
    [("ollama_url", "http://gpu:11434"), ("model", "llava:13b"), ("num_ctx", 4096)],
)
def test_a_shared_field_is_read_from_its_prefixed_variable(
    monkeypatch: pytest.MonkeyPatch, field: str, value: object
) -> None:
    monkeypatch.setenv(f"CAPTION_{field.upper()}", str(value))
    assert getattr(CaptionSettings(), field) == value


def test_a_redeclared_default_keeps_the_shared_bounds_and_description() -> None:
    settings = CaptionSettings()
    assert (settings.num_ctx, settings.num_predict, settings.temperature) == (2048, 128, 0.2)
    assert settings.seed == 42 and settings.keep_alive == "10m"
    base, own = OllamaModelSettings.model_fields, CaptionSettings.model_fields
    for field in ("num_ctx", "num_predict", "temperature"):
        assert own[field].description == base[field].description
        assert own[field].description
    with pytest.raises(ValidationError, match="num_ctx"):
        CaptionSettings(num_ctx=1024)
    with pytest.raises(ValidationError, match="temperature"):
        CaptionSettings(temperature=2.5)
    with pytest.raises(ValidationError, match="model"):
        CaptionSettings(model="")


def test_each_service_sets_its_own_lower_bound_of_num_predict() -> None:
    assert CaptionSettings(num_predict=32).num_predict == 32
    with pytest.raises(ValidationError, match="num_predict"):
        CaptionSettings(num_predict=31)


def test_the_base_alone_names_no_model() -> None:
    with pytest.raises(ValidationError) as caught:
        OllamaModelSettings()
    missing = {error["loc"][0] for error in caught.value.errors()}
    assert missing == {"model", "num_ctx", "num_predict", "temperature"}
    assert env_name(OllamaModelSettings, "model") == "IMAGEGEN_MODEL"


def test_a_chat_request_carries_the_model_the_pinned_options_and_keep_alive() -> None:
    settings = CaptionSettings(keep_alive="3m", seed=7)
    question = [ChatMessage(role="user", content="Caption it.")]
    request = settings.chat_request(question, format={"type": "object"})
    assert (request.model, request.keep_alive, request.think) == ("llava", "3m", None)
    assert request.options == settings.model_options()
    assert request.options["seed"] == 7
    assert request.format == {"type": "object"}
    assert settings.chat_request(question, think="low").think == "low"


def test_model_options_pin_the_load_time_options() -> None:
    options = CaptionSettings(num_ctx=8192, seed=3, temperature=0.0).model_options()
    assert options == {"num_ctx": 8192, "num_predict": 128, "temperature": 0.0, "seed": 3}


def test_the_retry_policy_follows_the_settings() -> None:
    policy = CaptionSettings(
        retry_attempts=4, retry_initial_backoff_s=0.5, retry_max_backoff_s=3.0
    ).retry_policy()
    assert (policy.max_attempts, policy.initial_backoff_s, policy.max_backoff_s) == (4, 0.5, 3.0)


def test_a_cap_below_the_first_pause_is_raised_to_it() -> None:
    policy = CaptionSettings(retry_initial_backoff_s=1.0, retry_max_backoff_s=0.1).retry_policy()
    assert policy.max_backoff_s == 1.0


def test_the_request_deadline_is_the_sooner_of_the_caller_and_the_timeout() -> None:
    settings = CaptionSettings(request_timeout_s=10.0)
    now = time.monotonic()
    assert now + 10.0 <= settings.request_deadline(None) <= time.monotonic() + 10.0
    assert settings.request_deadline(now + 2.0) == now + 2.0
    assert settings.request_deadline(now + 60.0) <= time.monotonic() + 10.0
