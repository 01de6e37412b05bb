"""Assembly of the planner server: model adapter, probe, planner, servicer, readiness."""

from __future__ import annotations

from imagegen.planner.v1 import planner_pb2_grpc
from services.common.llm import connect
from services.common.server import GrpcServer
from services.planner.planner import Planner
from services.planner.readiness import text_model_probe
from services.planner.service import SERVICE_NAME, PlannerServicer
from services.planner.settings import PlannerSettings

__all__ = ["create_server"]


async def create_server(settings: PlannerSettings) -> GrpcServer:
    """Builds the planner server; the caller starts it (``await host.start()``).

    Opens one model adapter (``PLANNER_LLM_BACKEND``), closed when the server stops, and
    watches the model's readiness: SERVING only while the server answers and has the
    model (requests are still answered otherwise, by the rules).

    Args:
        settings: The service's settings.

    Returns:
        The server, not started.
    """
    client = connect(settings)
    probe = text_model_probe(client, settings.model)
    planner = Planner(settings, client, probe)
    host = GrpcServer(settings, service_names=[SERVICE_NAME])
    planner_pb2_grpc.add_PlannerServiceServicer_to_server(  # type: ignore[no-untyped-call]
        PlannerServicer(planner, probe=probe, backend=client.backend), host.server
    )
    host.on_stop(client.aclose)
    host.watch_readiness(probe.check, settings.readiness_interval_s)
    return host
