"""The deployment settings the gateway reads, as fields of its settings model.

``gateway.auth.auth_interceptors`` reads the ``auth_*`` and ``limit_*`` fields and the
gateway's downstream channels the ``downstream_tls_*`` ones. Until ``GatewaySettings``
declares them itself, :class:`WiredGatewaySettings` adds them here so the tests and the
README can be checked against real ``GATEWAY_*`` names; once it does, these definitions
only repeat it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from gateway.settings import GatewaySettings
from services.common.settings import env_name

__all__ = ["DEPLOYMENT_FIELDS", "WiredGatewaySettings"]


class WiredGatewaySettings(GatewaySettings):
    """``GatewaySettings`` with the authentication, limit and downstream TLS fields."""

    auth_tokens_file: Path | None = Field(
        default=None,
        description=(
            "Token file (sha256 digest, caller, rights, optional limits per line); "
            "unset = no authentication and no per-caller limits."
        ),
    )
    auth_reload_interval_s: float = Field(
        default=2.0,
        ge=0.0,
        description=(
            "Least seconds between two reads of the token file; edits take effect within this."
        ),
    )
    auth_open_health: bool = Field(
        default=True,
        description=(
            "Let grpc.health.v1 checks through without a token; the container health check "
            "needs it."
        ),
    )
    auth_open_reflection: bool = Field(
        default=False,
        description="Let server reflection (grpcurl list, describe) through without a token.",
    )
    limit_concurrent_generations: int = Field(
        default=2,
        ge=0,
        description=(
            "Generate calls one caller may run at once; 0 = no limit; a token line may set its own."
        ),
    )
    limit_variants_per_minute: int = Field(
        default=16,
        ge=0,
        description=(
            "Variants one caller may start per minute (a bucket refilled over the minute); "
            "0 = no limit; a token line may set its own."
        ),
    )
    downstream_tls_ca_file: Path | None = Field(
        default=None,
        description=(
            "CA that the vision, planner and render certificates must chain to; "
            "set = TLS towards them."
        ),
    )
    downstream_tls_cert_file: Path | None = Field(
        default=None,
        description=(
            "Client certificate the gateway presents to vision, planner and render (mutual TLS)."
        ),
    )
    downstream_tls_key_file: Path | None = Field(
        default=None, description="Key of that client certificate."
    )

    @field_validator(
        "downstream_tls_ca_file", "downstream_tls_cert_file", "downstream_tls_key_file"
    )
    @classmethod
    def _downstream_file_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and not value.is_file():
            assert info.field_name is not None
            raise ValueError(f"{env_name(cls, info.field_name)}: no such file: {value}")
        return value


DEPLOYMENT_FIELDS = tuple(WiredGatewaySettings.__annotations__)
"""The fields defined above, whether or not ``GatewaySettings`` declares them too."""
