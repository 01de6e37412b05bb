"""Jobs end to end on one gateway (SQLite store): submit, watch, get, list, cancel, expire."""

from __future__ import annotations

import asyncio
import io
from contextlib import AsyncExitStack
from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.longrunning import operations_proto_pb2 as operations_pb2
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from PIL import Image

from imagegen.gateway.v1 import gateway_pb2
from standins.comfyui.settings import FakeComfyUISettings
from tests.gateway.operations.clients import (
    connect,
    metadata_of,
    response_of,
    results_of,
    txt2img,
    until,
)
from tests.gateway.system import System, start_system


def _kinds(events: list[gateway_pb2.GenerateResponse]) -> list[str]:
    """Event kinds, sorted: the comparable shape of a stream (variants interleave freely)."""
    return sorted(str(e.WhichOneof("event")) for e in events)


def _pixels(png: bytes) -> bytes:
    with Image.open(io.BytesIO(png)) as image:
        return image.tobytes()


async def test_submit_returns_a_queued_operation_at_once(system: System) -> None:
    client = await connect(AsyncExitStack(), system.gateway.address)
    operation = await client.submit(txt2img())
    assert operation.name.startswith("operations/")
    assert not operation.done
    metadata = metadata_of(operation)
    assert metadata.state == gateway_pb2.JOB_STATE_QUEUED
    assert metadata.seed == 7
    assert metadata.create_time.seconds > 0


async def test_watch_after_a_disconnect_resumes_and_matches_generate(
    system: System, exit_stack: AsyncExitStack
) -> None:
    client = await connect(exit_stack, system.gateway.address)
    request = txt2img(seed=None, variants=2)
    operation = await client.submit(request)
    seed = metadata_of(operation).seed

    # Watch the first three events, then drop the stream.
    call = client.gateway.WatchOperation(
        gateway_pb2.WatchOperationRequest(name=operation.name), timeout=30
    )
    first: list[gateway_pb2.GenerateResponse] = []
    async for event in call:
        first.append(event)
        if len(first) == 3:
            break
    call.cancel()

    rest = await client.watch(operation.name, after_event=3)
    replay = await client.watch(operation.name)
    assert [e.SerializeToString() for e in first + rest] == [e.SerializeToString() for e in replay]
    assert replay[-1].HasField("completed")

    same = gateway_pb2.GenerateRequest()
    same.CopyFrom(request)
    same.seed = seed
    direct = [event async for event in system.stub.Generate(same, timeout=30)]
    assert _kinds(direct) == _kinds(replay)
    job_results, generate_results = results_of(replay), results_of(direct)
    assert [r.seed for r in job_results] == [seed, seed + 1]
    for job_result, generate_result in zip(job_results, generate_results, strict=True):
        # The PNGs' provenance names each call's own request id; the pixels are the same.
        assert _pixels(job_result.image.data) == _pixels(generate_result.image.data)
        assert job_result.settings == generate_result.settings
        assert job_result.positive_prompt == generate_result.positive_prompt

    done = await client.wait_done(operation.name)
    response = response_of(done)
    assert [r.image.data for r in response.results] == [r.image.data for r in job_results]
    assert response.completed.seed == seed
    assert metadata_of(done).state == gateway_pb2.JOB_STATE_SUCCEEDED
    assert metadata_of(done).events == len(replay)


async def test_same_request_id_returns_the_first_operation_and_renders_once(
    system: System, exit_stack: AsyncExitStack
) -> None:
    client = await connect(exit_stack, system.gateway.address)
    first = await client.submit(txt2img(variants=1), request_id="order-42")
    again = await client.submit(txt2img(variants=1), request_id="order-42")
    assert again.name == first.name
    await client.wait_done(first.name)
    after_done = await client.submit(txt2img(variants=1), request_id="order-42")
    assert after_done.name == first.name
    assert after_done.done
    assert system.comfyui.fake.counters.prompts_submitted == 1
    other = await client.submit(txt2img(variants=1), request_id="order-43")
    assert other.name != first.name


async def test_cancel_stops_the_job_and_withdraws_every_comfyui_prompt(
    exit_stack: AsyncExitStack, jobs_dir: Path
) -> None:
    system = await start_system(
        exit_stack, comfyui=FakeComfyUISettings(step_delay_s=0.05), jobs_dir=jobs_dir
    )
    client = await connect(exit_stack, system.gateway.address)
    operation = await client.submit(txt2img(variants=3))
    fake = system.comfyui.fake
    await until(
        lambda: asyncio.sleep(0, fake.counters.prompts_submitted),
        lambda n: n == 3,
        timeout_s=20,
    )
    await client.cancel(operation.name)
    done = await client.wait_done(operation.name)
    assert done.error.code == grpc.StatusCode.CANCELLED.value[0]
    assert metadata_of(done).state == gateway_pb2.JOB_STATE_CANCELLED
    await fake.wait_until_idle(timeout_s=10)
    assert fake.queued_ids == [] and fake.running_ids == []
    assert len(fake.deleted_ids) + len(fake.interrupt_requests) >= 2
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.cancel(operation.name)
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION


