"""Settings come from prefixed environment variables and fail fast, naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field, ValidationError
from pydantic_settings import SettingsConfigDict

from services.common.settings import MIB, RequestLimitSettings, ServerSettings, settings_table


class VisionLikeSettings(ServerSettings):
    model_config = SettingsConfigDict(env_prefix="PROBE_")

    port: int = Field(default=50052, description="gRPC port of the probe service.")
    ollama_url: str = Field(default="http://127.0.0.1:11434", description="Ollama base URL.")


def test_defaults_need_no_environment() -> None:
    settings = VisionLikeSettings()
    assert (settings.host, settings.port, settings.log_format) == ("127.0.0.1", 50052, "json")
    assert (settings.max_message_bytes, settings.max_image_bytes) == (64 * MIB, 32 * MIB)
    assert settings.max_image_side == 4096
    assert not settings.tls_enabled


def test_service_fields_are_read_with_the_subclass_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_PORT", "6000")
    monkeypatch.setenv("PROBE_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("PROBE_OLLAMA_URL", "http://ollama:11434")
    monkeypatch.setenv("IMAGEGEN_PORT", "7000")  # another prefix: not ours
    settings = VisionLikeSettings()
    assert (settings.port, settings.log_level) == (6000, "DEBUG")
    assert settings.ollama_url == "http://ollama:11434"


def test_shared_limits_use_the_unprefixed_imagegen_names_in_subclasses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IMAGEGEN_MAX_MESSAGE_BYTES", str(16 * MIB))
    monkeypatch.setenv("IMAGEGEN_MAX_IMAGE_BYTES", str(8 * MIB))
    monkeypatch.setenv("IMAGEGEN_MAX_IMAGE_SIDE", "2048")
    monkeypatch.setenv("PROBE_MAX_IMAGE_SIDE", "99")  # the prefixed name is not read
    settings = VisionLikeSettings()
    assert (settings.max_message_bytes, settings.max_image_bytes) == (16 * MIB, 8 * MIB)
    assert settings.max_image_side == 2048


def test_fields_can_be_passed_by_name() -> None:
    assert VisionLikeSettings(max_image_side=512, port=0).max_image_side == 512


def test_missing_tls_file_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROBE_TLS_CERT_FILE", str(tmp_path / "absent.pem"))
    monkeypatch.setenv("PROBE_TLS_KEY_FILE", str(tmp_path / "absent.key"))
    with pytest.raises(ValidationError, match="PROBE_TLS_CERT_FILE"):
        VisionLikeSettings()


def test_tls_cert_without_key_fails_naming_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert = tmp_path / "server.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("PROBE_TLS_CERT_FILE", str(cert))
    with pytest.raises(ValidationError, match="PROBE_TLS_CERT_FILE and PROBE_TLS_KEY_FILE"):
        VisionLikeSettings()


def test_client_cert_requirement_needs_a_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_TLS_REQUIRE_CLIENT_CERT", "true")
    with pytest.raises(ValidationError, match="PROBE_TLS_CA_FILE"):
        VisionLikeSettings()


def test_bad_value_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="log_format"):
        VisionLikeSettings()


def test_settings_table_lists_every_field_with_env_name_default_and_description() -> None:
    rows = {
        name: (default, description)
        for name, default, description in settings_table(VisionLikeSettings)
    }
    assert len(rows) == len(VisionLikeSettings.model_fields)
    assert rows["PROBE_PORT"] == ("50052", "gRPC port of the probe service.")
    assert rows["IMAGEGEN_MAX_MESSAGE_BYTES"][0] == str(64 * MIB)
    assert rows["PROBE_TLS_CERT_FILE"][0] == ""
    assert rows["PROBE_TLS_REQUIRE_CLIENT_CERT"][0] == "false"
    assert all(description for _, description in rows.values())


def test_request_limits_are_read_from_the_shared_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGEN_MAX_LORAS", "6")
    monkeypatch.setenv("IMAGEGEN_TXT2IMG_MAX_SIDE", "4096")
    limits = RequestLimitSettings()
    assert (limits.max_loras, limits.txt2img_max_side, limits.max_variants) == (6, 4096, 8)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("IMAGEGEN_TXT2IMG_MAX_SIDE", "2040"), ("IMAGEGEN_TXT2IMG_MIN_SIDE", "4096")],
)
def test_unusable_text_to_image_sides_fail_at_boot_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable):
        RequestLimitSettings()
