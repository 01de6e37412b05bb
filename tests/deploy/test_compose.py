"""docker-compose.yml checked against the code it deploys (no Docker engine needed)."""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import pytest

from gateway.downstream import grpc_target
from services.common.channels import service_config
from tests.deploy.manifests import (
    GRPC_SERVICE_NAMES,
    GRPC_SERVICES,
    REAL_BACKENDS,
    SETTINGS,
    STAND_INS,
    default_port,
    dockerfile_stages,
    env_names,
    environment,
    health_check_argv,
    is_runnable_module,
    load_compose,
    python_module,
)

COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
GPU_BACKENDS = ("ollama", "comfyui")
SCALABLE = ("vision", "planner", "render")


def test_every_image_we_build_runs_a_real_module() -> None:
    built = {name: s for name, s in SERVICES.items() if "build" in s}
    assert set(built) == set(SETTINGS)
    for name, service in built.items():
        module = python_module(service["command"])
        assert is_runnable_module(module), f"{name}: python -m {module} finds nothing to run"


def test_every_build_target_is_a_dockerfile_stage_of_the_same_name() -> None:
    stages = dockerfile_stages()
    for name in SETTINGS:
        build = SERVICES[name]["build"]
        assert build["context"] == "."
        assert build["target"] == name
        assert name in stages


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_environment_variable_is_a_real_setting(name: str) -> None:
    unknown = set(environment(SERVICES[name])) - env_names(SETTINGS[name])
    assert not unknown, f"{name}: not settings of {SETTINGS[name].__name__}: {sorted(unknown)}"


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_the_compose_values_are_accepted_by_the_settings(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in environment(SERVICES[name]).items():
        monkeypatch.setenv(variable, value)
    SETTINGS[name]()  # raises, naming the variable, on a value the service would refuse


@pytest.mark.parametrize("name", sorted(GRPC_SERVICES))
def test_ports_agree_with_the_settings_defaults(name: str) -> None:
    service, port = SERVICES[name], default_port(GRPC_SERVICES[name])
    env = environment(service)
    prefix = name.upper()
    assert env[f"{prefix}_PORT"] == str(port)
    assert env[f"{prefix}_HOST"] == "0.0.0.0"
    assert f"127.0.0.1:{port}" in health_check_argv(service["healthcheck"]["test"])
    if name == "gateway":
        assert [p.rsplit(":", 1)[1] for p in service["ports"]] == [str(port)]
    else:
        assert service["expose"] == [str(port)]


def test_the_gateway_reaches_each_service_by_name_through_dns_round_robin() -> None:
    env = environment(SERVICES["gateway"])
    for name in SCALABLE:
        address = env[f"GATEWAY_{name.upper()}_ADDRESS"]
        assert address == f"dns:///{name}:{default_port(GRPC_SERVICES[name])}"
        assert grpc_target(address) == address  # used as the channel target unchanged
    assert {"round_robin": {}} in service_config()["loadBalancingConfig"]


def test_only_the_gateway_publishes_a_port() -> None:
    published = {name for name, s in SERVICES.items() if s.get("ports")}
    assert published == {"gateway"}


@pytest.mark.parametrize("name", SCALABLE)
def test_scalable_services_have_no_container_name_and_no_host_ports(name: str) -> None:
    assert "container_name" not in SERVICES[name]
    assert "ports" not in SERVICES[name]


def test_no_service_pins_a_container_name() -> None:
    assert [n for n, s in SERVICES.items() if "container_name" in s] == []


@pytest.mark.parametrize("name", sorted(GRPC_SERVICES))
def test_health_checks_run_the_projects_check_for_the_served_service(name: str) -> None:
    argv = health_check_argv(SERVICES[name]["healthcheck"]["test"])
    assert argv[:3] == ["python", "-m", "services.common.healthcheck"]
    assert is_runnable_module(argv[2])
    assert argv[argv.index("--service") + 1] == GRPC_SERVICE_NAMES[name]


@pytest.mark.parametrize(
    ("name", "app"),
    [
        ("gateway", "gateway.app"),
        ("vision", "services.vision.app"),
        ("planner", "services.planner.app"),
        ("render", "services.render.app"),
    ],
)
def test_health_checks_ask_about_the_service_the_app_registers(name: str, app: str) -> None:
    registered = importlib.import_module(app).SERVICE_NAME
    assert registered == GRPC_SERVICE_NAMES[name]


def test_the_gateway_waits_for_healthy_services() -> None:
    depends = SERVICES["gateway"]["depends_on"]
    assert depends == {name: {"condition": "service_healthy"} for name in SCALABLE}


@pytest.mark.parametrize(
    ("name", "real", "stand_in", "real_condition"),
    [
        ("vision", "ollama-pull", "fake-ollama", "service_completed_successfully"),
        ("planner", "ollama-pull", "fake-ollama", "service_completed_successfully"),
        ("render", "comfyui", "fake-comfyui", "service_healthy"),
    ],
)
def test_services_wait_for_whichever_backend_the_profile_runs(
    name: str, real: str, stand_in: str, real_condition: str
) -> None:
    depends = SERVICES[name]["depends_on"]
    assert depends == {
        real: {"condition": real_condition, "required": False},
        stand_in: {"condition": "service_healthy", "required": False},
    }


def test_every_dependency_exists_and_optional_ones_are_in_a_profile() -> None:
    for name, service in SERVICES.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            if condition.get("required", True) is False:
                assert SERVICES[dependency].get("profiles"), dependency


def test_the_model_pull_waits_for_a_healthy_ollama_and_runs_once() -> None:
    pull = SERVICES["ollama-pull"]
    assert pull["depends_on"] == {"ollama": {"condition": "service_healthy"}}
    assert pull["restart"] == "no"


def test_the_pulled_models_are_the_ones_the_services_ask_for() -> None:
    pulled = re.findall(r"ollama pull (\S+)", " ".join(SERVICES["ollama-pull"]["command"]))
    wanted = [
        environment(SERVICES["vision"])["VISION_MODEL"],
        environment(SERVICES["planner"])["PLANNER_MODEL"],
    ]
    assert pulled == wanted
    fake_models = json.loads(environment(SERVICES["fake-ollama"])["FAKE_OLLAMA_MODELS"])
    assert fake_models == wanted


@pytest.mark.parametrize("name", GPU_BACKENDS)
def test_gpu_backends_reserve_an_nvidia_gpu(name: str) -> None:
    devices = SERVICES[name]["deploy"]["resources"]["reservations"]["devices"]
    assert devices
    for device in devices:
        assert device["driver"] == "nvidia"
        assert "gpu" in device["capabilities"]
        assert "count" in device or "device_ids" in device


def test_only_the_gpu_backends_reserve_gpus() -> None:
    reserving = {n for n, s in SERVICES.items() if "deploy" in s}
    assert reserving == set(GPU_BACKENDS)


def test_the_fakes_profile_swaps_the_gpu_backends_for_the_stand_ins() -> None:
    for name in ("ollama", "ollama-pull", "comfyui"):
        assert SERVICES[name]["profiles"] == ["gpu"]
    for name in STAND_INS:
        assert SERVICES[name]["profiles"] == ["fakes"]
    for name in GRPC_SERVICES:
        assert "profiles" not in SERVICES[name], f"{name} must run in every profile"


@pytest.mark.parametrize(("stand_in", "real"), sorted(REAL_BACKENDS.items()))
def test_each_stand_in_answers_to_its_backends_name_and_port(stand_in: str, real: str) -> None:
    service = SERVICES[stand_in]
    assert service["networks"]["default"]["aliases"] == [real]
    command = service["command"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    port = command[command.index("--port") + 1]
    health = " ".join(service["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/" in health
    urls = {
        "ollama": [
            environment(SERVICES["vision"])["VISION_OLLAMA_URL"],
            environment(SERVICES["planner"])["PLANNER_OLLAMA_URL"],
        ],
        "comfyui": [environment(SERVICES["render"])["RENDER_COMFYUI_URLS"]],
    }[real]
    assert urls == [f"http://{real}:{port}"] * len(urls)


def test_named_volumes_are_declared() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    used = {
        volume.split(":", 1)[0]
        for service in SERVICES.values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/", "~"))
    }
    assert used <= declared