async def test_a_failed_job_reports_the_status_generate_would_end_with(
    system: System, exit_stack: AsyncExitStack
) -> None:
    client = await connect(exit_stack, system.gateway.address)
    operation = await client.submit(txt2img(variants=1, workflow="no-such-workflow"))
    done = await client.wait_done(operation.name)
    assert done.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert "unknown workflow 'no-such-workflow'" in done.error.message
    detail = error_details_pb2.PreconditionFailure()
    assert any(d.Unpack(detail) for d in done.error.details), "the details are kept"
    assert detail.violations[0].subject == "no-such-workflow"
    assert metadata_of(done).state == gateway_pb2.JOB_STATE_FAILED


async def test_an_invalid_request_is_refused_at_submit_naming_the_field(
    system: System, exit_stack: AsyncExitStack
) -> None:
    client = await connect(exit_stack, system.gateway.address)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.submit(gateway_pb2.GenerateRequest(instruction=""))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "instruction" in refused.value.details()


async def test_list_filters_by_state_and_pages(system: System, exit_stack: AsyncExitStack) -> None:
    client = await connect(exit_stack, system.gateway.address)
    names = [(await client.submit(txt2img(variants=1, seed=i))).name for i in range(3)]
    for name in names:
        await client.wait_done(name)
    pages, token = [], ""
    while True:
        page = await client.operations.ListOperations(
            operations_pb2.ListOperationsRequest(
                name="operations", filter="state = SUCCEEDED", page_size=2, page_token=token
            ),
            timeout=10,
        )
        pages.append([op.name for op in page.operations])
        token = page.next_page_token
        if not token:
            break
    assert pages == [names[::-1][:2], names[::-1][2:]]
    running = await client.operations.ListOperations(
        operations_pb2.ListOperationsRequest(filter="done = false"), timeout=10
    )
    assert list(running.operations) == []
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.operations.ListOperations(
            operations_pb2.ListOperationsRequest(filter="name = x"), timeout=10
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_wait_returns_the_finished_operation(
    system: System, exit_stack: AsyncExitStack
) -> None:
    client = await connect(exit_stack, system.gateway.address)
    operation = await client.submit(txt2img(variants=1))
    done = await client.operations.WaitOperation(
        operations_pb2.WaitOperationRequest(
            name=operation.name, timeout=duration_pb2.Duration(seconds=20)
        ),
        timeout=25,
    )
    assert done.done
    assert len(response_of(done).results) == 1


async def test_delete_forgets_a_finished_job_and_refuses_a_running_one(
    exit_stack: AsyncExitStack, jobs_dir: Path
) -> None:
    system = await start_system(
        exit_stack, comfyui=FakeComfyUISettings(step_delay_s=0.02), jobs_dir=jobs_dir
    )
    client = await connect(exit_stack, system.gateway.address)
    operation = await client.submit(txt2img(variants=1))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.operations.DeleteOperation(
            operations_pb2.DeleteOperationRequest(name=operation.name), timeout=10
        )
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    await client.wait_done(operation.name)
    await client.operations.DeleteOperation(
        operations_pb2.DeleteOperationRequest(name=operation.name), timeout=10
    )
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await client.get(operation.name)
    assert gone.value.code() is grpc.StatusCode.NOT_FOUND
    assert not (jobs_dir / "images" / operation.name.split("/")[1]).exists()


async def test_a_finished_job_expires_after_the_retention_time(
    exit_stack: AsyncExitStack, jobs_dir: Path
) -> None:
    system = await start_system(
        exit_stack, jobs_dir=jobs_dir, jobs_retention_s=0.5, jobs_purge_interval_s=0.1
    )
    client = await connect(exit_stack, system.gateway.address)
    operation = await client.submit(txt2img(variants=1), request_id="expiring")
    await client.wait_done(operation.name)
    error = await until(
        lambda: _get_error(client, operation.name), lambda e: e is not None, timeout_s=10
    )
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert "retention" in error.details()
    again = await client.submit(txt2img(variants=1), request_id="expiring")
    assert again.name != operation.name, "an expired request id starts a new job"


async def _get_error(client: object, name: str) -> grpc.aio.AioRpcError | None:
    try:
        await client.get(name)  # type: ignore[attr-defined]
    except grpc.aio.AioRpcError as e:
        return e
    return None


async def test_unknown_and_malformed_names_are_refused_clearly(
    system: System, exit_stack: AsyncExitStack
) -> None:
    client = await connect(exit_stack, system.gateway.address)
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await client.get("operations/" + "0" * 32)
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await client.get("jobs/1")
    assert malformed.value.code() is grpc.StatusCode.INVALID_ARGUMENT
