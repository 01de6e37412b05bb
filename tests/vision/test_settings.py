"""VisionSettings: defaults for one machine, VISION_* variables, pinned model options."""

from __future__ import annotations

import pytest

from services.common.ollama_settings import OllamaModelSettings
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


def test_model_options_pin_the_load_time_options() -> None:
    options = VisionSettings(num_ctx=8192, seed=3, temperature=0.0).model_options()
    assert options == {"num_ctx": 8192, "num_predict": 1024, "temperature": 0.0, "seed": 3}


def test_each_shared_ollama_setting_is_a_vision_variable() -> None:
    # docker-compose.yml and the gateway's stack set these names: they must not move.
    names = {name for name, _, _ in settings_table(VisionSettings)}
    for field in OllamaModelSettings.model_fields:
        assert env_name(VisionSettings, field) in names
        if field not in ServerSettings.model_fields:
            assert env_name(VisionSettings, field) == f"VISION_{field.upper()}"


def test_the_vision_model_defaults_suit_a_short_extraction() -> None:
    settings = VisionSettings()
    assert (settings.num_ctx, settings.num_predict, settings.temperature) == (4096, 1024, 0.1)
    assert VisionSettings(num_predict=64).num_predict == 64
    with pytest.raises(ValueError, match="num_predict"):
        VisionSettings(num_predict=63)
