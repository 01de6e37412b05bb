"""VisionSettings: defaults for one machine, VISION_* variables, pinned model options."""

from __future__ import annotations

import pytest

from services.common.llm import ChatModelSettings
from services.common.settings import ServerSettings, env_name, settings_table
from services.vision.settings import AnalysisPolicy, VisionSettings


def test_defaults_suit_one_machine() -> None:
    settings = VisionSettings()
    assert settings.port == 50052
    assert settings.ollama_url == "http://127.0.0.1:11434"
    assert settings.model == "llava"
    assert settings.model_image_side == 672
    assert settings.analysis_policy is AnalysisPolicy.FALLBACK


def test_settings_come_from_vision_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISION_MODEL", "llava:13b")
    monkeypatch.setenv("VISION_KEEP_ALIVE", "0")
    monkeypatch.setenv("VISION_ANALYSIS_POLICY", "require_model")
    monkeypatch.setenv("IMAGEGEN_MAX_IMAGE_SIDE", "2048")
    settings = VisionSettings()
    assert settings.model == "llava:13b"
    assert settings.keep_alive == "0"
    assert settings.analysis_policy is AnalysisPolicy.REQUIRE_MODEL
    assert settings.max_image_side == 2048


def test_a_bad_value_stops_the_process_at_boot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISION_NUM_CTX", "1024")
    with pytest.raises(ValueError, match="num_ctx"):
        VisionSettings()


def test_every_request_pins_the_load_time_options() -> None:
    request = VisionSettings(num_ctx=8192, seed=3, temperature=0.0).chat_request([])
    pinned = (request.context_tokens, request.max_tokens, request.temperature, request.seed)
    assert pinned == (8192, 1024, 0.0, 3)


def test_the_openai_backend_is_chosen_by_vision_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VISION_LLM_BACKEND", "openai")
    monkeypatch.setenv("VISION_LLM_URL", "http://vllm:8000/v1")
    monkeypatch.setenv("VISION_MODEL", "qwen2.5-vl-7b")
    settings = VisionSettings()
    assert (settings.llm_backend, settings.backend_url) == ("openai", "http://vllm:8000/v1")
    monkeypatch.delenv("VISION_LLM_URL")
    with pytest.raises(ValueError, match="VISION_LLM_URL must be set"):
        VisionSettings()


def test_the_existing_ollama_url_variable_still_chooses_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VISION_OLLAMA_URL", "http://ollama:11434")
    assert VisionSettings().backend_url == "http://ollama:11434"


def test_each_shared_ollama_setting_is_a_vision_variable() -> None:
    # docker-compose.yml and the gateway's stack set these names: they must not move.
    names = {name for name, _, _ in settings_table(VisionSettings)}
    for field in ChatModelSettings.model_fields:
        assert env_name(VisionSettings, field) in names
        if field not in ServerSettings.model_fields:
            assert env_name(VisionSettings, field) == f"VISION_{field.upper()}"


def test_the_vision_model_defaults_suit_a_short_extraction() -> None:
    settings = VisionSettings()
    assert (settings.num_ctx, settings.num_predict, settings.temperature) == (4096, 1024, 0.1)
    assert VisionSettings(num_predict=64).num_predict == 64
    with pytest.raises(ValueError, match="num_predict"):
        VisionSettings(num_predict=63)
