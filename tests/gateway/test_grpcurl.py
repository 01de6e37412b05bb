"""The README's grpcurl recipes, run as printed against the whole system in-process.

The recipes are read from README.md, not copied here, so the README cannot show a command
that does not work. Two things differ from a reader's terminal, and only these: the
printed default addresses (``localhost:50051`` …) become the addresses of this test's
servers (port 0), and ``.venv/bin/`` becomes the directory of the running interpreter
(the same virtualenv ``make`` creates).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.docs.markdown import README, ROOT, ShellCommand, grpcurl_call, shell_commands
from tests.gateway.system import System

pytestmark = pytest.mark.e2e

RECIPES = [command for command in shell_commands(README.read_text()) if "grpcurl " in command.text]
SERVICE_AT_PORT = {"50051": "gateway", "50052": "vision", "50053": "planner", "50054": "render"}


def _recipe_id(recipe: ShellCommand) -> str:
    call = grpcurl_call(recipe.text)
    return f"{call.verb} {call.target}: {recipe.note}"[:90]


def _as_run_here(command: str, system: System) -> str:
    addresses = {**system.addresses, "gateway": system.gateway.address}

    def address(match: re.Match[str]) -> str:
        return addresses[SERVICE_AT_PORT[match.group(1)]]

    here = re.sub(r"localhost:(5005[1-4])\b", address, command)
    return here.replace(".venv/bin/", f"{Path(sys.executable).parent}/")


async def _run(command: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        "bash", "-o", "pipefail", "-c", command,
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(45):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def _wait_serving(system: System) -> None:
    # `python -m tools.stack --serve` announces the stack only once every service serves.
    async with grpc.aio.insecure_channel(system.gateway.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        async with asyncio.timeout(20):
            while True:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                await asyncio.sleep(0.1)


def _json_stream(text: str) -> list[dict[str, Any]]:
    decoder, objects, index = json.JSONDecoder(), [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        obj, index = decoder.raw_decode(text, index)
        objects.append(obj)
    return objects


def _check_generate(body: dict[str, Any], out: str) -> None:
    events = _json_stream(out)
    assert next(iter(events[0])) == "accepted", events[0]
    events = [e for e in events if next(iter(e)) not in ("accepted", "stage", "heartbeat")]
    kinds = [next(iter(event)) for event in events]
    img2img = "source_image" in body or "sourceImage" in body
    assert kinds[: 2 if img2img else 1] == (["analysis", "plan"] if img2img else ["plan"])
    assert kinds[-1] == "completed" and kinds.count("completed") == 1
    # The stand-in of `make run` has no Kontext model: a local edit says it fell back.
    unexpected = [
        e for e in events if "warning" in e and e["warning"]["code"] != "KONTEXT_UNAVAILABLE"
    ]
    assert unexpected == []
    completed = events[-1]["completed"]
    variants = int(body.get("variants") or 1)
    results = [event["result"] for event in events if "result" in event]
    assert len(results) == variants == int(completed["variants"])
    first = int(completed["seed"])
    if "seed" in body:
        assert first == int(body["seed"])
    assert sorted(int(r["seed"]) for r in results) == [first + i for i in range(variants)]
    for result in results:
        size = (result["image"]["width"], result["image"]["height"])
        if img2img:
            analysis = events[0]["analysis"]["analysis"]
            assert size == (analysis["width"], analysis["height"])
        elif "width" in body:
            assert size == (body["width"], body["height"])
        assert result["image"]["mime_type"] == "image/png" and result["image"]["data"]


def _check_plan(body: dict[str, Any], out: str) -> None:
    [reply] = _json_stream(out)
    assert reply["plan"]["positive_prompt"], reply
    assert ("analysis" in reply) == ("source_image" in body), reply
    if "description" in body:
        assert reply["analysis"]["source"] == "ANALYSIS_SOURCE_USER"
    assert "warnings" not in reply, reply["warnings"]


def _grpcurl_code(status: str) -> str:
    """grpcurl's spelling of a status code: INVALID_ARGUMENT → InvalidArgument."""
    return "".join(word.capitalize() for word in status.split("_"))


@pytest.mark.parametrize("recipe", RECIPES, ids=_recipe_id)
async def test_readme_grpcurl_recipe_works_as_printed(system: System, recipe: ShellCommand) -> None:
    await _wait_serving(system)
    call = grpcurl_call(recipe.text)
    code, out, err = await _run(_as_run_here(recipe.text, system))

    refused = re.match(r"refused: ([A-Z_]+)\b.*\((\w+)\)", recipe.note)
    if refused:
        status, field = refused.groups()
        assert code != 0, out
        assert f"Code: {_grpcurl_code(status)}" in err, err
        assert f'"field":"{field}"' in err.replace(" ", ""), err
        return
    assert code == 0, err
    if call.verb == "list":
        assert "imagegen.gateway.v1.GatewayService" in out.split()
    elif call.verb == "describe":
        assert f"{call.target} is a" in out
    elif call.target.endswith("Health/Check"):
        assert _json_stream(out) == [{"status": "SERVING"}]
    elif call.target.endswith("GatewayService/Generate"):
        assert call.body is not None
        _check_generate(call.body, out)
    elif call.target.endswith("GatewayService/Plan"):
        assert call.body is not None
        _check_plan(call.body, out)
    else:
        pytest.fail(f"no check for a recipe calling {call.target}: add one here")


def test_readme_keeps_the_recipes_callers_need_most() -> None:
    calls = [(grpcurl_call(recipe.text), recipe.note) for recipe in RECIPES]
    generates = [c for c, _ in calls if c.target.endswith("GatewayService/Generate")]
    # Image-to-image with several seeded variants, text-to-image, review the plan, a refusal.
    assert any(
        c.body
        and "source_image" in c.body
        and int(c.body.get("variants", 1)) > 1
        and "seed" in c.body
        for c in generates
    )
    assert any(c.body and "source_image" not in c.body and "width" in c.body for c in generates)
    assert any(c.target.endswith("GatewayService/Plan") for c, _ in calls)
    assert any(note.startswith("refused: INVALID_ARGUMENT") for _, note in calls)
    assert {c.verb for c, _ in calls} >= {"list", "describe", "call"}


async def test_grpcurl_describe_shows_the_contract_comments(system: System) -> None:
    grpcurl = f"{Path(sys.executable).parent}/grpcurl"
    address = system.gateway.address
    code, out, err = await _run(
        f"{grpcurl} -plaintext {address} describe imagegen.gateway.v1.GatewayService"
    )
    assert code == 0, err
    assert "// What the system can do right now" in out
    assert "rpc GetCapabilities ( .imagegen.gateway.v1.GetCapabilitiesRequest )" in out
    code, out, err = await _run(
        f"{grpcurl} -plaintext {address} describe imagegen.gateway.v1.Accepted"
    )
    assert code == 0, err
    assert "// First event of a generation: what the gateway accepted." in out
    # Imported files come with their comments too.
    code, out, err = await _run(
        f"{grpcurl} -plaintext {address} describe imagegen.common.v1.RenderQueued"
    )
    assert code == 0 and "//" in out, (out, err)
