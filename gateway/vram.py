"""Handing one GPU from Ollama to ComfyUI (single-GPU mode).

On a host where Flux and the language models do not fit in VRAM together, the gateway
empties Ollama before a render phase starts: it asks Ollama which models are loaded
(``/api/ps``), unloads each (``keep_alive: 0``) and polls ``/api/ps`` until they are
gone. Ollama loads them again by itself on the next vision or planner call. With the
phase scheduler this runs once per burst of renders, not once per request.
"""

from __future__ import annotations

import asyncio

from services.common.logs import get_logger
from services.common.ollama import OllamaClient, OllamaError

__all__ = ["OllamaEvictor"]

_log = get_logger(__name__)


class OllamaEvictor:
    """Unloads every Ollama model; an entry hook of the render phase.

    Args:
        client: The Ollama adapter.
        timeout_s: Longest wait for the models to leave the GPU.
    """

    def __init__(self, client: OllamaClient, *, timeout_s: float) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self.evictions = 0
        """How many times models were found loaded and unloaded."""

    async def __call__(self) -> list[str]:
        """Unloads whatever Ollama holds and waits until it is gone.

        Returns:
            Warnings for the renders about to start; empty when the GPU was freed (or
            nothing was loaded).
        """
        try:
            loaded = sorted({m.name or m.model for m in await self._client.ps()} - {""})
            if not loaded:
                return []
            _log.info("unloading Ollama models before rendering", extra={"models": loaded})
            await asyncio.gather(
                *(self._client.unload(name, timeout_s=self._timeout_s) for name in loaded)
            )
            self.evictions += 1
            gone = await self._client.wait_unloaded(loaded, timeout_s=self._timeout_s)
        except OllamaError as e:
            return [f"could not unload the Ollama models before rendering: {e.message}"]
        if not gone:
            return [
                f"Ollama still held {', '.join(loaded)} after {self._timeout_s:.0f} s; "
                "the render may run short of GPU memory"
            ]
        return []
