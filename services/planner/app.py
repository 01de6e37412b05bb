"""Assembly of the planner server: Ollama client, probe, planner, servicer, readiness."""

from __future__ import annotations

from imagegen.planner.v1 import planner_pb2_grpc
from services.common.ollama import OllamaClient
from services.common.server import GrpcServer
from services.planner.planner import Planner
from services.planner.readiness import text_model_probe
from services.planner.service import SERVICE_NAME, PlannerServicer
from services.planner.settings import PlannerSettings

__all__ = ["create_server"]


async def create_server(settings: PlannerSettings) -> GrpcServer:
    """Builds the planner server; the caller starts it (``await host.start()``).

    Opens one Ollama client, closed when the server stops, and watches the model's
    readiness: SERVING only while Ollama answers and ``/api/show`` knows the model
    (requests are still answered otherwise, by the rules).

    Args:
        settings: The service's settings.

    Returns:
        The server, not started.
    """
    client = OllamaClient(settings.ollama_url, timeout_s=settings.call_timeout_s)
    probe = text_model_probe(client, settings.model)
    planner = Planner(settings, client, probe)
    host = GrpcServer(settings, service_names=[SERVICE_NAME])
    planner_pb2_grpc.add_PlannerServiceServicer_to_server(  # type: ignore[no-untyped-call]
        PlannerServicer(planner), host.server
    )
    host.on_stop(client.aclose)
    host.watch_readiness(probe.check, settings.readiness_interval_s)
    return host
