"""Render settings from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.render.settings import DEFAULT_WORKFLOWS_DIR, RenderSettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RENDER_COMFYUI_URLS", "COMFYUI_URLS", "COMFYUI_URL", "RENDER_WORKFLOWS_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_work_on_one_machine() -> None:
    settings = RenderSettings()
    assert settings.port == 50054
    assert settings.backend_urls == ["http://127.0.0.1:8188"]
    assert settings.workflows_path == DEFAULT_WORKFLOWS_DIR
    assert settings.max_megapixels == 2.0 and settings.max_variants == 8


def test_backends_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENDER_COMFYUI_URLS", "http://gpu-1:8188, http://gpu-2:8188/")
    assert RenderSettings().backend_urls == ["http://gpu-1:8188", "http://gpu-2:8188"]


@pytest.mark.parametrize("name", ["COMFYUI_URLS", "COMFYUI_URL"])
def test_unprefixed_aliases_are_accepted(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "http://comfy:8188")
    assert RenderSettings().backend_urls == ["http://comfy:8188"]


def test_a_bad_url_fails_at_boot_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENDER_COMFYUI_URLS", "comfy:8188")
    with pytest.raises(ValidationError, match="RENDER_COMFYUI_URLS"):
        RenderSettings()


def test_text_to_image_sides_must_be_multiples_of_16() -> None:
    with pytest.raises(ValidationError, match="IMAGEGEN_TXT2IMG_MAX_SIDE"):
        RenderSettings(txt2img_max_side=2040)
