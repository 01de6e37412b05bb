"""TLS and mutual TLS between imagegen servers and clients, with trustme certificates.

The servers are the shared bootstrap (:class:`GrpcServer`) configured through settings,
the clients the shared :func:`create_channel`, exactly as the gateway talks to vision,
planner and render. A probe is a ``grpc.health.v1`` check, which every server answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import healthcheck
from services.common.channels import ClientTLS, create_channel
from services.common.server import GrpcServer
from services.common.settings import ServerSettings

# The name the internal services answer to on the compose network.
SERVICE_HOST = "render"


@dataclass(frozen=True)
class Pki:
    """Files of one certificate authority and the certificates it issued."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def issue(tmp_path: Path, name: str) -> Pki:
    """A fresh CA with a server certificate for SERVICE_HOST and a client certificate."""
    folder = tmp_path / name
    folder.mkdir()
    ca = trustme.CA(organization_name=f"imagegen test {name}")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    server = ca.issue_cert(SERVICE_HOST, "localhost")
    client = ca.issue_cert("gateway")
    for leaf, stem in ((server, "server"), (client, "client")):
        with (folder / f"{stem}.pem").open("wb") as chain:
            for blob in leaf.cert_chain_pems:
                chain.write(blob.bytes())
        leaf.private_key_pem.write_to_path(str(folder / f"{stem}.key"))
    return Pki(
        ca=folder / "ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        client_cert=folder / "client.pem",
        client_key=folder / "client.key",
    )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return issue(tmp_path, "internal")


@pytest.fixture
def other_pki(tmp_path: Path) -> Pki:
    return issue(tmp_path, "other")


@asynccontextmanager
async def tls_server(pki: Pki, *, mutual: bool) -> AsyncIterator[int]:
    """A ready server on 127.0.0.1:0 serving TLS (mutual when asked); yields its port."""
    settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        grace_period_s=0.0,
        tls_cert_file=pki.server_cert,
        tls_key_file=pki.server_key,
        tls_ca_file=pki.ca if mutual else None,
        tls_require_client_cert=mutual,
    )
    server = GrpcServer(settings, service_names=[])
    port = await server.start()
    await server.set_ready(True)
    try:
        yield port
    finally:
        await server.stop(0)


async def probe(port: int, tls: ClientTLS | None) -> Any:
    """Health-checks the server through a shared-library channel; the status or the code."""
    channel = create_channel(f"127.0.0.1:{port}", max_message_bytes=1 << 20, tls=tls)
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5.0)
    except grpc.aio.AioRpcError as e:
        return e.code()
    finally:
        await channel.close()
    return response.status


SERVING = health_pb2.HealthCheckResponse.SERVING


async def test_a_client_trusting_the_ca_completes_the_tls_handshake(pki: Pki) -> None:
    async with tls_server(pki, mutual=False) as port:
        status = await probe(port, ClientTLS(pki.ca, server_name_override=SERVICE_HOST))
    assert status == SERVING


async def test_a_client_not_trusting_the_servers_ca_is_refused(pki: Pki, other_pki: Pki) -> None:
    async with tls_server(pki, mutual=False) as port:
        status = await probe(port, ClientTLS(other_pki.ca, server_name_override=SERVICE_HOST))
    assert status == grpc.StatusCode.UNAVAILABLE


async def test_a_certificate_for_another_name_is_refused(pki: Pki) -> None:
    async with tls_server(pki, mutual=False) as port:
        status = await probe(port, ClientTLS(pki.ca, server_name_override="vision"))
    assert status == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_accepts_a_client_certificate_from_the_ca(pki: Pki) -> None:
    tls = ClientTLS(
        pki.ca,
        cert_file=pki.client_cert,
        key_file=pki.client_key,
        server_name_override=SERVICE_HOST,
    )
    async with tls_server(pki, mutual=True) as port:
        status = await probe(port, tls)
    assert status == SERVING


async def test_mutual_tls_refuses_a_client_without_a_certificate(pki: Pki) -> None:
    async with tls_server(pki, mutual=True) as port:
        status = await probe(port, ClientTLS(pki.ca, server_name_override=SERVICE_HOST))
    assert status == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_refuses_a_client_certificate_from_another_ca(
    pki: Pki, other_pki: Pki
) -> None:
    tls = ClientTLS(
        pki.ca,
        cert_file=other_pki.client_cert,
        key_file=other_pki.client_key,
        server_name_override=SERVICE_HOST,
    )
    async with tls_server(pki, mutual=True) as port:
        status = await probe(port, tls)
    assert status == grpc.StatusCode.UNAVAILABLE


async def test_a_plaintext_client_to_a_tls_server_fails(pki: Pki) -> None:
    async with tls_server(pki, mutual=False) as port:
        status = await probe(port, None)
    assert status == grpc.StatusCode.UNAVAILABLE


async def test_the_container_health_check_passes_mutual_tls(pki: Pki) -> None:
    async with tls_server(pki, mutual=True) as port:
        # The check is synchronous; a thread keeps this loop free to serve it.
        exit_code = await asyncio.to_thread(
            healthcheck.main,
            [
                f"--addr=127.0.0.1:{port}",
                f"--tls-ca={pki.ca}",
                f"--tls-cert={pki.server_cert}",
                f"--tls-key={pki.server_key}",
                f"--tls-server-name={SERVICE_HOST}",
            ],
        )
    assert exit_code == 0


async def test_the_container_health_check_fails_without_tls_against_a_tls_server(
    pki: Pki,
) -> None:
    async with tls_server(pki, mutual=False) as port:
        exit_code = await asyncio.to_thread(
            healthcheck.main, [f"--addr=127.0.0.1:{port}", "--timeout=2"]
        )
    assert exit_code == 1
