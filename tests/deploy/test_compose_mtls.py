"""docker-compose.mtls.yml: mutual TLS between the gateway and the services it calls.

Vision, planner and render take no caller tokens, so on the project network mutual TLS
is what protects them: with the override each refuses clients without a certificate
from the CA, and the gateway presents one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trustme

from gateway.settings import GatewaySettings
from tests.deploy.manifests import (
    GRPC_SERVICES,
    MTLS_COMPOSE_FILE,
    env_names,
    environment,
    load_compose,
)
from tests.deploy.test_health_commands import health_command, run_shell, serving

MOUNT = "/run/imagegen/tls"
BASE: dict[str, dict[str, Any]] = load_compose()["services"]
MTLS: dict[str, dict[str, Any]] = load_compose(MTLS_COMPOSE_FILE)["services"]
INTERNAL = ("planner", "render", "vision")


def merged_environment(name: str, tls_dir: Path | None = None) -> dict[str, str]:
    """The service's environment with the override applied, its files under ``tls_dir``."""
    merged = environment(BASE[name]) | environment(MTLS[name])
    if tls_dir is None:
        return merged
    return {k: v.replace(MOUNT, str(tls_dir)) for k, v in merged.items()}


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    """What the README's openssl commands make: ca.pem and a certificate per service."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    for name in GRPC_SERVICES:
        leaf = ca.issue_cert(name, "localhost")
        leaf.cert_chain_pems[0].write_to_path(str(tmp_path / f"{name}.pem"))
        leaf.private_key_pem.write_to_path(str(tmp_path / f"{name}.key"))
    return tmp_path


def test_the_override_covers_exactly_the_grpc_services() -> None:
    assert set(MTLS) == set(GRPC_SERVICES)


@pytest.mark.parametrize("name", sorted(GRPC_SERVICES))
def test_every_override_variable_is_a_real_setting(name: str) -> None:
    unknown = set(environment(MTLS[name])) - env_names(GRPC_SERVICES[name])
    assert not unknown, f"{name}: {sorted(unknown)}"


@pytest.mark.parametrize("name", sorted(GRPC_SERVICES))
def test_the_tls_folder_is_mounted_read_only_where_the_settings_look(name: str) -> None:
    (volume,) = MTLS[name]["volumes"]
    assert volume == f"./secrets/tls:{MOUNT}:ro"
    files = [v for k, v in environment(MTLS[name]).items() if k.endswith("_FILE")]
    assert files and all(f.startswith(f"{MOUNT}/") for f in files)


@pytest.mark.parametrize("name", INTERNAL)
def test_the_services_behind_the_gateway_require_a_client_certificate(
    name: str, tls_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in merged_environment(name, tls_dir).items():
        monkeypatch.setenv(variable, value)
    settings = GRPC_SERVICES[name]()
    assert settings.tls_enabled
    assert settings.tls_require_client_cert
    assert settings.tls_ca_file == tls_dir / "ca.pem"


def test_the_gateway_presents_its_certificate_to_the_services(
    tls_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in merged_environment("gateway", tls_dir).items():
        monkeypatch.setenv(variable, value)
    settings = GatewaySettings()
    assert settings.tls_enabled
    assert settings.downstream_tls() is not None
    assert settings.downstream_tls_cert_file == tls_dir / "gateway.pem"


@pytest.mark.parametrize("name", sorted(GRPC_SERVICES))
async def test_the_health_check_passes_with_the_override(name: str, tls_dir: Path) -> None:
    env = merged_environment(name, tls_dir)
    prefix = name.upper()
    async with serving(
        name,
        tls_cert_file=Path(env[f"{prefix}_TLS_CERT_FILE"]),
        tls_key_file=Path(env[f"{prefix}_TLS_KEY_FILE"]),
        tls_ca_file=Path(env[f"{prefix}_TLS_CA_FILE"]),
        tls_require_client_cert=env.get(f"{prefix}_TLS_REQUIRE_CLIENT_CERT") == "true",
    ) as port:
        command, port_env = health_command("compose", name, port)
        assert await run_shell(command, {**port_env, **env}) == 0
