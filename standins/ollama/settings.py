"""Configuration of the Ollama stand-in, read from ``FAKE_OLLAMA_*`` environment variables.

The defaults model one machine with one GPU: LLaVA and gpt-oss installed, room for one of
them at a time, instant loads. Benchmarks and the demo raise ``FAKE_OLLAMA_LOAD_DELAY_S``
to make model switches cost something; tests set faults and answers at runtime instead.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from standins.ollama.faults import Fault
from standins.ollama.wire import parse_go_duration

__all__ = ["FakeOllamaSettings"]


class FakeOllamaSettings(BaseSettings):
    """Everything the stand-in can be told at start; host and port come from the CLI."""

    model_config = SettingsConfigDict(
        env_prefix="FAKE_OLLAMA_", extra="ignore", use_attribute_docstrings=True
    )

    models: list[str] = Field(default=["llava:latest", "gpt-oss:20b"], min_length=1)
    """Installed models (JSON list): llava* see images, gpt-oss* think."""
    max_loaded_models: int = Field(default=1, ge=1)
    """Models resident at once; a new one evicts an idle one."""
    load_delay_s: float = Field(default=0.0, ge=0.0)
    """Seconds a model load takes (reloads included)."""
    unload_delay_s: float = Field(default=0.05, ge=0.0)
    """Seconds after an unload before /api/ps drops it."""
    keep_alive: str = "5m"
    """Default residency of an idle model (Go duration; <0 forever)."""
    context_length: int = Field(default=4096, ge=1)
    """num_ctx when a request sets none."""
    num_parallel: int = Field(default=1, ge=1)
    """Requests one model serves at once."""
    max_queue: int = Field(default=512, ge=1)
    """Requests waiting for the scheduler before a 503."""
    version: str = "0.12.6"
    """Version reported by GET /api/version."""
    faults: list[Fault] = []
    """Faults in force from the start (JSON list of fault objects)."""
    answers: dict[str, str] = {}
    """Standing answer text per model (JSON object); without one a model answers its
    request's JSON schema filled with placeholder values."""
    request_log_limit: int = Field(default=1000, ge=1)
    """Received requests kept (oldest dropped first)."""

    @field_validator("keep_alive")
    @classmethod
    def _keep_alive_parses(cls, value: str) -> str:
        parse_go_duration(value)  # a GoDecodeError is a ValueError: pydantic names the field
        return value
