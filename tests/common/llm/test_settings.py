"""ChatModelSettings: shared fields under each service's prefix, per-service defaults."""

from __future__ import annotations

import time

import pytest
from pydantic import Field, ValidationError
from pydantic_settings import SettingsConfigDict

from services.common.llm import (
    ChatMessage,
    ChatModelSettings,
    ContextWindow,
    ModelName,
    Temperature,
    TokenLimit,
    connect,
)
from services.common.llm.ollama import OllamaClient
from services.common.llm.openai import OpenAICompatibleClient
from services.common.settings import env_name, settings_table

SHARED_FIELDS = [
    "llm_backend",
    "llm_url",
    "llm_api_key",
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


class CaptionSettings(ChatModelSettings):
    """A service as the vision and planner services declare theirs."""

    model_config = SettingsConfigDict(env_prefix="CAPTION_")

    model: ModelName = Field(default="llava", description="The captioning model.")
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
    [
        ("ollama_url", "http://gpu:11434"),
        ("llm_url", "http://gpu:11434"),
        ("model", "llava:13b"),
        ("num_ctx", 4096),
    ],
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
    base, own = ChatModelSettings.model_fields, CaptionSettings.model_fields
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
        ChatModelSettings()
    missing = {error["loc"][0] for error in caught.value.errors()}
    assert missing == {"model", "num_ctx", "num_predict", "temperature"}
    assert env_name(ChatModelSettings, "model") == "IMAGEGEN_MODEL"


def test_a_chat_request_carries_the_model_the_pinned_options_and_keep_alive() -> None:
    settings = CaptionSettings(keep_alive="3m", seed=7)
    question = [ChatMessage("user", "Caption it.")]
    request = settings.chat_request(question, json_schema={"type": "object"}, schema_name="cap")
    assert (request.model, request.keep_alive, request.think) == ("llava", "3m", None)
    assert request.messages == tuple(question)
    assert (request.json_schema, request.schema_name) == ({"type": "object"}, "cap")
    assert settings.chat_request(question, think="low").think == "low"


def test_every_request_pins_the_load_time_options() -> None:
    settings = CaptionSettings(num_ctx=8192, seed=3, temperature=0.0)
    first = settings.chat_request([ChatMessage("user", "a")])
    second = settings.chat_request([ChatMessage("user", "b")], json_schema={"type": "object"})
    for request in (first, second):
        assert (request.context_tokens, request.max_tokens) == (8192, 128)
        assert (request.temperature, request.seed) == (0.0, 3)


def test_the_ollama_backend_falls_back_to_the_ollama_url() -> None:
    settings = CaptionSettings(ollama_url="http://gpu:11434")
    assert (settings.llm_backend, settings.backend_url) == ("ollama", "http://gpu:11434")
    assert CaptionSettings(llm_url="http://other:11434").backend_url == "http://other:11434"


def test_the_openai_backend_needs_its_url_and_says_which_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAPTION_LLM_BACKEND", "openai")
    with pytest.raises(ValidationError, match="CAPTION_LLM_URL must be set"):
        CaptionSettings()
    monkeypatch.setenv("CAPTION_LLM_URL", "http://vllm:8000/v1")
    monkeypatch.setenv("CAPTION_LLM_API_KEY", "sk-local")
    settings = CaptionSettings()
    assert settings.backend_url == "http://vllm:8000/v1"
    assert settings.llm_api_key is not None
    assert settings.llm_api_key.get_secret_value() == "sk-local"
    assert "sk-local" not in repr(settings)


async def test_connect_opens_the_adapter_the_backend_names() -> None:
    ollama = connect(CaptionSettings(ollama_url="http://gpu:11434", call_timeout_s=9.0))
    openai = connect(CaptionSettings(llm_backend="openai", llm_url="http://vllm:8000/v1/"))
    try:
        assert isinstance(ollama, OllamaClient) and ollama.base_url == "http://gpu:11434"
        assert ollama.timeout_s == 9.0
        assert isinstance(openai, OpenAICompatibleClient)
        assert (openai.backend, openai.base_url) == ("openai", "http://vllm:8000/v1")
    finally:
        await ollama.aclose()
        await openai.aclose()


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
