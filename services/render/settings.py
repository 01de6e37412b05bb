"""Settings of the render service (environment prefix ``RENDER_``).

The ComfyUI backends are listed in ``RENDER_COMFYUI_URLS`` (comma-separated); the
unprefixed ``COMFYUI_URLS`` and ``COMFYUI_URL`` are accepted too, so one variable
configures ``make run`` and the service alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.common.settings import RequestLimitSettings, env_name

__all__ = ["DEFAULT_WORKFLOWS_DIR", "RenderSettings"]

DEFAULT_WORKFLOWS_DIR = Path(__file__).resolve().parents[2] / "workflows"
"""The repository's ``workflows/`` folder."""

_DEFAULT_CONTROLNET = "flux-union-controlnet-pro.safetensors"


class RenderSettings(RequestLimitSettings):
    """Configuration of the render service."""

    model_config = SettingsConfigDict(env_prefix="RENDER_")

    port: int = Field(default=50054, ge=0, le=65535, description="gRPC port; 0 picks a free port.")

    comfyui_urls: str = Field(
        default="http://127.0.0.1:8188",
        validation_alias=AliasChoices("RENDER_COMFYUI_URLS", "COMFYUI_URLS", "COMFYUI_URL"),
        description=(
            "Comma-separated ComfyUI base URLs; each variant goes to the least-loaded one. "
            "COMFYUI_URLS and COMFYUI_URL are accepted as well."
        ),
    )
    workflows_dir: Path | None = Field(
        default=None,
        description=(
            "Folder of workflow templates (<name>.json + <name>.bindings.json); "
            "empty = the repository's workflows/."
        ),
    )
    client_id: str = Field(
        default="",
        description="ComfyUI client id of this instance; empty = a fresh random id at start.",
    )

    instance_name: str = Field(
        default="",
        description=(
            "Name of this render instance, stable across its restarts (its prompts are "
            "tagged with it; prompts of its earlier lives are withdrawn); empty = "
            "<hostname>:<port>."
        ),
    )
    orphan_sweep_interval_s: float = Field(
        default=30.0,
        gt=0.0,
        description=(
            "How often ComfyUI's queue is searched for prompts an earlier life of this "
            "instance left behind (also once at start)."
        ),
    )

    max_megapixels: float = Field(
        default=2.0,
        gt=0.0,
        le=16.0,
        description="Largest render area in megapixels; larger sources are scaled down to it.",
    )
    upscale_max_megapixels: float = Field(
        default=4.0,
        gt=0.0,
        le=16.0,
        description="Largest result of an upscale workflow (scale size policy) in megapixels; "
        "a larger factor is lowered to fit, with a RENDER_SCALED_TO_CAP warning.",
    )
    max_prompt_chars: int = Field(
        default=4000, ge=1, description="Longest positive or negative prompt, in characters."
    )
    txt2img_default_side: int = Field(
        default=1024, ge=16, le=16384, description="Text-to-image side used when 0 is requested."
    )
    lora_strength_min: float = Field(
        default=-2.0, description="LoRA strengths below this are clamped to it (with a warning)."
    )
    lora_strength_max: float = Field(
        default=2.0, description="LoRA strengths above this are clamped to it (with a warning)."
    )

    controlnet_canny_model: str = Field(
        default=_DEFAULT_CONTROLNET,
        description="ControlNet file used for CANNY when none is named.",
    )
    controlnet_depth_model: str = Field(
        default=_DEFAULT_CONTROLNET,
        description="ControlNet file used for DEPTH when none is named.",
    )
    controlnet_pose_model: str = Field(
        default=_DEFAULT_CONTROLNET, description="ControlNet file used for POSE when none is named."
    )
    controlnet_tile_model: str = Field(
        default=_DEFAULT_CONTROLNET, description="ControlNet file used for TILE when none is named."
    )
    controlnet_union_marker: str = Field(
        default="union",
        min_length=1,
        description=(
            "A ControlNet file whose name contains this (any case) is a Flux Union model and "
            "gets a SetUnionControlNetType node with the Flux mode mapping."
        ),
    )
    canny_low_threshold: float = Field(
        default=0.4, ge=0.01, le=0.99, description="Low threshold of the Canny preprocessor."
    )
    canny_high_threshold: float = Field(
        default=0.8, ge=0.01, le=0.99, description="High threshold of the Canny preprocessor."
    )

    preview_max_per_second: float = Field(
        default=2.0,
        gt=0.0,
        le=30.0,
        description="Most preview events per variant and second; extra frames are dropped.",
    )
    queue_poll_interval_s: float = Field(
        default=1.0,
        gt=0.0,
        description="How often a waiting variant re-reads its queue position when idle.",
    )
    history_poll_interval_s: float = Field(
        default=5.0,
        gt=0.0,
        description="How often a running variant checks /history while the websocket is quiet.",
    )
    min_time_budget_s: float = Field(
        default=1.0,
        ge=0.0,
        description="Requests with less time than this before their deadline are refused.",
    )
    render_timeout_s: float = Field(
        default=900.0, gt=0.0, description="Longest render when the caller set no deadline."
    )
    cancel_timeout_s: float = Field(
        default=5.0,
        gt=0.0,
        description="Longest time spent deleting/interrupting prompts after a cancel.",
    )
    withdrawal_bound_s: float = Field(
        default=600.0,
        gt=0.0,
        description=(
            "How long a withdrawn prompt (cancel, deadline, failure, a gone instance) is "
            "watched until ComfyUI no longer holds it; only exceeding it logs an error. "
            "ComfyUI stops a prompt only when its running node ends, which can take minutes."
        ),
    )
    request_timeout_s: float = Field(
        default=30.0, gt=0.0, description="Timeout of one HTTP request to ComfyUI."
    )
    connect_timeout_s: float = Field(
        default=5.0, gt=0.0, description="Timeout of connecting to ComfyUI (HTTP or websocket)."
    )
    retry_max_attempts: int = Field(
        default=3, ge=1, le=20, description="Attempts per ComfyUI call before giving up."
    )
    retry_initial_backoff_s: float = Field(
        default=0.2, ge=0.0, description="Pause before the first retry (doubles, with jitter)."
    )
    retry_max_backoff_s: float = Field(
        default=2.0, ge=0.0, description="Longest pause between retries."
    )
    reconnect_max_s: float = Field(
        default=5.0, gt=0.0, description="Longest pause between websocket reconnection attempts."
    )
    readiness_interval_s: float = Field(
        default=5.0,
        gt=0.0,
        description=(
            "Seconds between readiness probes (/system_stats and the default workflows' "
            "checkpoint on at least one backend)."
        ),
    )
    max_pending_variants: int = Field(
        default=8,
        ge=0,
        description=(
            "Pending variants (waiting or sampling) at which this replica stops admitting "
            "work: its 'readiness' health name turns NOT_SERVING, so a Kubernetes readiness "
            "probe takes it out of rotation, until fewer are pending; 0 = no cap."
        ),
    )
    catalog_refresh_s: float = Field(
        default=60.0,
        gt=0.0,
        description=(
            "Longest age of a backend's node and model lists (/object_info) before the next "
            "request reads them again; a refusal naming a model re-reads them at once."
        ),
    )
    upload_subfolder: str = Field(
        default="imagegen",
        pattern=r"^[A-Za-z0-9_-]*$",
        description="Folder inside ComfyUI's input/ that receives uploaded sources.",
    )
    output_prefix: str = Field(
        default="imagegen/render",
        pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)?$",
        description="SaveImage filename_prefix of results (folder/name inside ComfyUI's output/).",
    )

    @field_validator("comfyui_urls")
    @classmethod
    def _check_urls(cls, value: str) -> str:
        name = env_name(cls, "comfyui_urls")
        urls = [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        if not urls:
            raise ValueError(f"{name}: at least one ComfyUI URL is needed")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{name}: {url!r} is not an http:// or https:// URL")
        if len(set(urls)) != len(urls):
            raise ValueError(f"{name}: a URL is listed twice")
        return ",".join(urls)

    @property
    def backend_urls(self) -> list[str]:
        """The ComfyUI base URLs, without trailing slashes."""
        return self.comfyui_urls.split(",")

    @property
    def workflows_path(self) -> Path:
        """The workflows folder in effect."""
        return self.workflows_dir if self.workflows_dir is not None else DEFAULT_WORKFLOWS_DIR

    @model_validator(mode="after")
    def _bounds_fit(self) -> Self:
        cls = type(self)
        if self.lora_strength_min > self.lora_strength_max:
            raise ValueError(
                f"{env_name(cls, 'lora_strength_min')} is above "
                f"{env_name(cls, 'lora_strength_max')}"
            )
        if self.canny_low_threshold > self.canny_high_threshold:
            raise ValueError(
                f"{env_name(cls, 'canny_low_threshold')} is above "
                f"{env_name(cls, 'canny_high_threshold')}"
            )
        if self.txt2img_default_side % 16:
            raise ValueError(f"{env_name(cls, 'txt2img_default_side')} must be a multiple of 16")
        if not self.txt2img_min_side <= self.txt2img_default_side <= self.txt2img_max_side:
            raise ValueError(
                f"{env_name(cls, 'txt2img_min_side')} ≤ {env_name(cls, 'txt2img_default_side')} "
                f"≤ {env_name(cls, 'txt2img_max_side')} must hold"
            )
        return self
