"""A service whose TLS setting names a missing file refuses to start, naming the variable."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
import trustme
from pydantic import ValidationError

from tests.deploy.manifests import GRPC_SERVICES, ROOT

NAMES = sorted(GRPC_SERVICES)
ENTRY_POINTS = {
    "gateway": "gateway",
    "vision": "services.vision",
    "planner": "services.planner",
    "render": "services.render",
}


@pytest.fixture
def tls_files(tmp_path: Path) -> dict[str, Path]:
    """A real certificate, key and CA, so only the variable under test is wrong."""
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    files = {"cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem", "ca": tmp_path / "ca.pem"}
    leaf.cert_chain_pems[0].write_to_path(str(files["cert"]))
    leaf.private_key_pem.write_to_path(str(files["key"]))
    ca.cert_pem.write_to_path(str(files["ca"]))
    return files


@pytest.mark.parametrize("which", ["cert", "key", "ca"])
@pytest.mark.parametrize("name", NAMES)
def test_settings_refuse_a_tls_file_that_does_not_exist(
    name: str, which: str, tls_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = name.upper()
    for kind, path in tls_files.items():
        monkeypatch.setenv(f"{prefix}_TLS_{kind.upper()}_FILE", str(path))
    missing = tls_files[which].with_name("absent.pem")
    variable = f"{prefix}_TLS_{which.upper()}_FILE"
    monkeypatch.setenv(variable, str(missing))
    with pytest.raises(ValidationError) as caught:
        GRPC_SERVICES[name]()
    assert variable in str(caught.value)
    assert str(missing) in str(caught.value)


@pytest.mark.parametrize("name", NAMES)
def test_settings_accept_tls_files_that_exist(
    name: str, tls_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = name.upper()
    for kind, path in tls_files.items():
        monkeypatch.setenv(f"{prefix}_TLS_{kind.upper()}_FILE", str(path))
    monkeypatch.setenv(f"{prefix}_TLS_REQUIRE_CLIENT_CERT", "true")
    settings = GRPC_SERVICES[name]()
    assert settings.tls_enabled
    assert settings.tls_require_client_cert


@pytest.mark.parametrize("name", NAMES)
async def test_the_service_process_exits_naming_the_missing_tls_file(
    name: str, tmp_path: Path
) -> None:
    variable = f"{name.upper()}_TLS_CERT_FILE"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'protos'}",
        f"{name.upper()}_PORT": "0",
        variable: str(tmp_path / "absent.pem"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        ENTRY_POINTS[name],
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"python -m {ENTRY_POINTS[name]} started despite a missing TLS file")
    assert process.returncode != 0
    assert variable in stderr.decode()
