"""A tiny server on GrpcServer whose AnalyzeImage takes about a second.

Run as a script by the shutdown test: it prints ``listening PORT`` once serving and
``handling`` when a call has started, then serves until SIGTERM and exits 0 after a
graceful stop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from imagegen.vision.v1 import vision_pb2, vision_pb2_grpc
from services.common.logs import configure_logging
from services.common.server import GrpcServer
from services.common.settings import ServerSettings

VISION_SERVICE = vision_pb2.DESCRIPTOR.services_by_name["VisionService"].full_name
WORK_SECONDS = 1.0  # the in-flight work a graceful stop must let finish


class SlowVision(vision_pb2_grpc.VisionServiceServicer):
    async def AnalyzeImage(self, request: Any, context: Any) -> vision_pb2.AnalyzeImageResponse:
        print("handling", flush=True)
        await asyncio.sleep(WORK_SECONDS)
        return vision_pb2.AnalyzeImageResponse()


async def main() -> None:
    configure_logging("WARNING", "text")
    server = GrpcServer(
        ServerSettings(host="127.0.0.1", port=0, grace_period_s=10.0),
        service_names=[VISION_SERVICE],
    )
    vision_pb2_grpc.add_VisionServiceServicer_to_server(  # type: ignore[no-untyped-call]
        SlowVision(), server.server
    )
    port = await server.start()
    await server.set_ready(True)
    print(f"listening {port}", flush=True)
    await server.run_until_signal()


if __name__ == "__main__":
    asyncio.run(main())
