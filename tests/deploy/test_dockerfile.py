"""The Dockerfile and .dockerignore, read line by line and checked against the code."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deploy.manifests import (
    DOCKERIGNORE,
    GRPC_SERVICE_NAMES,
    GRPC_SERVICES,
    ROOT,
    SETTINGS,
    default_port,
    dockerfile_stages,
    exec_form,
    healthcheck_command,
    is_runnable_module,
    load_compose,
    python_module,
    stage_chain,
)

STAGES = dockerfile_stages()
TARGETS = sorted(SETTINGS)
COMPILERS = re.compile(r"\b(gcc|g\+\+|cc|clang|build-essential|make|apt-get install|apk add)\b")


STANDIN_TARGETS = {"fake-ollama", "fake-comfyui"}


def test_there_is_one_target_per_service_built_on_the_shared_runtime() -> None:
    for target in TARGETS:
        expected = "standins" if target in STANDIN_TARGETS else "runtime"
        assert STAGES[target].base == expected, target
    assert STAGES["standins"].base == "runtime"


def test_service_images_hold_no_stand_in_code_or_dependency() -> None:
    for target in set(TARGETS) - STANDIN_TARGETS:
        for stage in stage_chain(STAGES, target):
            for copy in stage.all("COPY"):
                assert "standins" not in copy, f"{target}: {copy}"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [r for r in requires if r.startswith("aiohttp")]


def test_a_build_without_target_gives_the_gateway() -> None:
    assert list(STAGES)[-1] == "gateway"


@pytest.mark.parametrize("stage", ["build", "runtime"])
def test_images_start_from_a_slim_python_the_project_supports(stage: str) -> None:
    match = re.fullmatch(r"python:(3\.\d+)-slim(-\w+)?(@sha256:[0-9a-f]+)?", STAGES[stage].base)
    assert match, STAGES[stage].base
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minor = int(match.group(1).split(".")[1])
    low, high = (int(v.split(".")[1]) for v in re.findall(r"3\.\d+", requires))
    assert low <= minor < high


@pytest.mark.parametrize("target", TARGETS)
def test_the_images_run_as_an_unprivileged_user(target: str) -> None:
    # The chain starts at the target: the first stage with a USER sets the one in force.
    users = next((s.all("USER") for s in stage_chain(STAGES, target) if s.all("USER")), [])
    assert users, f"{target} runs as root"
    assert users[-1].split(":")[0] not in {"root", "0"}


@pytest.mark.parametrize("target", TARGETS)
def test_no_compiler_or_package_manager_runs_in_the_final_images(target: str) -> None:
    for stage in stage_chain(STAGES, target):
        for command in stage.all("RUN"):
            assert not COMPILERS.search(command), f"{stage.name}: {command}"


def test_dependencies_are_installed_from_binary_wheels_only() -> None:
    [install] = [c for c in STAGES["build"].all("RUN") if "pip install" in c]
    assert "--only-binary=:all:" in install


def test_the_runtime_takes_only_the_virtualenv_from_the_build_stage() -> None:
    copies = [c for c in STAGES["runtime"].all("COPY") if c.startswith("--from")]
    assert copies == ["--from=build /opt/venv /opt/venv"]


def test_the_requirements_step_installs_exactly_the_runtime_dependencies(tmp_path: Path) -> None:
    [install] = [c for c in STAGES["build"].all("RUN") if "pip install" in c]
    step = shlex.split(install.split("&&")[0])
    assert step[:2] == ["python", "-c"]
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    subprocess.run([sys.executable, "-c", step[2]], cwd=tmp_path, check=True)
    written = (tmp_path / "requirements.txt").read_text().splitlines()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert written == project["dependencies"]


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_runs_the_module_compose_runs(target: str) -> None:
    command = exec_form(STAGES[target].last("CMD") or "")
    assert is_runnable_module(python_module(command))
    assert command == load_compose()["services"][target]["command"]


@pytest.mark.parametrize("target", sorted(GRPC_SERVICES))
def test_each_service_target_exposes_its_default_port_on_every_interface(target: str) -> None:
    stage = STAGES[target]
    assert stage.all("EXPOSE") == [str(default_port(GRPC_SERVICES[target]))]
    assert f"{target.upper()}_HOST=0.0.0.0" in stage.all("ENV")


@pytest.mark.parametrize("target", sorted(GRPC_SERVICES))
def test_each_service_target_health_checks_its_own_service(target: str) -> None:
    command = healthcheck_command(STAGES[target].last("HEALTHCHECK") or "")
    port = default_port(GRPC_SERVICES[target])
    assert command.startswith("python -m services.common.healthcheck ")
    assert f'--addr "127.0.0.1:${{{target.upper()}_PORT:-{port}}}"' in command
    assert f"--service {GRPC_SERVICE_NAMES[target]}" in command


@pytest.mark.parametrize("target", sorted(SETTINGS))
def test_every_target_has_a_health_check(target: str) -> None:
    assert STAGES[target].last("HEALTHCHECK")


def _pattern(glob: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex (``**`` any folders, ``*`` within one)."""
    out = ""
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif glob[i] == "?":
            out, i = out + "[^/]", i + 1
        elif glob[i] == "[":
            end = glob.index("]", i)
            out, i = out + glob[i : end + 1], end + 1
        else:
            out, i = out + re.escape(glob[i]), i + 1
    return re.compile(out)


def in_build_context(path: str) -> bool:
    """Whether .dockerignore lets ``path`` (relative to the root) into the build context.

    The last matching pattern wins; a pattern matching a folder covers what is inside.
    """
    rules = [
        (line.startswith("!"), _pattern(line.lstrip("!").rstrip("/")))
        for line in (raw.strip() for raw in DOCKERIGNORE.read_text().splitlines())
        if line and not line.startswith("#")
    ]
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    included = True
    for negated, pattern in rules:
        if any(pattern.fullmatch(p) for p in prefixes):
            included = negated
    return included


def test_every_copied_file_exists_and_reaches_the_build_context() -> None:
    copies = [
        c.split()[:-1]
        for stage in STAGES.values()
        for c in stage.all("COPY")
        if not c.startswith("--from")
    ]
    sources = [source for copy in copies for source in copy]
    assert sources
    for source in sources:
        path = ROOT / source
        assert path.exists(), source
        files = [path] if path.is_file() else [p for p in path.rglob("*.py") if p.is_file()]
        for file in files:
            if "__pycache__" not in file.parts:
                relative = file.relative_to(ROOT).as_posix()
                assert in_build_context(relative), f"{relative} is left out of the build context"


def test_secrets_and_local_state_stay_out_of_the_build_context() -> None:
    for path in (
        ".venv/bin/python",
        ".git/config",
        "tests/deploy/test_tls.py",
        "services/vision/server.pem",
        "gateway/tokens.key",
        "services/__pycache__/x.pyc",
        ".env",
    ):
        assert not in_build_context(path), path
