"""Caller scoping of jobs, signed webhooks, and the SQLite store across a gateway restart."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import grpc.aio
import pytest
from aiohttp import web
from google.longrunning import operations_proto_pb2 as operations_pb2
from standardwebhooks import Webhook

from gateway.auth import hash_token
from imagegen.gateway.v1 import gateway_pb2
from standins.comfyui.settings import FakeComfyUISettings
from tests.gateway.operations.clients import (
    connect,
    metadata_of,
    response_of,
    txt2img,
    until,
)
from tests.gateway.system import System, start_gateway_in, start_system, stop_host

ALICE, BOB = "alice-token-for-tests", "bob-token-for-tests"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"{hash_token(ALICE)} alice *\n{hash_token(BOB)} bob *\n")
    return path


async def test_a_caller_sees_and_cancels_only_its_own_jobs(
    system: System, exit_stack: AsyncExitStack, token_file: Path, jobs_dir: Path
) -> None:
    gateway = await start_gateway_in(
        exit_stack, system, auth_tokens_file=token_file, jobs_dir=jobs_dir
    )
    alice = await connect(exit_stack, gateway.address, ALICE)
    bob = await connect(exit_stack, gateway.address, BOB)
    operation = await alice.submit(txt2img(variants=1), request_id="shared-key")

    for call in (
        bob.get(operation.name),
        bob.cancel(operation.name),
        bob.watch(operation.name),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert "another caller" in refused.value.details()
    listed = await bob.operations.ListOperations(
        operations_pb2.ListOperationsRequest(), timeout=10, metadata=bob.metadata
    )
    assert list(listed.operations) == []
    bobs = await bob.submit(txt2img(variants=1), request_id="shared-key")
    assert bobs.name != operation.name, "request ids are per caller"
    assert (await alice.wait_done(operation.name)).done


async def test_submits_count_against_the_callers_variants_per_minute(
    system: System, exit_stack: AsyncExitStack, tmp_path: Path, jobs_dir: Path
) -> None:
    tokens = tmp_path / "limited-tokens"
    tokens.write_text(f"{hash_token(ALICE)} alice * variants_per_minute=3\n")
    gateway = await start_gateway_in(exit_stack, system, auth_tokens_file=tokens, jobs_dir=jobs_dir)
    alice = await connect(exit_stack, gateway.address, ALICE)
    await alice.submit(txt2img(variants=2))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await alice.submit(txt2img(variants=2))
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    listed = await alice.operations.ListOperations(
        operations_pb2.ListOperationsRequest(), timeout=10, metadata=alice.metadata
    )
    assert len(listed.operations) == 1, "a refused submit leaves no job"


@dataclass
class Receiver:
    """A webhook receiver that answers with the queued statuses, then 200."""

    url: str
    statuses: list[int]
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver(url="", statuses=[])

    async def hook(request: web.Request) -> web.Response:
        state.received.append((dict(request.headers), await request.read()))
        return web.Response(status=state.statuses.pop(0) if state.statuses else 200)

    app = web.Application()
    app.router.add_post("/hooks/{name}", hook)
    app.router.add_post("/elsewhere", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


def _secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


async def test_webhook_is_signed_retried_after_a_500_and_never_blocks_the_job(
    system: System, exit_stack: AsyncExitStack, receiver: Receiver, jobs_dir: Path
) -> None:
    secret = _secret()
    gateway = await start_gateway_in(
        exit_stack,
        system,
        jobs_dir=jobs_dir,
        webhook_secret=secret,
        webhook_allowed_urls=f"{receiver.url}/hooks/",
        webhook_backoff_s=0.05,
    )
    receiver.statuses = [500, 503]
    client = await connect(exit_stack, gateway.address)
    operation = await client.submit(
        txt2img(variants=1),
        request_id="with-hook",
        webhook=gateway_pb2.Webhook(url=f"{receiver.url}/hooks/done"),
    )
    await client.wait_done(operation.name)
    await until(lambda: asyncio.sleep(0, len(receiver.received)), lambda n: n >= 3)
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 3, "retried after the 500 and the 503, then stopped"
    ids = {headers["webhook-id"] for headers, _ in receiver.received}
    assert len(ids) == 1, "one webhook id across the retries"
    headers, body = receiver.received[-1]
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "job.completed"
    assert payload["data"]["name"] == operation.name
    assert payload["data"]["request_id"] == "with-hook"
    with pytest.raises(Exception, match="signature"):
        Webhook(_secret()).verify(body, headers)


async def test_webhook_outside_the_allow_list_is_refused_and_never_called(
    system: System, exit_stack: AsyncExitStack, receiver: Receiver, jobs_dir: Path
) -> None:
    gateway = await start_gateway_in(
        exit_stack,
        system,
        jobs_dir=jobs_dir,
        webhook_secret=_secret(),
        webhook_allowed_urls=f"{receiver.url}/hooks/",
    )
    client = await connect(exit_stack, gateway.address)
    for url in (
        f"{receiver.url}/elsewhere",
        "http://169.254.169.254/hooks/x",
        f"http://user@{receiver.url.removeprefix('http://')}/hooks/x",
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.submit(txt2img(variants=1), webhook=gateway_pb2.Webhook(url=url))
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "webhook" in refused.value.details() or "allowed" in str(refused.value)
    await asyncio.sleep(0.2)
    assert receiver.received == []
    assert system.comfyui.fake.counters.prompts_submitted == 0


async def test_webhook_without_a_configured_secret_is_a_failed_precondition(
    system: System, exit_stack: AsyncExitStack
) -> None:
    client = await connect(exit_stack, system.gateway.address)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.submit(
            txt2img(variants=1), webhook=gateway_pb2.Webhook(url="https://example.com/x")
        )
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION


async def test_failed_job_sends_job_failed(
    system: System, exit_stack: AsyncExitStack, receiver: Receiver, jobs_dir: Path
) -> None:
    secret = _secret()
    gateway = await start_gateway_in(
        exit_stack,
        system,
        jobs_dir=jobs_dir,
        webhook_secret=secret,
        webhook_allowed_urls=f"{receiver.url}/hooks/",
    )
    client = await connect(exit_stack, gateway.address)
    operation = await client.submit(
        txt2img(variants=1, workflow="no-such-workflow"),
        webhook=gateway_pb2.Webhook(url=f"{receiver.url}/hooks/x", events=["job.failed"]),
    )
    await client.wait_done(operation.name)
    await until(lambda: asyncio.sleep(0, len(receiver.received)), lambda n: n == 1)
    headers, body = receiver.received[0]
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "job.failed"
    assert payload["data"]["state"] == "JOB_STATE_FAILED"
    assert json.loads(body)["data"]["error"]


async def test_unfinished_jobs_of_the_sqlite_store_resume_after_a_gateway_restart(
    exit_stack: AsyncExitStack, jobs_dir: Path
) -> None:
    system = await start_system(
        exit_stack, comfyui=FakeComfyUISettings(step_delay_s=0.02), jobs_dir=jobs_dir
    )
    client = await connect(exit_stack, system.gateway.address)
    finished = await client.submit(txt2img(variants=1, seed=1))
    await client.wait_done(finished.name)
    unfinished = await client.submit(txt2img(variants=2, seed=2))
    await until(
        lambda: client.get(unfinished.name),
        lambda op: any(v.step > 0 for v in metadata_of(op).variants),
    )
    await stop_host(system.gateway.host)

    restarted = await start_gateway_in(exit_stack, system, jobs_dir=jobs_dir)
    again = await connect(exit_stack, restarted.address)
    done = await again.wait_done(unfinished.name, timeout_s=30)
    metadata = metadata_of(done)
    assert metadata.state == gateway_pb2.JOB_STATE_SUCCEEDED
    assert metadata.attempts == 2
    assert [r.seed for r in response_of(done).results] == [2, 3]
    kept = await again.get(finished.name)
    assert len(response_of(kept).results) == 1
    assert response_of(kept).results[0].image.data, "images are kept across the restart"
