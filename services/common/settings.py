"""Settings shared by every imagegen server, read from the environment at boot.

Each service subclasses :class:`ServerSettings` with its own prefix and default port::

    class VisionSettings(ServerSettings):
        model_config = SettingsConfigDict(env_prefix="VISION_")
        port: int = Field(default=50052, description="gRPC port.")

so ``VISION_PORT``, ``VISION_LOG_LEVEL`` … configure the vision service, while the limits
every server and client must agree on (message and image sizes) are read from the same
unprefixed ``IMAGEGEN_*`` names in every process. A bad value stops the process at boot
with an error naming the variable, never later in a request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["MIB", "RequestLimitSettings", "ServerSettings", "env_name", "settings_table"]

MIB = 1024 * 1024


class ServerSettings(BaseSettings):
    """Configuration every gRPC server of the system shares.

    Subclasses set ``model_config = SettingsConfigDict(env_prefix="NAME_")`` and a default
    ``port``; the shared limits keep their ``IMAGEGEN_*`` names whatever the prefix.
    """

    model_config = SettingsConfigDict(
        env_prefix="IMAGEGEN_",
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        validate_default=True,
    )

    host: str = Field(
        default="127.0.0.1",
        description="Interface the gRPC server binds; 0.0.0.0 in containers.",
    )
    port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="gRPC port; 0 picks a free port.",
    )
    grace_period_s: float = Field(
        default=10.0,
        ge=0.0,
        description="Seconds in-flight calls may finish after SIGTERM before they are cancelled.",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of the Prometheus /metrics HTTP endpoint; 0 switches it off.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO",
        description="Lowest level logged: DEBUG, INFO, WARNING, ERROR or CRITICAL.",
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="json (one JSON object per line, for collectors) or text (for people).",
    )

    # Shared by every server and client: a limit that differs between two ends of a call
    # fails only when a large image happens to pass, so one name holds it everywhere.
    max_message_bytes: int = Field(
        default=64 * MIB,
        gt=0,
        validation_alias="IMAGEGEN_MAX_MESSAGE_BYTES",
        description="Largest gRPC message sent or received, in bytes (servers and clients).",
    )
    max_image_bytes: int = Field(
        default=32 * MIB,
        gt=0,
        validation_alias="IMAGEGEN_MAX_IMAGE_BYTES",
        description="Largest accepted encoded input image, in bytes.",
    )
    max_image_side: int = Field(
        default=4096,
        gt=0,
        validation_alias="IMAGEGEN_MAX_IMAGE_SIDE",
        description="Largest accepted input image width or height, in pixels.",
    )

    tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate chain of the server; with the key, turns TLS on.",
    )
    tls_key_file: Path | None = Field(
        default=None,
        description="PEM private key of the server certificate.",
    )
    tls_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle that client certificates must chain to.",
    )
    tls_require_client_cert: bool = Field(
        default=False,
        description="Refuse clients without a certificate signed by the CA (mutual TLS).",
    )

    keepalive_time_s: float = Field(
        default=60.0,
        gt=0.0,
        description="Seconds between the server's keepalive pings on an idle connection.",
    )
    keepalive_timeout_s: float = Field(
        default=20.0,
        gt=0.0,
        description="Seconds the server waits for a ping answer before closing the connection.",
    )
    keepalive_min_ping_interval_s: float = Field(
        default=10.0,
        gt=0.0,
        description="Shortest interval of client pings the server tolerates (more often: GOAWAY).",
    )
    max_connection_age_s: float = Field(
        default=300.0,
        ge=0.0,
        description=(
            "Seconds after which a client connection is asked to reconnect, so clients "
            "re-resolve DNS and spread over new replicas; 0 keeps connections forever."
        ),
    )
    max_connection_age_grace_s: float = Field(
        default=900.0,
        ge=0.0,
        description="Seconds calls on an aged connection may still run (longer than a render).",
    )

    @field_validator("tls_cert_file", "tls_key_file", "tls_ca_file")
    @classmethod
    def _tls_file_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and not value.is_file():
            assert info.field_name is not None
            raise ValueError(f"{env_name(cls, info.field_name)}: no such file: {value}")
        return value

    @model_validator(mode="after")
    def _tls_files_fit_together(self) -> Self:
        cls = type(self)
        cert, key = env_name(cls, "tls_cert_file"), env_name(cls, "tls_key_file")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(f"{cert} and {key} must be set together")
        if self.tls_require_client_cert and (self.tls_ca_file is None or not self.tls_enabled):
            raise ValueError(
                f"{env_name(cls, 'tls_require_client_cert')} needs {cert}, {key} "
                f"and {env_name(cls, 'tls_ca_file')}"
            )
        return self

    @property
    def tls_enabled(self) -> bool:
        """True when the server has a certificate and key and so serves TLS."""
        return self.tls_cert_file is not None and self.tls_key_file is not None


def prompt_token_budget_field() -> Any:
    """The prompt token budget, one unprefixed setting for the planner (its own prompts)
    and the gateway (a caller's prompts), so both cut prompts at the same length."""
    from services.common.prompts import DEFAULT_PROMPT_TOKEN_BUDGET

    return Field(
        default=DEFAULT_PROMPT_TOKEN_BUDGET,
        ge=16,
        le=512,
        validation_alias="IMAGEGEN_PROMPT_TOKEN_BUDGET",
        description=(
            "Most CLIP tokens in a positive or negative prompt, the planner's or a caller's "
            "(planner and gateway); longer prompts are cut with a warning. Flux-dev's T5 "
            "encoder was trained on 512 tokens and splits English a little finer than "
            "CLIP's BPE, hence the margin."
        ),
    )


class RequestLimitSettings(ServerSettings):
    """Settings of a server that takes generation requests: the gateway and render.

    Both check every request against these limits (:mod:`services.common.request_rules`),
    read from the same unprefixed ``IMAGEGEN_*`` names, so raising one raises it at both
    ends: a gateway that let through what render refuses would have spent both model
    calls before the refusal.
    """

    max_variants: int = Field(
        default=8,
        ge=1,
        le=64,
        validation_alias="IMAGEGEN_MAX_VARIANTS",
        description="Most variants one request may ask for (gateway and render).",
    )
    max_loras: int = Field(
        default=4,
        ge=0,
        le=32,
        validation_alias="IMAGEGEN_MAX_LORAS",
        description="Most LoRAs one request may chain (gateway and render).",
    )
    txt2img_min_side: int = Field(
        default=256,
        ge=16,
        le=16384,
        validation_alias="IMAGEGEN_TXT2IMG_MIN_SIDE",
        description="Smallest text-to-image width or height; smaller ones are refused.",
    )
    txt2img_max_side: int = Field(
        default=2048,
        ge=16,
        le=16384,
        validation_alias="IMAGEGEN_TXT2IMG_MAX_SIDE",
        description="Largest text-to-image width or height; larger ones are refused.",
    )

    @model_validator(mode="after")
    def _sides_fit(self) -> Self:
        cls = type(self)
        for side in ("txt2img_min_side", "txt2img_max_side"):
            # Flux draws in 16-pixel patches (VAE factor 8 x transformer patch 2).
            if getattr(self, side) % 16:
                raise ValueError(f"{env_name(cls, side)} must be a multiple of 16 (Flux)")
        if self.txt2img_min_side > self.txt2img_max_side:
            raise ValueError(
                f"{env_name(cls, 'txt2img_min_side')} is above {env_name(cls, 'txt2img_max_side')}"
            )
        return self


def env_name(model: type[BaseSettings], field_name: str) -> str:
    """The environment variable that sets ``field_name`` of ``model``.

    Args:
        model: A settings class.
        field_name: One of its fields.

    Returns:
        The alias when the field has a fixed one (the shared ``IMAGEGEN_*`` names),
        else the class's prefix plus the field name, upper-cased.
    """
    info = model.model_fields[field_name]
    if isinstance(info.validation_alias, str):
        return info.validation_alias.upper()
    prefix = str(model.model_config.get("env_prefix", ""))
    return f"{prefix}{field_name}".upper()


def settings_table(model: type[BaseSettings]) -> list[tuple[str, str, str]]:
    """Rows (environment variable, default, description) for a settings class.

    The README's configuration table is checked against these rows, so a setting cannot
    be added without being documented.

    Args:
        model: A settings class, e.g. a subclass of :class:`ServerSettings`.

    Returns:
        One row per field, in declaration order; the default is rendered as it would be
        written in the environment ("" when unset, "(required)" when there is none).
    """
    return [
        (env_name(model, name), _render_default(info), info.description or "")
        for name, info in model.model_fields.items()
    ]


def _render_default(info: FieldInfo) -> str:
    default: Any = info.get_default(call_default_factory=True)
    if default is PydanticUndefined:
        return "(required)"
    if default is None:
        return ""
    if isinstance(default, bool):
        return str(default).lower()
    return str(default)
