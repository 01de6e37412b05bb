"""Assembly of the vision server: model adapter, probe, analyzer, servicer, readiness."""

from __future__ import annotations

from imagegen.vision.v1 import vision_pb2_grpc
from services.common.llm import connect
from services.common.server import GrpcServer
from services.vision.analyzer import Analyzer
from services.vision.readiness import vision_model_probe
from services.vision.service import SERVICE_NAME, VisionServicer
from services.vision.settings import VisionSettings

__all__ = ["create_server"]


async def create_server(settings: VisionSettings) -> GrpcServer:
    """Builds the vision server; the caller starts it (``await host.start()``).

    Opens one model adapter (``VISION_LLM_BACKEND``), closed when the server stops, and
    watches the model's readiness: SERVING only while the server answers and has the
    model (with vision, where the server reports it).

    Args:
        settings: The service's settings.

    Returns:
        The server, not started.
    """
    client = connect(settings)
    probe = vision_model_probe(client, settings.model)
    analyzer = Analyzer(settings, client, probe)
    host = GrpcServer(settings, service_names=[SERVICE_NAME])
    vision_pb2_grpc.add_VisionServiceServicer_to_server(  # type: ignore[no-untyped-call]
        VisionServicer(analyzer, probe=probe, backend=client.backend), host.server
    )
    host.on_stop(client.aclose)
    host.watch_readiness(probe.check, settings.readiness_interval_s)
    return host
