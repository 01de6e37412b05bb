"""Readers of the deployment files, for checking them without a Docker engine.

``docker-compose.yml`` is parsed with PyYAML and its ``${VAR:-default}`` values are
resolved to their defaults, as Compose would with an empty environment; the
``Dockerfile`` is split into build stages by plain line parsing.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings

from gateway.settings import GatewaySettings
from imagegen.gateway.v1 import gateway_pb2
from imagegen.planner.v1 import planner_pb2
from imagegen.render.v1 import render_pb2
from imagegen.vision.v1 import vision_pb2
from services.common.settings import ServerSettings, settings_table
from services.planner.settings import PlannerSettings
from services.render.settings import RenderSettings
from services.vision.settings import VisionSettings
from standins.comfyui.settings import FakeComfyUISettings
from standins.ollama.settings import FakeOllamaSettings

__all__ = [
    "COMPOSE_FILE",
    "DEPLOYMENT_PAGE",
    "DOCKERFILE",
    "DOCKERIGNORE",
    "GRPC_SERVICES",
    "GRPC_SERVICE_NAMES",
    "MTLS_COMPOSE_FILE",
    "REAL_BACKENDS",
    "ROOT",
    "SETTINGS",
    "STAND_INS",
    "Stage",
    "default_port",
    "deploy_section",
    "dockerfile_stages",
    "env_names",
    "environment",
    "exec_form",
    "health_check_argv",
    "healthcheck_command",
    "is_runnable_module",
    "load_compose",
    "python_module",
    "resolve",
    "stage_chain",
]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
MTLS_COMPOSE_FILE = ROOT / "docker-compose.mtls.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOYMENT_PAGE = ROOT / "docs" / "deployment.md"


def deploy_section() -> str:
    """The deployment page (Compose, models, scaling, tokens, TLS), whole."""
    return DEPLOYMENT_PAGE.read_text()


GRPC_SERVICES: dict[str, type[ServerSettings]] = {
    "gateway": GatewaySettings,
    "vision": VisionSettings,
    "planner": PlannerSettings,
    "render": RenderSettings,
}
"""Compose service (and Dockerfile target) → its settings model."""

STAND_INS: dict[str, type[BaseSettings]] = {
    "fake-ollama": FakeOllamaSettings,
    "fake-comfyui": FakeComfyUISettings,
}
"""The stand-ins' compose services (and targets) → their settings model."""

SETTINGS: dict[str, type[BaseSettings]] = {**GRPC_SERVICES, **STAND_INS}

GRPC_SERVICE_NAMES = {
    "gateway": gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name,
    "vision": vision_pb2.DESCRIPTOR.services_by_name["VisionService"].full_name,
    "planner": planner_pb2.DESCRIPTOR.services_by_name["PlannerService"].full_name,
    "render": render_pb2.DESCRIPTOR.services_by_name["RenderService"].full_name,
}
"""Compose service → the fully qualified gRPC service its health check asks about."""

REAL_BACKENDS = {"fake-ollama": "ollama", "fake-comfyui": "comfyui"}
"""Stand-in → the GPU service it replaces (and whose name it answers to)."""

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def resolve(value: Any) -> Any:
    """A compose value with ``${VAR:-default}`` replaced by its default and ``$$`` by ``$``.

    Lists and mappings are resolved item by item; other values are returned as they are.
    """
    if isinstance(value, str):
        # "$$" is Compose's escape for a literal "$" left to the container's shell.
        return "$".join(
            _VARIABLE.sub(lambda m: m.group(2) or "", part) for part in value.split("$$")
        )
    if isinstance(value, list):
        return [resolve(v) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v) for k, v in value.items()}
    return value


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """``docker-compose.yml`` (or an override) as Compose reads it with an empty environment."""
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    resolved = resolve(document)
    assert isinstance(resolved, dict)
    return resolved


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's environment as a mapping (list or mapping syntax)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def env_names(model: type[BaseSettings]) -> set[str]:
    """Every environment variable a settings model reads."""
    return {name for name, _, _ in settings_table(model)}


def default_port(model: type[BaseSettings]) -> int:
    """The default ``port`` of a server's settings."""
    port = model.model_fields["port"].default
    assert isinstance(port, int)
    return port


def python_module(command: list[str]) -> str:
    """The module of a ``python -m MODULE ...`` command."""
    assert command[:2] == ["python", "-m"], f"not a 'python -m' command: {command}"
    return command[2]


def is_runnable_module(module: str) -> bool:
    """Whether ``python -m module`` would find something to run."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return False
    if spec.submodule_search_locations is not None:  # a package runs its __main__
        return importlib.util.find_spec(f"{module}.__main__") is not None
    return True


def health_check_argv(test: list[str]) -> list[str]:
    """The arguments of a compose ``CMD-SHELL`` health check, split as ``sh`` would."""
    assert test[0] == "CMD-SHELL", test
    return shlex.split(test[1])


@dataclass
class Stage:
    """One ``FROM ... AS name`` stage of the Dockerfile."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        """The arguments of every instruction ``keyword`` (upper case) in this stage."""
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str | None:
        """The arguments of the stage's last ``keyword`` instruction, if any."""
        found = self.all(keyword)
        return found[-1] if found else None


def dockerfile_stages() -> dict[str, Stage]:
    """The Dockerfile's stages by name, each with its instructions in order.

    Continuation lines are joined and comments dropped; ``ARG`` values before the
    first ``FROM`` are substituted into ``FROM`` lines.
    """
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    global_args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in lines:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = args.split()
            base = re.sub(
                r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), m.group(0)), parts[0]
            )
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else base
            current = stages[name] = Stage(name, base)
        elif current is None:
            if keyword == "ARG" and "=" in args:
                key, value = args.split("=", 1)
                global_args[key] = value
        else:
            current.instructions.append((keyword, args))
    return stages


def stage_chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """A stage and the stages it builds on, itself first."""
    chain = [stages[name]]
    while chain[-1].base in stages:
        chain.append(stages[chain[-1].base])
    return chain


def exec_form(args: str) -> list[str]:
    """The argument list of an exec-form instruction such as ``CMD ["python", ...]``."""
    value = yaml.safe_load(args)
    assert isinstance(value, list), f"not in exec form: {args}"
    return [str(v) for v in value]


def healthcheck_command(args: str) -> str:
    """The shell command of ``HEALTHCHECK [--options] CMD command``."""
    _, sep, command = args.partition(" CMD ")
    assert sep, f"not a HEALTHCHECK CMD: {args}"
    return command.strip()
