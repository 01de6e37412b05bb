"""The gateway checks callers' tokens when a token file is configured."""

from __future__ import annotations

from pathlib import Path

import grpc
import grpc.aio
import pytest

from gateway.auth import hash_token
from imagegen.gateway.v1 import gateway_pb2
from tests.gateway.conftest import StartGateway
from tests.gateway.system import System

TOKEN = "a-caller-token-for-tests"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"{hash_token(TOKEN)} tester plan\n")
    return path


async def test_call_without_a_token_is_unauthenticated(
    system: System, start_gateway: StartGateway, token_file: Path
) -> None:
    gateway = await start_gateway(auth_tokens_file=token_file)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gateway.stub.Plan(gateway_pb2.PlanRequest(instruction="a fox"), timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_call_with_a_listed_token_is_served(
    system: System, start_gateway: StartGateway, token_file: Path
) -> None:
    gateway = await start_gateway(auth_tokens_file=token_file)
    response = await gateway.stub.Plan(
        gateway_pb2.PlanRequest(instruction="a fox"),
        timeout=10,
        metadata=(("authorization", f"Bearer {TOKEN}"),),
    )
    assert response.plan.positive_prompt
