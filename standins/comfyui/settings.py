"""Settings of the ComfyUI stand-in (``FAKE_COMFYUI_*``): model lists as a JSON array or comma
separated (``FAKE_COMFYUI_LORAS="a.safetensors,b.safetensors"``), faults nested
(``FAKE_COMFYUI_FAULTS__HTTP_DELAY_S=2``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["FakeComfyUISettings", "FaultSettings"]

DEFAULT_LORAS = ["flux-lora-detailer.safetensors", "flux-realism-lora.safetensors"]


def _split_list(value: Any) -> Any:
    """A JSON array or a comma separated string for a list of names."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


NameList = Annotated[list[str], NoDecode, BeforeValidator(_split_list)]


class FaultSettings(BaseModel):
    """Fault injection knobs, each changeable at runtime on ``fake.faults``; node selectors
    (``execution_error_node``, ``oom_node``) match a node id or a class_type."""

    model_config = ConfigDict(
        validate_assignment=True, extra="forbid", use_attribute_docstrings=True
    )

    refuse_connections: bool = False
    """Close every incoming connection before answering (the client sees a disconnect).
    For a port that is not listening at all use RunningFakeComfyUI.stop()."""
    http_delay_s: float = Field(default=0.0, ge=0)
    """Delay every HTTP response."""
    http_500_routes: NameList = Field(default_factory=list)
    """Routes answered with HTTP 500, e.g. "/prompt", "POST /prompt",
    "/history/{prompt_id}", "/view" or "*" (the /api prefix is ignored)."""
    http_500_count: int | None = Field(default=None, ge=0)
    """Fail only the next N matching requests (None: every matching request)."""
    ws_drop_after_step: int | None = Field(default=None, ge=0)
    """Abort every websocket once a sampler reached this step (once per prompt)."""
    execution_error_node: str | None = None
    """Node id or class_type that fails with execution_error."""
    execution_error_type: str | None = None
    """exception_type of the injected error (default: realistic)."""
    execution_error_message: str | None = None
    """Message of the injected error (default: realistic)."""
    oom_node: str | None = None
    """Node id or class_type that fails with torch.OutOfMemoryError."""
    oom_after_step: int = Field(default=0, ge=0)
    """For samplers: steps completed before the OOM happens."""
    queue_delay_s: float = Field(default=0.0, ge=0)
    """Extra delay before the worker takes the next prompt."""
    hold_queue: bool = False
    """A stalled queue: prompts stay pending until this is cleared again."""

    _listeners: list[Callable[[str, Any], None]] = PrivateAttr(default_factory=list)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if not name.startswith("_"):
            for listener in list(self._listeners):
                listener(name, getattr(self, name))

    def add_listener(self, listener: Callable[[str, Any], None]) -> None:
        """Call ``listener(field, value)`` after every change of a field."""
        self._listeners.append(listener)

    def reset(self) -> None:
        """Switch every fault off."""
        for name, info in type(self).model_fields.items():
            setattr(self, name, info.get_default(call_default_factory=True))


class FakeComfyUISettings(BaseSettings):
    """Configuration of the ComfyUI stand-in (protocol-faithful to ComfyUI 0.3.64)."""

    model_config = SettingsConfigDict(
        env_prefix="FAKE_COMFYUI_",
        env_nested_delimiter="__",
        extra="ignore",
        use_attribute_docstrings=True,
    )

    checkpoints: NameList = Field(default_factory=lambda: ["flux1-dev-fp8.safetensors"])
    """Checkpoint files it has (models/checkpoints; CheckpointLoaderSimple list)."""
    loras: NameList = Field(default_factory=lambda: list(DEFAULT_LORAS))
    """LoRA files it has (models/loras; LoraLoader/LoraLoaderModelOnly list)."""
    controlnets: NameList = Field(
        default_factory=lambda: [
            "flux-canny-controlnet-v3.safetensors",
            "flux-union-controlnet-pro.safetensors",
        ]
    )
    """ControlNet files it has (models/controlnet; ControlNetLoader list)."""
    upscale_models: NameList = Field(default_factory=lambda: ["4x-UltraSharp.pth"])
    """Upscale models it has (UpscaleModelLoader; NxN in the name sets the scale)."""
    vae: NameList = Field(default_factory=list)
    """VAE files it has (VAELoader; pixel_space is added)."""
    text_encoders: NameList = Field(default_factory=list)
    """Text encoder files it has (CLIPLoader, DualCLIPLoader)."""
    diffusion_models: NameList = Field(default_factory=list)
    """Diffusion model files it has (UNETLoader)."""
    unavailable_nodes: NameList = Field(default_factory=list)
    """Node classes it lacks (e.g. SaveImageWebsocket, shipped as an optional custom node);
    /object_info omits them and prompts using them are refused."""
    step_delay_s: float = Field(default=0.1, ge=0)
    """Seconds per sampler step (and per upscale tile); a fast GPU's pace."""
    node_delay_s: float = Field(default=0.0, ge=0)
    """Seconds added to every executed node (an interrupt waits for the node to end; a GPU
    takes 0.05 to seconds)."""
    previews_enabled: bool = True
    """Send sampler preview frames, as a real server started with --preview-method auto
    does (ComfyUI's own default is none: no previews)."""
    restart_s: float = Field(default=0.0, ge=0)
    """Seconds restart() keeps the port closed (a real ComfyUI needs several)."""
    data_dir: Path | None = None
    """Folder holding input/, output/ and temp/ (default: a fresh temp dir, removed at
    exit)."""
    comfyui_version: str = "0.3.64"
    """Version in /system_stats; 0.26.0 or later switches on the newer API (strict UUID
    prompt ids, /api/jobs with per-job status and cancel)."""
    faults: FaultSettings = Field(default_factory=FaultSettings)
    """Faults in force from the start (nested: FAKE_COMFYUI_FAULTS__HTTP_DELAY_S=2)."""
