"""Who queued a prompt: the render instance and which life of it.

Every prompt carries its instance's :meth:`RenderInstance.tags` (next to the request id).
An instance is named by its host and gRPC port — a container restarted in the same pod
keeps both — and each process start adds a fresh start id. A prompt tagged with this
instance's name but another start id was queued by an earlier life that ended without
withdrawing it (``kill -9``, out-of-memory kill, node loss): nobody waits for it, so it is
withdrawn at start and periodically.

Several render processes sharing one ComfyUI (on one host) have different ports, hence
different names, and never touch each other's prompts. A peer that dies for good is not
reaped by the others: in the deployment each render pod has its own ComfyUI sidecar,
which goes with the pod.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RenderInstance"]

_NAME, _START, _STARTED = "instance", "instance_start", "instance_started_ms"


@dataclass(frozen=True)
class RenderInstance:
    """This process as the owner of prompts.

    Attributes:
        name: Stable across restarts of the same instance (host and port).
        start_id: Fresh for each process start.
        started_ms: When the process started (epoch milliseconds), for people.
    """

    name: str
    start_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    @classmethod
    def for_port(cls, configured_name: str, port: int) -> RenderInstance:
        """This process's identity.

        Args:
            configured_name: The configured name; empty = ``<host>:<port>``.
            port: The configured gRPC port; with 0 (a random port) the process id stands
                in for it, and an earlier life cannot be recognised.
        """
        if configured_name:
            return cls(configured_name)
        where = str(port) if port else f"pid{os.getpid()}"
        return cls(f"{socket.gethostname()}:{where}")

    def tags(self) -> dict[str, Any]:
        """What each prompt carries about its owner."""
        return {_NAME: self.name, _START: self.start_id, _STARTED: self.started_ms}

    def is_earlier_life(self, tags: Mapping[str, Any]) -> bool:
        """Whether a prompt with these tags was queued by this instance before it restarted."""
        return tags.get(_NAME) == self.name and tags.get(_START) not in (None, self.start_id)
