"""The container health checks, run through ``sh`` exactly as written, against real servers.

Each service's command from docker-compose.yml (after Compose turns ``$$`` into ``$``)
and from the Dockerfile's HEALTHCHECK is run against a server on 127.0.0.1:0 that
registers the same gRPC service: it must pass when the service is SERVING, fail while it
is not, and switch to mutual TLS by itself when the service's TLS variables are set.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme

from services.common.server import GrpcServer
from services.common.settings import ServerSettings
from tests.deploy.manifests import (
    GRPC_SERVICE_NAMES,
    GRPC_SERVICES,
    ROOT,
    default_port,
    dockerfile_stages,
    env_names,
    healthcheck_command,
    load_compose,
)

NAMES = sorted(GRPC_SERVICES)
SOURCES = ["compose", "dockerfile"]


def health_command(source: str, name: str, port: int) -> tuple[str, dict[str, str]]:
    """The shell command of ``name``'s health check in ``source``, aimed at ``port``.

    Returns:
        The command and the environment variables that aim it (the Dockerfile's
        command reads the port from ``<NAME>_PORT``; Compose's names it literally).
    """
    default = default_port(GRPC_SERVICES[name])
    if source == "compose":
        command = load_compose()["services"][name]["healthcheck"]["test"][1]
        return command.replace(f"127.0.0.1:{default}", f"127.0.0.1:{port}"), {}
    command = healthcheck_command(dockerfile_stages()[name].last("HEALTHCHECK") or "")
    return command, {f"{name.upper()}_PORT": str(port)}


async def run_shell(command: str, env: dict[str, str]) -> int:
    """Runs ``command`` with ``sh -c`` and this interpreter's ``python`` first on PATH."""
    base = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'protos'}",
    }
    process = await asyncio.create_subprocess_exec(
        "sh",
        "-c",
        command,
        env={**base, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await process.wait()


@asynccontextmanager
async def serving(name: str, *, ready: bool = True, **tls: Path | bool) -> AsyncIterator[int]:
    """A server registering ``name``'s gRPC service on 127.0.0.1:0; yields its port."""
    server = GrpcServer(
        ServerSettings(host="127.0.0.1", port=0, grace_period_s=0.0, **tls),  # type: ignore[arg-type]
        service_names=[GRPC_SERVICE_NAMES[name]],
    )
    port = await server.start()
    await server.set_ready(ready)
    try:
        yield port
    finally:
        await server.stop(0)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", NAMES)
async def test_the_health_check_passes_while_the_service_is_serving(source: str, name: str) -> None:
    async with serving(name) as port:
        command, env = health_command(source, name, port)
        assert await run_shell(command, env) == 0


@pytest.mark.parametrize("source", SOURCES)
async def test_the_health_check_fails_while_the_service_is_not_serving(source: str) -> None:
    async with serving("render", ready=False) as port:
        command, env = health_command(source, "render", port)
        assert await run_shell(command, env) == 1


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", NAMES)
async def test_the_health_check_speaks_mutual_tls_when_the_service_has_a_certificate(
    source: str, name: str, tmp_path: Path
) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert(name, "localhost")
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    leaf.private_key_pem.write_to_path(str(key_file))
    prefix = name.upper()
    tls_env = {
        f"{prefix}_TLS_CERT_FILE": str(cert_file),
        f"{prefix}_TLS_KEY_FILE": str(key_file),
        f"{prefix}_TLS_CA_FILE": str(ca_file),
        f"{prefix}_TLS_REQUIRE_CLIENT_CERT": "true",
    }
    async with serving(
        name,
        tls_cert_file=cert_file,
        tls_key_file=key_file,
        tls_ca_file=ca_file,
        tls_require_client_cert=True,
    ) as port:
        command, env = health_command(source, name, port)
        assert await run_shell(command, {**env, **tls_env}) == 0


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", NAMES)
def test_the_health_check_reads_only_the_services_own_settings(source: str, name: str) -> None:
    command, _ = health_command(source, name, 0)
    variables = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", command))
    assert variables, "the check does not follow the service's TLS settings"
    assert variables <= env_names(GRPC_SERVICES[name])


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", NAMES)
async def test_the_health_check_speaks_tls_when_the_service_has_a_certificate_but_no_ca(
    source: str, name: str, tmp_path: Path
) -> None:
    leaf = trustme.CA().issue_cert(name, "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    leaf.private_key_pem.write_to_path(str(key_file))
    prefix = name.upper()
    tls_env = {f"{prefix}_TLS_CERT_FILE": str(cert_file), f"{prefix}_TLS_KEY_FILE": str(key_file)}
    async with serving(name, tls_cert_file=cert_file, tls_key_file=key_file) as port:
        command, env = health_command(source, name, port)
        assert await run_shell(command, {**env, **tls_env}) == 0
        assert await run_shell(command, env) == 1  # plaintext to a TLS server fails
