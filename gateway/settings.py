"""Settings of the gateway, read from ``GATEWAY_*`` environment variables at boot.

The shared limits (``IMAGEGEN_MAX_MESSAGE_BYTES``, ``IMAGEGEN_MAX_IMAGE_BYTES``,
``IMAGEGEN_MAX_IMAGE_SIDE``, and the request limits the render service enforces too:
``IMAGEGEN_MAX_VARIANTS``, ``IMAGEGEN_MAX_LORAS``, ``IMAGEGEN_TXT2IMG_MIN_SIDE``,
``IMAGEGEN_TXT2IMG_MAX_SIDE``) come from
:class:`~services.common.settings.RequestLimitSettings`.
A bad value stops the gateway at boot with an error naming the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from gateway.downstream import grpc_target
from gateway.operations.settings import JobsSettings
from services.common.channels import ClientTLS
from services.common.settings import RequestLimitSettings, env_name, prompt_token_budget_field

__all__ = ["GatewaySettings"]


class GatewaySettings(JobsSettings, RequestLimitSettings):
    """Configuration of the gateway (the orchestrator the callers talk to).

    Downstream addresses accept a comma-separated list of ``host:port`` or a
    ``dns:///name:port`` target: replicas of one service share its load through
    ``round_robin``.
    """

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    port: int = Field(default=50051, ge=0, le=65535, description="gRPC port of the gateway.")

    vision_address: str = Field(
        default="127.0.0.1:50052",
        min_length=1,
        description="Vision service target: host:port, a comma-separated list, or dns:///name:port.",
    )
    planner_address: str = Field(
        default="127.0.0.1:50053",
        min_length=1,
        description="Planner service target: host:port, a comma-separated list, or dns:///name:port.",
    )
    render_address: str = Field(
        default="127.0.0.1:50054",
        min_length=1,
        description="Render service target: host:port, a comma-separated list, or dns:///name:port.",
    )

    default_deadline_s: float = Field(
        default=900.0,
        gt=0.0,
        description="Deadline of a Generate or Plan call whose caller set none, in seconds.",
    )
    analyze_budget_fraction: float = Field(
        default=0.2,
        gt=0.0,
        lt=1.0,
        description="Largest share of the call's deadline the image analysis may use.",
    )
    plan_budget_fraction: float = Field(
        default=0.2,
        gt=0.0,
        lt=1.0,
        description="Largest share of the call's deadline the prompt planning may use.",
    )

    max_instruction_chars: int = Field(
        default=65536,
        ge=1,
        description="Longest accepted instruction (and description), in characters.",
    )

    prompt_token_budget: int = prompt_token_budget_field()

    plan_reuse_window_s: float = Field(
        default=600.0,
        ge=0.0,
        description=(
            "Seconds an analysis and plan are reused for the same image, instruction, "
            "description and overrides; 0 switches reuse off."
        ),
    )
    plan_reuse_max_entries: int = Field(
        default=256, ge=1, description="Most analyses and plans kept for reuse."
    )

    model_grouping: bool = Field(
        default=True,
        description=(
            "Run concurrent requests' vision and planner calls in phases, so one shared GPU "
            "does not swap models per request."
        ),
    )
    grouping_max_wait_s: float = Field(
        default=5.0,
        ge=0.0,
        description=(
            "Longest a call waits for the other model's phase to drain before it runs anyway; "
            "a lone request never waits."
        ),
    )

    grouping_store: Literal["process", "redis"] = Field(
        default="process",
        description=(
            "Where model calls are grouped into phases: 'process' (this gateway's calls) or "
            "'redis' (every gateway replica sharing the Redis, so replicas in front of one "
            "model server still load each model once per phase)."
        ),
    )
    grouping_redis_url: str = Field(
        default="",
        description=(
            "Redis of the 'redis' grouping store: redis://host:port/db; empty = the job "
            "store's (GATEWAY_JOBS_REDIS_URL)."
        ),
    )
    grouping_redis_prefix: str = Field(
        default="imagegen:phases",
        min_length=1,
        description="Prefix of the grouping keys in Redis; replicas sharing phases share it.",
    )
    grouping_lease_s: float = Field(
        default=10.0,
        gt=0.0,
        description=(
            "Seconds after which the model calls of a gateway that stopped renewing them "
            "(killed, cut off) no longer hold or wait for a phase ('redis' grouping store)."
        ),
    )

    kontext_recheck_s: float = Field(
        default=300.0,
        ge=0.0,
        description=(
            "After a render refused FLUX.1 Kontext for its missing model, AUTO edits skip "
            "Kontext (KONTEXT_UNAVAILABLE) for this long before trying it again."
        ),
    )

    single_gpu: bool = Field(
        default=False,
        description=(
            "Have vision and planner unload their language models before each render phase "
            "so ComfyUI gets the VRAM (hosts where Flux and the language models do not fit "
            "together)."
        ),
    )
    unload_timeout_s: float = Field(
        default=60.0,
        gt=0.0,
        description=(
            "Longest wait for vision and planner to report their models unloaded (single-GPU mode)."
        ),
    )

    health_poll_interval_s: float = Field(
        default=2.0,
        gt=0.0,
        description="Seconds between checks of the downstream services' health.",
    )
    health_check_timeout_s: float = Field(
        default=1.0,
        gt=0.0,
        description="Deadline of one downstream health check, in seconds.",
    )

    heartbeat_interval_s: float = Field(
        default=2.0,
        gt=0.0,
        description=(
            "Seconds between two `heartbeat` events of a Generate stream while a model call runs."
        ),
    )
    capabilities_ttl_s: float = Field(
        default=30.0,
        ge=0.0,
        description=(
            "Seconds a GetCapabilities answer (render catalog, language models) is reused, "
            "also for checking the names a request gives (a name it lacks is looked up "
            "again in a fresh answer)."
        ),
    )
    capabilities_timeout_s: float = Field(
        default=10.0,
        gt=0.0,
        description=(
            "Deadline of the calls that gather the capabilities (render's catalog reads "
            "every backend's node list)."
        ),
    )

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

    @field_validator("vision_address", "planner_address", "render_address")
    @classmethod
    def _usable_target(cls, value: str, info: ValidationInfo) -> str:
        assert info.field_name is not None
        try:
            grpc_target(value)
        except ValueError as e:
            raise ValueError(f"{env_name(cls, info.field_name)}: {e}") from e
        return value

    @model_validator(mode="after")
    def _downstream_tls_fits_together(self) -> Self:
        cls = type(self)
        cert, key = (
            env_name(cls, "downstream_tls_cert_file"),
            env_name(cls, "downstream_tls_key_file"),
        )
        if (self.downstream_tls_cert_file is None) != (self.downstream_tls_key_file is None):
            raise ValueError(f"{cert} and {key} must be set together")
        if self.downstream_tls_cert_file is not None and self.downstream_tls_ca_file is None:
            raise ValueError(f"{cert} needs {env_name(cls, 'downstream_tls_ca_file')}")
        return self

    def downstream_tls(self) -> ClientTLS | None:
        """TLS towards vision, planner and render; None for plaintext."""
        if self.downstream_tls_ca_file is None:
            return None
        return ClientTLS(
            ca_file=self.downstream_tls_ca_file,
            cert_file=self.downstream_tls_cert_file,
            key_file=self.downstream_tls_key_file,
        )

    @model_validator(mode="after")
    def _budgets_leave_time_to_render(self) -> Self:
        if self.analyze_budget_fraction + self.plan_budget_fraction >= 1.0:
            cls = type(self)
            raise ValueError(
                f"{env_name(cls, 'analyze_budget_fraction')} + "
                f"{env_name(cls, 'plan_budget_fraction')} must stay below 1.0 "
                "so the render keeps part of the deadline"
            )
        return self
