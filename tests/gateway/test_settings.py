"""Gateway settings: defaults that work on one machine, bad values named at boot."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.app import request_limits
from gateway.settings import GatewaySettings
from services.render.settings import RenderSettings


def test_defaults_point_at_the_local_services() -> None:
    settings = GatewaySettings()
    assert settings.port == 50051
    assert (settings.vision_address, settings.planner_address, settings.render_address) == (
        "127.0.0.1:50052",
        "127.0.0.1:50053",
        "127.0.0.1:50054",
    )
    assert (settings.max_variants, settings.max_instruction_chars, settings.max_loras) == (
        8,
        65536,
        4,
    )


def test_variables_carry_the_gateway_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_MAX_INSTRUCTION_CHARS", "300")
    monkeypatch.setenv("GATEWAY_MODEL_GROUPING", "false")
    settings = GatewaySettings()
    assert settings.max_instruction_chars == 300 and settings.model_grouping is False


def test_unusable_address_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_RENDER_ADDRESS", "render-without-port")
    with pytest.raises(ValidationError, match="GATEWAY_RENDER_ADDRESS"):
        GatewaySettings()


def test_stage_budgets_must_leave_time_to_render(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_ANALYZE_BUDGET_FRACTION", "0.6")
    monkeypatch.setenv("GATEWAY_PLAN_BUDGET_FRACTION", "0.5")
    with pytest.raises(ValidationError, match="GATEWAY_ANALYZE_BUDGET_FRACTION"):
        GatewaySettings()


def test_downstream_client_certificate_needs_its_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    monkeypatch.setenv("GATEWAY_DOWNSTREAM_TLS_CERT_FILE", str(cert))
    with pytest.raises(ValidationError, match="GATEWAY_DOWNSTREAM_TLS_KEY_FILE"):
        GatewaySettings()


def test_every_setting_is_described() -> None:
    assert all(field.description for field in GatewaySettings.model_fields.values())


def test_raising_the_shared_lora_maximum_raises_it_at_the_gateway_and_render(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IMAGEGEN_MAX_LORAS", "8")
    monkeypatch.setenv("IMAGEGEN_MAX_VARIANTS", "12")
    gateway, render = GatewaySettings(), RenderSettings()
    assert (gateway.max_loras, gateway.max_variants) == (8, 12)
    assert (render.max_loras, render.max_variants) == (8, 12)


def test_the_gateway_enforces_the_shared_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGEN_MAX_LORAS", "5")
    monkeypatch.setenv("IMAGEGEN_TXT2IMG_MAX_SIDE", "1024")
    limits = request_limits(GatewaySettings())
    assert (limits.max_loras, limits.txt2img_max_side) == (5, 1024)
