"""Handing one GPU from the language models to ComfyUI (single-GPU mode).

On a host where Flux and the language models do not fit in VRAM together, the gateway
asks the services that own the models to free the GPU before a render phase starts:
``ReleaseModels`` on vision and planner, concurrently. Each unloads its own model through
its model server (Ollama: ``keep_alive: 0``, then ``/api/ps`` until it is gone) and loads
it again by itself on its next call. The gateway speaks to no model server itself. With
the phase scheduler this runs once per burst of renders, not once per request.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc.aio

from gateway.downstream import Downstream
from imagegen.planner.v1 import planner_pb2
from imagegen.vision.v1 import vision_pb2
from services.common.logs import get_logger

__all__ = ["GpuHandover"]

_log = get_logger(__name__)


class GpuHandover:
    """Frees the GPU of the vision and planner models; an entry hook of the render phase.

    Args:
        downstream: The gateway's stubs of the services.
        timeout_s: Longest wait for a service's model to leave the GPU.
    """

    def __init__(self, downstream: Downstream, *, timeout_s: float) -> None:
        self._downstream = downstream
        self._timeout_s = timeout_s
        self.handovers = 0
        """How many times models were found loaded and released."""

    async def __call__(self) -> list[str]:
        """Asks both services to release their models and waits for their answers.

        Returns:
            Warnings for the renders about to start; empty when the GPU was freed (or
            nothing was loaded).
        """
        answers = await asyncio.gather(
            self._release("vision", self._downstream.vision, vision_pb2.ReleaseModelsRequest()),
            self._release("planner", self._downstream.planner, planner_pb2.ReleaseModelsRequest()),
        )
        released = [model for models, _ in answers for model in models]
        if released:
            self.handovers += 1
            _log.info("language models released before rendering", extra={"models": released})
        return [warning for _, warnings in answers for warning in warnings]

    async def _release(self, service: str, stub: Any, request: Any) -> tuple[list[str], list[str]]:
        """One service's release: the models it released, and warnings."""
        try:
            response = await stub.ReleaseModels(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as e:
            return [], [
                f"could not unload the {service} service's model before rendering: "
                f"{e.code().name}: {e.details()}"
            ]
        warnings = []
        if response.unsupported_reason:
            warnings.append(
                f"the {service} service's model stays in GPU memory "
                f"({response.unsupported_reason}); the render may run short of GPU memory"
            )
        if response.held_models:
            warnings.append(
                f"the {service} service's {', '.join(response.held_models)} was still loaded "
                f"after {self._timeout_s:.0f} s; the render may run short of GPU memory"
            )
        return list(response.released_models), warnings
