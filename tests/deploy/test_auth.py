"""Caller authentication, rights and limits, on a real aio server with the interceptor."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gateway.auth import (
    CallerAuthInterceptor,
    TokenFile,
    TokenFileError,
    auth_interceptors,
    current_caller,
    hash_token,
)
from gateway.limits import CallerLimiter, CallerLimits, admit
from imagegen.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.common.errors import status_details
from services.common.server import GrpcServer
from services.common.settings import ServerSettings
from tests.common.conftest import json_log_lines

GATEWAY_SERVICE = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name

STUDIO = "studio-token-0123456789"
REVIEWER = "reviewer-token-0123456789"
ADMIN = "admin-token-0123456789"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class StubGateway(gateway_pb2_grpc.GatewayServiceServicer):
    """Plan answers at once; Generate waits for ``release`` before its only event.

    Both charge the caller's limits first, as the gateway's pipeline does once a request
    is valid.
    """

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.running = 0
        self.started = asyncio.Event()
        self.ended = asyncio.Event()
        self.callers: list[str | None] = []

    async def Plan(
        self, request: gateway_pb2.PlanRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> gateway_pb2.PlanResponse:
        admit(1)
        caller = current_caller.get()
        self.callers.append(caller.name if caller else None)
        return gateway_pb2.PlanResponse(reused=True)

    async def Generate(
        self, request: gateway_pb2.GenerateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[gateway_pb2.GenerateResponse]:
        admit(request.variants or 1)
        self.running += 1
        self.started.set()
        try:
            await self.release.wait()
            yield gateway_pb2.GenerateResponse(
                completed=gateway_pb2.Completed(variants=max(1, request.variants))
            )
        finally:
            self.running -= 1
            self.ended.set()


def token_line(token: str, caller: str, rights: str, limits: str = "") -> str:
    return f"{hash_token(token)}  {caller}  {rights}  {limits}\n"


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(
        "# digest  caller  rights  limits\n"
        + token_line(STUDIO, "studio", "generate,plan")
        + token_line(REVIEWER, "reviewer", "plan")
        + token_line(ADMIN, "admin", "*", "max_concurrent=1 variants_per_minute=4")
    )
    return path


@dataclass
class Served:
    stub: gateway_pb2_grpc.GatewayServiceStub
    health: health_pb2_grpc.HealthStub
    channel: grpc.aio.Channel
    servicer: StubGateway


@asynccontextmanager
async def serve(interceptor: CallerAuthInterceptor) -> AsyncIterator[Served]:
    """The stub gateway on 127.0.0.1:0 behind ``interceptor``, and a plaintext channel."""
    server = GrpcServer(
        ServerSettings(host="127.0.0.1", port=0, grace_period_s=0.0),
        service_names=[GATEWAY_SERVICE],
        interceptors=[interceptor],
    )
    servicer = StubGateway()
    gateway_pb2_grpc.add_GatewayServiceServicer_to_server(servicer, server.server)  # type: ignore[no-untyped-call]
    port = await server.start()
    await server.set_ready(True)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Served(
            gateway_pb2_grpc.GatewayServiceStub(channel),  # type: ignore[no-untyped-call]
            health_pb2_grpc.HealthStub(channel),
            channel,
            servicer,
        )
    finally:
        servicer.release.set()
        await channel.close()
        await server.stop(0)


def interceptor_for(
    path: Path,
    clock: Clock | None = None,
    *,
    defaults: CallerLimits | None = None,
    **options: Any,
) -> CallerAuthInterceptor:
    clock = clock or Clock()
    return CallerAuthInterceptor(
        TokenFile(path, reload_interval_s=0.0, clock=clock),
        limiter=CallerLimiter(defaults or CallerLimits(), clock=clock),
        **options,
    )


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def reason_of(error: grpc.aio.AioRpcError) -> str:
    infos = [d for d in status_details(error) if isinstance(d, error_details_pb2.ErrorInfo)]
    return infos[0].reason if infos else ""


def retry_delay_s(error: grpc.aio.AioRpcError) -> float | None:
    for detail in status_details(error):
        if isinstance(detail, error_details_pb2.RetryInfo):
            return float(detail.retry_delay.ToNanoseconds()) / 1e9
    return None


async def test_a_valid_token_is_accepted_and_the_servicer_sees_the_caller(
    tokens_file: Path,
) -> None:
    async with serve(interceptor_for(tokens_file)) as served:
        response = await served.stub.Plan(gateway_pb2.PlanRequest(), metadata=bearer(STUDIO))
    assert response.reused
    assert served.servicer.callers == ["studio"]


async def test_a_call_without_a_token_is_unauthenticated(tokens_file: Path) -> None:
    async with serve(interceptor_for(tokens_file)) as served:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.Plan(gateway_pb2.PlanRequest())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason_of(caught.value) == "TOKEN_MISSING"
    assert served.servicer.callers == []


async def test_authorization_that_is_not_a_bearer_token_is_unauthenticated(
    tokens_file: Path,
) -> None:
    async with serve(interceptor_for(tokens_file)) as served:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.Plan(
                gateway_pb2.PlanRequest(), metadata=(("authorization", f"Basic {STUDIO}"),)
            )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_wrong_token_is_unauthenticated(tokens_file: Path) -> None:
    async with serve(interceptor_for(tokens_file)) as served:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.Plan(gateway_pb2.PlanRequest(), metadata=bearer(STUDIO + "x"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason_of(caught.value) == "TOKEN_INVALID"


async def test_a_token_lacking_the_right_is_permission_denied(tokens_file: Path) -> None:
    async with serve(interceptor_for(tokens_file)) as served:
        call = served.stub.Generate(gateway_pb2.GenerateRequest(), metadata=bearer(REVIEWER))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(caught.value) == "RIGHT_MISSING"
    assert served.servicer.running == 0


async def test_the_star_right_allows_every_method(tokens_file: Path) -> None:
    async with serve(interceptor_for(tokens_file)) as served:
        served.servicer.release.set()
        await served.stub.Plan(gateway_pb2.PlanRequest(), metadata=bearer(ADMIN))
        events = [
            e
            async for e in served.stub.Generate(
                gateway_pb2.GenerateRequest(), metadata=bearer(ADMIN)
            )
        ]
    assert [e.WhichOneof("event") for e in events] == ["completed"]


async def test_health_is_open_without_a_token_when_configured(tokens_file: Path) -> None:
    async with serve(interceptor_for(tokens_file, open_health=True)) as served:
        response = await served.health.Check(health_pb2.HealthCheckRequest())
    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_needs_a_token_but_no_right_when_not_open(tokens_file: Path) -> None:
    async with serve(interceptor_for(tokens_file, open_health=False)) as served:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.health.Check(health_pb2.HealthCheckRequest())
        with_token = await served.health.Check(
            health_pb2.HealthCheckRequest(), metadata=bearer(REVIEWER)
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert with_token.status == health_pb2.HealthCheckResponse.SERVING


async def list_services(channel: grpc.aio.Channel, metadata: Any = None) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for response in stub.ServerReflectionInfo(iter([request]), metadata=metadata):
        return [s.name for s in response.list_services_response.service]
    return []


async def test_reflection_needs_a_token_unless_open(tokens_file: Path) -> None:
    async with serve(interceptor_for(tokens_file, open_reflection=False)) as served:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await list_services(served.channel)
        names = await list_services(served.channel, bearer(REVIEWER))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert GATEWAY_SERVICE in names


async def test_reflection_is_open_without_a_token_when_configured(tokens_file: Path) -> None:
    async with serve(interceptor_for(tokens_file, open_reflection=True)) as served:
        names = await list_services(served.channel)
    assert GATEWAY_SERVICE in names


async def test_concurrent_generations_over_the_limit_are_refused_until_one_ends(
    tokens_file: Path,
) -> None:
    async with serve(interceptor_for(tokens_file)) as served:
        first = served.stub.Generate(gateway_pb2.GenerateRequest(), metadata=bearer(ADMIN))
        await served.servicer.started.wait()
        second = served.stub.Generate(gateway_pb2.GenerateRequest(), metadata=bearer(ADMIN))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await second.read()
        served.servicer.release.set()
        assert [e.WhichOneof("event") async for e in first] == ["completed"]
        third = [
            e
            async for e in served.stub.Generate(
                gateway_pb2.GenerateRequest(), metadata=bearer(ADMIN)
            )
        ]
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason_of(caught.value) == "CALLER_CONCURRENCY_LIMIT"
    assert retry_delay_s(caught.value) is not None
    assert len(third) == 1


async def test_a_cancelled_generation_gives_its_slot_back(tokens_file: Path) -> None:
    async with serve(interceptor_for(tokens_file)) as served:
        first = served.stub.Generate(gateway_pb2.GenerateRequest(), metadata=bearer(ADMIN))
        await served.servicer.started.wait()
        first.cancel()
        await served.servicer.ended.wait()
        served.servicer.release.set()
        events = [
            e
            async for e in served.stub.Generate(
                gateway_pb2.GenerateRequest(), metadata=bearer(ADMIN)
            )
        ]
    assert len(events) == 1


async def test_variants_per_minute_are_refused_with_retry_info_and_recover(
    tokens_file: Path,
) -> None:
    clock = Clock()
    async with serve(interceptor_for(tokens_file, clock)) as served:
        served.servicer.release.set()

        async def generate(variants: int) -> list[gateway_pb2.GenerateResponse]:
            request = gateway_pb2.GenerateRequest(variants=variants)
            return [e async for e in served.stub.Generate(request, metadata=bearer(ADMIN))]

        await generate(3)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await generate(2)
        delay = retry_delay_s(caught.value)
        assert delay is not None
        clock.advance(delay)
        recovered = await generate(2)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason_of(caught.value) == "CALLER_VARIANT_RATE_LIMIT"
    assert delay == pytest.approx(15.0)  # one variant short, 4 per minute refill one per 15 s
    assert recovered[0].completed.variants == 2


async def test_default_limits_apply_to_callers_without_their_own(tokens_file: Path) -> None:
    interceptor = interceptor_for(tokens_file, defaults=CallerLimits(variants_per_minute=1))
    async with serve(interceptor) as served:
        served.servicer.release.set()
        request = gateway_pb2.GenerateRequest(variants=1)
        [e async for e in served.stub.Generate(request, metadata=bearer(STUDIO))]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            [e async for e in served.stub.Generate(request, metadata=bearer(STUDIO))]
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_rotated_token_file_takes_effect_without_restart(
    tokens_file: Path,
) -> None:
    new_token = "studio-token-rotated-9876543210"
    async with serve(interceptor_for(tokens_file)) as served:
        await served.stub.Plan(gateway_pb2.PlanRequest(), metadata=bearer(STUDIO))
        await asyncio.to_thread(
            tokens_file.write_text, token_line(new_token, "studio", "generate,plan")
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.Plan(gateway_pb2.PlanRequest(), metadata=bearer(STUDIO))
        await served.stub.Plan(gateway_pb2.PlanRequest(), metadata=bearer(new_token))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert served.servicer.callers == ["studio", "studio"]


def test_the_token_file_is_reread_only_after_the_reload_interval(tokens_file: Path) -> None:
    clock = Clock()
    tokens = TokenFile(tokens_file, reload_interval_s=5.0, clock=clock)
    tokens_file.write_text(token_line("fresh-token-0123456789", "fresh", "plan"))
    before = tokens.authenticate("fresh-token-0123456789")
    clock.advance(5.0)
    after = tokens.authenticate("fresh-token-0123456789")
    assert before is None
    assert after is not None and after.name == "fresh"


def test_a_malformed_rewrite_keeps_the_previous_tokens(tokens_file: Path) -> None:
    tokens = TokenFile(tokens_file, reload_interval_s=0.0, clock=Clock())
    tokens_file.write_text("not a token line\n")
    caller = tokens.authenticate(STUDIO)
    assert caller is not None and caller.name == "studio"


@dataclass
class AuthConfig:
    auth_tokens_file: Path | None
    auth_reload_interval_s: float = 2.0
    auth_open_health: bool = True
    auth_open_reflection: bool = False
    limit_concurrent_generations: int = 2
    limit_variants_per_minute: int = 32


def test_no_token_file_means_no_interceptor() -> None:
    assert auth_interceptors(AuthConfig(auth_tokens_file=None)) == []


def test_a_missing_token_file_stops_the_gateway_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    with pytest.raises(TokenFileError, match=r"auth_tokens_file: .*absent"):
        auth_interceptors(AuthConfig(auth_tokens_file=missing))


def test_a_token_file_is_read_into_an_interceptor_with_the_settings(tokens_file: Path) -> None:
    [interceptor] = auth_interceptors(
        AuthConfig(auth_tokens_file=tokens_file, limit_concurrent_generations=3)
    )
    assert isinstance(interceptor, CallerAuthInterceptor)
    assert interceptor.limiter is not None
    assert interceptor.limiter.defaults == CallerLimits(3, 32)
    assert {c.name for c in interceptor.tokens.callers} == {"studio", "reviewer", "admin"}


@pytest.mark.parametrize("content", ["", "\n\n", "# every token line was removed\n"])
def test_a_token_file_without_tokens_stops_the_gateway_at_boot(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "tokens"
    path.write_text(content)
    with pytest.raises(TokenFileError, match=r"auth_tokens_file: .*lists no token"):
        auth_interceptors(AuthConfig(auth_tokens_file=path))


@pytest.mark.parametrize("content", ["", "# half-written\n"])
def test_an_emptied_token_file_keeps_the_previous_tokens_and_logs_an_error(
    tokens_file: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = TokenFile(tokens_file, reload_interval_s=0.0, clock=Clock())
    tokens_file.write_text(content)
    with caplog.at_level(logging.ERROR, logger="gateway.auth"):
        caller = tokens.authenticate(STUDIO)
    assert caller is not None and caller.name == "studio"
    assert any(
        r.levelno == logging.ERROR and "lists no token" in r.getMessage() for r in caplog.records
    )


async def refuse_in_every_way(tokens_file: Path) -> None:
    """One served call, then each kind of refusal, then one more served call."""
    async with serve(interceptor_for(tokens_file)) as served:
        await served.stub.Plan(gateway_pb2.PlanRequest(), metadata=bearer(STUDIO))
        for metadata in ((), bearer("not-a-known-token"), bearer(REVIEWER)):
            with pytest.raises(grpc.aio.AioRpcError):
                await served.stub.Generate(gateway_pb2.GenerateRequest(), metadata=metadata).read()
        first = served.stub.Generate(gateway_pb2.GenerateRequest(), metadata=bearer(ADMIN))
        await served.servicer.started.wait()
        with pytest.raises(grpc.aio.AioRpcError):
            await served.stub.Generate(gateway_pb2.GenerateRequest(), metadata=bearer(ADMIN)).read()
        served.servicer.release.set()
        _ = [event async for event in first]


async def test_refusals_are_logged_with_their_reason_and_the_caller(tokens_file: Path) -> None:
    with json_log_lines("gateway") as log_lines:
        await refuse_in_every_way(tokens_file)
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    logged = [
        (line.get("caller"), line["code"], line.get("reason"))
        for line in lines
        if line["logger"] == "imagegen.access"
    ]
    assert logged == [
        ("studio", "OK", None),
        (None, "UNAUTHENTICATED", "TOKEN_MISSING"),
        (None, "UNAUTHENTICATED", "TOKEN_INVALID"),
        ("reviewer", "PERMISSION_DENIED", "RIGHT_MISSING"),
        ("admin", "RESOURCE_EXHAUSTED", "CALLER_CONCURRENCY_LIMIT"),
        ("admin", "OK", None),
    ]


async def test_a_unary_method_is_limited_through_the_calls_admission(tokens_file: Path) -> None:
    async with serve(interceptor_for(tokens_file)) as served:
        for _ in range(4):  # admin may start 4 variants per minute
            await served.stub.Plan(gateway_pb2.PlanRequest(), metadata=bearer(ADMIN))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.Plan(gateway_pb2.PlanRequest(), metadata=bearer(ADMIN))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason_of(caught.value) == "CALLER_VARIANT_RATE_LIMIT"
    assert retry_delay_s(caught.value) is not None
