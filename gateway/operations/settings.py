"""Settings of the gateway's jobs (``GATEWAY_JOBS_*``, ``GATEWAY_WEBHOOK_*``).

Mixed into :class:`~gateway.settings.GatewaySettings`, so they are read, validated and
documented with the rest of the gateway's settings.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

from services.common.settings import env_name

__all__ = ["JobsSettings"]


class JobsSettings(BaseSettings):
    """Where jobs live, how long they are kept, and how webhooks are sent."""

    jobs_store: Literal["sqlite", "redis"] = Field(
        default="sqlite",
        description=(
            "Job store: 'sqlite' (a file and an image folder; one gateway) or 'redis' "
            "(shared by every replica)."
        ),
    )
    jobs_dir: Path = Field(
        default=Path(tempfile.gettempdir()) / "imagegen-jobs",
        description=(
            "Folder of the SQLite job store (jobs.sqlite3 and images/); put it on a volume "
            "so jobs outlive the container."
        ),
    )
    jobs_redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Redis of the 'redis' job store: redis://host:port/db.",
    )
    jobs_redis_prefix: str = Field(
        default="imagegen:jobs", min_length=1, description="Prefix of every job key in Redis."
    )
    jobs_workers: int = Field(
        default=4, ge=0, description="Jobs this gateway runs at once; 0 = submit and serve only."
    )
    jobs_lease_s: float = Field(
        default=30.0,
        gt=0.0,
        description=(
            "Seconds after which another replica takes over a job whose gateway stopped "
            "renewing it (Redis store)."
        ),
    )
    jobs_retention_s: float = Field(
        default=86400.0,
        gt=0.0,
        description="Seconds a finished job (record, events, images) is kept.",
    )
    jobs_retention_bytes: int = Field(
        default=2_000_000_000,
        ge=0,
        description="Most bytes of finished jobs kept; the oldest are removed first.",
    )
    jobs_purge_interval_s: float = Field(
        default=60.0, gt=0.0, description="Seconds between two removals of expired jobs."
    )

    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Standard Webhooks signing secret (whsec_ + base64); unset = no webhooks.",
    )
    webhook_allowed_urls: str = Field(
        default="",
        description=(
            "Comma-separated URL prefixes webhooks may be sent to, e.g. "
            "https://hooks.example.com/imagegen/; empty = none."
        ),
    )
    webhook_attempts: int = Field(
        default=5, ge=1, le=20, description="Deliveries of one webhook tried at most."
    )
    webhook_backoff_s: float = Field(
        default=1.0, gt=0.0, description="Wait before a webhook's first retry; doubled after each."
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0.0, description="Deadline of one webhook delivery, in seconds."
    )

    @field_validator("webhook_allowed_urls")
    @classmethod
    def _absolute_urls(cls, value: str) -> str:
        for url in value.split(","):
            url = url.strip()
            if url and not url.startswith(("http://", "https://")):
                raise ValueError(
                    f"{env_name(cls, 'webhook_allowed_urls')}: {url!r} is not an http(s) URL"
                )
        return value

    @model_validator(mode="after")
    def _secret_is_standard(self) -> Self:
        secret = self.webhook_secret
        if secret is not None and not secret.get_secret_value().startswith("whsec_"):
            raise ValueError(f"{env_name(type(self), 'webhook_secret')} must start with whsec_")
        return self

    def webhook_allow_list(self) -> tuple[str, ...]:
        """The allowed webhook URL prefixes."""
        return tuple(u.strip() for u in self.webhook_allowed_urls.split(",") if u.strip())
