"""Ollama's wire types: the bodies of ``/api/chat``, ``/api/show``, ``/api/ps``, ``/api/tags``.

Only the fields the adapter sends or reads; unknown fields of a reply are ignored.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "LocalModel",
    "ModelDetails",
    "OllamaChatRequest",
    "OllamaChatResponse",
    "OllamaMessage",
    "RunningModel",
    "ShowResponse",
    "normalize_model_name",
]


class OllamaMessage(BaseModel):
    """One message of an Ollama chat.

    ``images`` holds plain base64 strings, never a ``data:`` URI (Ollama answers 400
    ``illegal base64 data`` to the prefix).
    """

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    images: list[str] | None = None
    thinking: str | None = None

    @field_validator("images")
    @classmethod
    def _plain_base64(cls, images: list[str] | None) -> list[str] | None:
        if images and any(image.startswith("data:") for image in images):
            raise ValueError("images must be plain base64 without a data: URI prefix")
        return images


class OllamaChatRequest(BaseModel):
    """A ``POST /api/chat`` request.

    | field | meaning |
    |---|---|
    | ``format`` | ``"json"`` or a JSON-Schema object (pydantic's ``model_json_schema()``) |
    | ``options`` | sampling and load-time options; a changed ``num_ctx``… reloads the model |
    | ``keep_alive`` | ``"10m"``; ``-1`` forever; ``0`` unload after the call; ``"30"`` = 30 s |
    | ``think`` | ``True``/``False`` or a level; never ``True`` for a model without thinking (400) |
    | ``stream`` | how the adapter reads the reply; the result is the same |
    """

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    messages: list[OllamaMessage]
    format: dict[str, Any] | Literal["json"] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    keep_alive: str | int | None = None
    think: bool | Literal["low", "medium", "high", "max"] | None = None
    stream: bool = True

    @field_validator("keep_alive")
    @classmethod
    def _keep_alive_has_unit(cls, value: str | int | None) -> str | int | None:
        # Ollama rejects "10" (a duration string without a unit) with 400, yet settings read
        # from the environment arrive as strings: a bare number means seconds, as Ollama's
        # own numeric form does.
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        return value

    def to_json(self) -> dict[str, Any]:
        """The request body as Ollama expects it (unset fields left out)."""
        body = self.model_dump(exclude_none=True)
        body["messages"] = [m.model_dump(exclude_none=True) for m in self.messages]
        return body


class OllamaChatResponse(BaseModel):
    """The assembled reply of ``/api/chat`` (streamed deltas joined, final metrics kept).

    Durations are integer nanoseconds as Ollama sends them; every metric may be absent.
    ``load_duration`` tells a cold call (model loaded) from a warm one.
    """

    model_config = ConfigDict(extra="ignore")

    model: str = ""
    created_at: str | None = None
    message: OllamaMessage = Field(default_factory=lambda: OllamaMessage(role="assistant"))
    done: bool = False
    done_reason: str | None = None
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None

    @property
    def content(self) -> str:
        """The answer text (``message.content``)."""
        return self.message.content

    @property
    def thinking(self) -> str:
        """The thinking trace (``message.thinking``), empty for non-thinking models."""
        return self.message.thinking or ""

    def timings_ms(self) -> dict[str, float | None]:
        """The durations in milliseconds, for logs."""

        def ms(ns: int | None) -> float | None:
            return None if ns is None else round(ns / 1e6, 1)

        return {
            "total_ms": ms(self.total_duration),
            "load_ms": ms(self.load_duration),
            "prompt_eval_ms": ms(self.prompt_eval_duration),
            "eval_ms": ms(self.eval_duration),
        }


class ModelDetails(BaseModel):
    """``details`` of a model in ``/api/show``, ``/api/tags`` and ``/api/ps``."""

    model_config = ConfigDict(extra="ignore")

    parent_model: str = ""
    format: str = ""
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""


class ShowResponse(BaseModel):
    """What ``POST /api/show`` tells about a model (the fields the services read)."""

    model_config = ConfigDict(extra="ignore")

    capabilities: list[str] = Field(default_factory=list)
    details: ModelDetails = Field(default_factory=ModelDetails)
    model_info: dict[str, Any] = Field(default_factory=dict)
    projector_info: dict[str, Any] | None = None
    parameters: str = ""
    template: str = ""
    modified_at: str | None = None

    def has_capability(self, capability: str) -> bool:
        """Whether the model has ``capability`` ("vision", "thinking", "tools", …).

        Servers older than the ``capabilities`` field never list one; for "vision" a
        multimodal projector is then taken as the sign.
        """
        if self.capabilities:
            return capability in self.capabilities
        return capability == "vision" and bool(self.projector_info)

    def capability_list(self) -> tuple[str, ...]:
        """Every capability the model has, in Ollama's order; a projector counts as ``vision``."""
        if self.has_capability("vision") and "vision" not in self.capabilities:
            return (*self.capabilities, "vision")
        return tuple(self.capabilities)


class LocalModel(BaseModel):
    """One pulled model, as ``GET /api/tags`` lists it."""

    model_config = ConfigDict(extra="ignore")

    name: str
    model: str = ""
    modified_at: str | None = None
    size: int = 0
    digest: str = ""
    details: ModelDetails = Field(default_factory=ModelDetails)
    capabilities: list[str] | None = None


class RunningModel(BaseModel):
    """One loaded model, as ``GET /api/ps`` lists it.

    ``size`` is the resident bytes, ``size_vram`` the part on the GPU (``size_vram <
    size`` means a partial, slow CPU offload).
    """

    model_config = ConfigDict(extra="ignore")

    name: str
    model: str = ""
    size: int = 0
    size_vram: int = 0
    digest: str = ""
    details: ModelDetails = Field(default_factory=ModelDetails)
    expires_at: str | None = None
    context_length: int | None = None


def normalize_model_name(name: str) -> str:
    """``LLaVA`` → ``llava:latest``: the form ``/api/ps`` and ``/api/tags`` list names in."""
    name = name.strip().lower()
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"
