"""deploy/kubernetes checked without a cluster: rendered, validated, and held to the code.

Each overlay is rendered once by ``kubectl kustomize`` (skipped where kubectl is absent),
every object is validated against Kubernetes' own schemas by ``kubernetes-validate``
(strict: unknown fields are errors) and the KEDA objects by ``check-jsonschema`` against
the schema in ``deploy/kubernetes/schemas``. The rest asserts what only this repository
knows: the probes ask the servers' real health names on their real ports, every variable
is a setting of its service, the channel targets name the headless Services, and so on.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from gateway.downstream import grpc_target
from services.common.metrics import (
    COMFYUI_QUEUE_DEPTH,
    RENDER_VARIANTS_PENDING_METRIC,
    RPCS_IN_FLIGHT,
)
from services.common.server import LIVENESS_SERVICE_NAME, READINESS_SERVICE_NAME
from tests.deploy.kubernetes import KUBERNETES, OVERLAYS, PodTemplate, Rendered, kubectl, render
from tests.deploy.manifests import (
    GRPC_SERVICE_NAMES,
    GRPC_SERVICES,
    dockerfile_stages,
    env_names,
    exec_form,
    is_runnable_module,
)

pytestmark = pytest.mark.skipif(kubectl() is None, reason="kubectl is not installed")

KEDA_SCHEMA = KUBERNETES / "schemas" / "keda-scaledobject.json"
OLDEST_KUBERNETES = "1.29"  # native sidecar containers (ComfyUI in the render pod)
NAMESPACE = "imagegen"
GPU = "nvidia.com/gpu"

# Ollama's own environment (envconfig), plus what the pod scripts read.
OLLAMA_ENV = {
    "OLLAMA_HOST",
    "OLLAMA_MODELS",
    "OLLAMA_KEEP_ALIVE",
    "OLLAMA_MAX_LOADED_MODELS",
    "OLLAMA_NUM_PARALLEL",
    "OLLAMA_NOPRUNE",
    "HOME",
    "MODEL",
}
# Ollama deployment → (the service that calls it, that service's model setting)
OLLAMAS = {
    "ollama-llava": ("vision", "VISION_MODEL"),
    "ollama-gpt-oss": ("planner", "PLANNER_MODEL"),
}
# The gRPC method whose calls in flight are a service's pending model calls.
MODEL_CALLS = {"vision": "AnalyzeImage", "planner": "PlanPrompt"}


@functools.cache
def overlay(name: str) -> Rendered:
    """An overlay, rendered once per session (tests that change an object copy it first)."""
    return Rendered(render(name))


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> Rendered:
    """Each overlay in turn."""
    return overlay(request.param)


@pytest.fixture(scope="module")
def cluster() -> Rendered:
    """The cluster overlay (autoscaling and TLS)."""
    return overlay("cluster")


def service_containers(rendered: Rendered) -> list[tuple[str, PodTemplate, dict[str, Any]]]:
    """(service, pod, container) for the four imagegen servers."""
    return [
        (name, rendered.pod(name), rendered.pod(name).container(name)) for name in GRPC_SERVICES
    ]


def metric_name(metric: Any) -> str:
    """The exported name of a prometheus_client metric."""
    return str(metric.describe()[0].name)


# --- rendering and schemas ----------------------------------------------------------------


def test_an_overlay_that_kustomize_refuses_fails_loudly() -> None:
    broken = KUBERNETES / "overlays" / "broken-for-test"
    assert not broken.exists()
    with pytest.raises(subprocess.CalledProcessError) as failure:
        render("broken-for-test")
    assert "broken-for-test" in failure.value.stderr


@pytest.fixture(scope="module")
def schema_cache() -> Iterator[None]:
    """Keeps each parsed schema file (the shared definitions are 2 MB) for the module.

    ``kubernetes_validate.validate`` reads and parses its files again for every object;
    the files are read-only data, so caching them changes nothing but the time taken.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            kubernetes_validate.utils,
            "schema_contents",
            functools.cache(kubernetes_validate.utils.schema_contents),
        )
        yield


@pytest.mark.usefixtures("schema_cache")
def test_every_object_is_valid_kubernetes_in_strict_mode(rendered: Rendered) -> None:
    """Every built-in kind against the oldest supported and the newest known release."""
    checked = 0
    for obj in rendered.objects:
        if obj["apiVersion"].startswith("keda.sh/"):
            continue  # a custom resource: see the KEDA schema test
        for version in (OLDEST_KUBERNETES, kubernetes_validate.latest_version()):
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                pytest.fail(
                    f"{obj['kind']}/{obj['metadata']['name']} on {version}: {path}: {e.message}"
                )
        checked += 1
    assert checked >= 35


def test_strict_validation_rejects_a_misspelt_field(rendered: Rendered) -> None:
    deployment = copy.deepcopy(rendered.get("Deployment", "gateway"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, OLDEST_KUBERNETES, strict=True)


def test_the_cluster_keda_objects_pass_check_jsonschema(cluster: Rendered, tmp_path: Path) -> None:
    scaled = cluster.of_kind("ScaledObject")
    assert {o["metadata"]["name"] for o in scaled} == {"render", "vision", "planner", *OLLAMAS}
    files = []
    for obj in scaled:
        path = tmp_path / f"{obj['metadata']['name']}.json"
        path.write_text(json.dumps(obj))
        files.append(str(path))
    command = shutil.which("check-jsonschema") or str(
        Path(sys.executable).parent / "check-jsonschema"
    )
    result = subprocess.run(
        [command, "--schemafile", str(KEDA_SCHEMA), *files],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "triggers", 0, "metadata", "threshold"), 2),  # KEDA wants strings
        (("spec", "triggers", 0, "metricType"), "Average"),
        (("spec", "minReplicas"), 1),  # the HPA's name, not KEDA's
    ],
    ids=["numeric threshold", "unknown metric type", "unknown field"],
)
def test_the_keda_schema_rejects_what_keda_would(
    cluster: Rendered, path: tuple[Any, ...], value: Any
) -> None:
    schema = json.loads(KEDA_SCHEMA.read_text())
    obj = copy.deepcopy(cluster.get("ScaledObject", "render"))
    jsonschema.validate(obj, schema)
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(obj, schema)


# --- probes, ports and settings -----------------------------------------------------------


def probe_target(probe: dict[str, Any]) -> tuple[int, str]:
    """(port, health service name) a probe asks: native gRPC, or the image's health check."""
    if "grpc" in probe:
        return int(probe["grpc"]["port"]), str(probe["grpc"].get("service", ""))
    command = probe["exec"]["command"]
    assert command[:3] == ["python", "-m", "services.common.healthcheck"], command
    assert is_runnable_module(command[2])
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in command[3:])
    host, _, port = flags["addr"].rpartition(":")
    assert host == "127.0.0.1"
    return int(port), flags.get("service", "")


def test_every_probe_asks_the_servers_real_health_names_on_their_real_port(
    rendered: Rendered,
) -> None:
    for name, _, container in service_containers(rendered):
        env = rendered.environment(container)
        port = int(env[f"{name.upper()}_PORT"] or 0)
        grpc_ports = [p["containerPort"] for p in container["ports"] if p["name"] == "grpc"]
        assert grpc_ports == [port], f"{name}: container port {grpc_ports} vs setting {port}"
        # Readiness asks the name that also drops a saturated replica (render at its cap).
        assert probe_target(container["readinessProbe"]) == (port, READINESS_SERVICE_NAME)
        assert probe_target(container["livenessProbe"]) == (port, LIVENESS_SERVICE_NAME)


def test_every_environment_variable_is_a_real_setting_of_its_service(rendered: Rendered) -> None:
    for name, _, container in service_containers(rendered):
        unknown = set(rendered.environment(container)) - env_names(GRPC_SERVICES[name])
        assert not unknown, f"{name}: not settings of {GRPC_SERVICES[name].__name__}: {unknown}"
    for ollama in OLLAMAS:
        for container in rendered.pod(ollama).containers():
            unknown = set(rendered.environment(container)) - OLLAMA_ENV
            assert not unknown, f"{ollama}/{container['name']}: {unknown}"


def test_the_single_node_settings_are_accepted_by_the_services(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rendered = overlay("single-node")
    for name, _, container in service_containers(rendered):
        with monkeypatch.context() as env:
            for key, value in rendered.environment(container).items():
                assert value is not None
                env.setenv(key, value)
            GRPC_SERVICES[name]()  # raises naming the variable if a value is refused


def test_every_image_we_build_is_a_dockerfile_target(rendered: Rendered) -> None:
    stages = dockerfile_stages()
    for pod in rendered.pods():
        for container in pod.containers():
            repository = container["image"].rsplit(":", 1)[0]
            if repository.startswith("imagegen/"):
                target = repository.removeprefix("imagegen/")
                assert target == container["name"] and target in stages
                module = exec_form(stages[target].last("CMD") or "")[2]
                assert is_runnable_module(module)


def test_termination_grace_covers_each_services_drain(rendered: Rendered) -> None:
    """Kubernetes kills at terminationGracePeriodSeconds: the drain must fit inside it."""
    for name, pod, container in service_containers(rendered):
        grace = float(rendered.environment(container)[f"{name.upper()}_GRACE_PERIOD_S"] or 0)
        total = pod.spec["terminationGracePeriodSeconds"]
        assert grace + 10 <= total <= grace + 60, f"{name}: drain {grace} s, pod gets {total} s"


# --- discovery ----------------------------------------------------------------------------


def test_internal_channels_are_dns_targets_of_headless_services(rendered: Rendered) -> None:
    gateway = rendered.environment(rendered.pod("gateway").container("gateway"))
    for name in ("vision", "planner", "render"):
        address = gateway[f"GATEWAY_{name.upper()}_ADDRESS"]
        port = rendered.environment(rendered.pod(name).container(name))[f"{name.upper()}_PORT"]
        assert address == f"dns:///{name}.{NAMESPACE}.svc.cluster.local:{port}"
        assert grpc_target(address) == address
        service = rendered.get("Service", name)
        assert service["metadata"]["namespace"] == NAMESPACE
        assert service["spec"]["clusterIP"] == "None", f"{name}: not headless"
        assert [p["port"] for p in service["spec"]["ports"]] == [int(port or 0)]


def test_servers_age_their_connections_so_clients_re_resolve(rendered: Rendered) -> None:
    for name, _, container in service_containers(rendered):
        age = float(
            rendered.environment(container).get(f"{name.upper()}_MAX_CONNECTION_AGE_S") or 0
        )
        assert 0 < age <= 300, f"{name}: clients would never see new replicas"


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_every_service_and_budget_selects_a_pod_with_its_ports(rendered: Rendered) -> None:
    pods = rendered.pods()
    for service in rendered.of_kind("Service"):
        matched = [p for p in pods if selects(service["spec"]["selector"], p.labels)]
        assert len(matched) == 1, f"Service {service['metadata']['name']} selects {len(matched)}"
        named = {port["name"] for c in matched[0].containers() for port in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in named
    for budget in rendered.of_kind("PodDisruptionBudget"):
        selector = budget["spec"]["selector"]["matchLabels"]
        assert sum(selects(selector, p.labels) for p in pods) == 1


def test_every_reference_to_a_config_map_volume_or_secret_resolves(rendered: Rendered) -> None:
    config_maps = {o["metadata"]["name"] for o in rendered.of_kind("ConfigMap")}
    claims = {o["metadata"]["name"] for o in rendered.of_kind("PersistentVolumeClaim")}
    secrets = {o["metadata"]["name"] for o in rendered.of_kind("Secret")}
    for pod in rendered.pods():
        for container in pod.containers():
            rendered.environment(container)  # raises KeyError on a missing map or key
        for volume in pod.spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                # <service>-tls come from the certificate issuer (components/tls).
                assert name in secrets or name == f"{pod.name}-tls", name


# --- security and placement ---------------------------------------------------------------


def test_every_container_is_unprivileged_with_a_read_only_root(rendered: Rendered) -> None:
    for pod in rendered.pods():
        pod_context = pod.spec.get("securityContext", {})
        assert pod_context.get("seccompProfile", {}).get("type") == "RuntimeDefault", pod.name
        assert pod.spec.get("automountServiceAccountToken") is False, pod.name
        for container in pod.containers():
            context = {**pod_context, **container.get("securityContext", {})}
            where = f"{pod.name}/{container['name']}"
            assert context.get("runAsNonRoot") is True, where
            assert context.get("runAsUser", 0) != 0, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            resources = container.get("resources", {})
            assert resources.get("requests") and resources.get("limits"), where


def test_gpus_are_requested_only_by_comfyui_and_ollama(rendered: Rendered) -> None:
    with_gpu = {
        f"{pod.name}/{c['name']}": pod.resources(c)[GPU]
        for pod in rendered.pods()
        for c in pod.containers()
        if GPU in pod.resources(c)
    }
    assert with_gpu == {"render/comfyui": 1, "ollama-llava/ollama": 1, "ollama-gpt-oss/ollama": 1}


def test_comfyui_is_a_sidecar_of_render_on_loopback_with_read_only_models(
    rendered: Rendered,
) -> None:
    pod = rendered.pod("render")
    comfyui = pod.container("comfyui")
    assert comfyui["restartPolicy"] == "Always"  # native sidecar: stops after render drained
    assert "startupProbe" in comfyui  # render starts only once ComfyUI answers
    port = comfyui["ports"][0]["containerPort"]
    urls = rendered.environment(pod.container("render"))["RENDER_COMFYUI_URLS"]
    assert urls == f"http://127.0.0.1:{port}"
    mounts = {m["mountPath"]: m for m in comfyui["volumeMounts"]}
    assert mounts["/models"].get("readOnly") is True
    volumes = {v["name"]: v for v in pod.spec["volumes"]}
    assert volumes[mounts["/models"]["name"]]["persistentVolumeClaim"]["readOnly"] is True
    for folder in ("input", "output"):
        assert f"--{folder}-directory=/comfyui/{folder}" in comfyui["command"]
        volume = volumes[mounts[f"/comfyui/{folder}"]["name"]]
        assert volume["emptyDir"]["sizeLimit"], f"ComfyUI's {folder} folder has no size limit"


@pytest.mark.parametrize("ollama", sorted(OLLAMAS))
def test_each_ollama_serves_its_services_model_pulled_before_ready(
    rendered: Rendered, ollama: str
) -> None:
    service, model_setting = OLLAMAS[ollama]
    pod = rendered.pod(ollama)
    server = rendered.environment(pod.container("ollama"))
    pull = pod.container("pull")
    service_env = rendered.environment(rendered.pod(service).container(service))
    model = service_env[model_setting]
    assert server["MODEL"] == rendered.environment(pull)["MODEL"] == model
    assert server["OLLAMA_MAX_LOADED_MODELS"] == "1"
    assert server["OLLAMA_KEEP_ALIVE"] == "-1"
    assert service_env[f"{service.upper()}_KEEP_ALIVE"] == "-1"  # the call's keep_alive wins
    assert 'ollama pull "$MODEL"' in pull["command"][-1]
    assert "restartPolicy" not in pull  # a plain init container: done before the server starts
    assert 'ollama show "$MODEL"' in " ".join(
        pod.container("ollama")["readinessProbe"]["exec"]["command"]
    )
    ollama_port = pod.container("ollama")["ports"][0]["containerPort"]
    url = service_env[f"{service.upper()}_OLLAMA_URL"]
    assert url == f"http://{ollama}.{NAMESPACE}.svc.cluster.local:{ollama_port}"


def allowed_peers(rendered: Rendered, pod: PodTemplate, port_name: str) -> set[str]:
    """Who may connect to ``port_name`` of ``pod``: workload names, or "anyone"."""
    peers: set[str] = set()
    for policy in rendered.of_kind("NetworkPolicy"):
        spec = policy["spec"]
        selector = spec["podSelector"]
        if "matchExpressions" in selector:
            (expression,) = selector["matchExpressions"]
            chosen = pod.labels.get(expression["key"]) in expression["values"]
        else:
            chosen = selects(selector.get("matchLabels", {}), pod.labels)
        if not chosen:
            continue
        for rule in spec.get("ingress", []):
            if port_name not in {p["port"] for p in rule.get("ports", [])}:
                continue
            if "from" not in rule:
                peers.add("anyone")
            for peer in rule.get("from", []):
                if "podSelector" in peer:
                    peers.add(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
                else:
                    peers.add(
                        "namespace:"
                        + peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                    )
    return peers


def test_network_policies_let_each_part_be_reached_only_by_its_caller(rendered: Rendered) -> None:
    (deny,) = [p for p in rendered.of_kind("NetworkPolicy") if p["spec"]["podSelector"] == {}]
    assert deny["spec"]["policyTypes"] == ["Ingress"] and "ingress" not in deny["spec"]
    expected = {
        ("gateway", "grpc"): {"anyone"},
        ("vision", "grpc"): {"gateway"},
        ("planner", "grpc"): {"gateway"},
        ("render", "grpc"): {"gateway"},
        ("render", "comfyui"): set(),  # loopback only
        ("ollama-llava", "ollama"): {"vision"},
        ("ollama-gpt-oss", "ollama"): {"planner"},
        ("redis", "redis"): {"gateway"},
    }
    for (name, port), peers in expected.items():
        assert allowed_peers(rendered, rendered.pod(name), port) == peers, (name, port)
    for name in GRPC_SERVICES:
        assert allowed_peers(rendered, rendered.pod(name), "metrics") == {"namespace:monitoring"}


# --- autoscaling --------------------------------------------------------------------------


def test_render_scales_on_pending_variants_per_replica(cluster: Rendered) -> None:
    scaled = cluster.get("ScaledObject", "render")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "render"
    (trigger,) = scaled["spec"]["triggers"]
    query = trigger["metadata"]["query"]
    # The render gauge once render exports it; until then ComfyUI's queue, same variants.
    assert re.search(rf"\b{RENDER_VARIANTS_PENDING_METRIC}\{{", query)
    assert re.search(rf"\bor sum\({metric_name(COMFYUI_QUEUE_DEPTH)}\{{", query)
    assert trigger["metricType"] == "AverageValue"
    assert float(trigger["metadata"]["threshold"]) > 0


@pytest.mark.parametrize("target", ["vision", "planner", *sorted(OLLAMAS)])
def test_model_parts_scale_on_their_pending_model_calls(cluster: Rendered, target: str) -> None:
    service = OLLAMAS[target][0] if target in OLLAMAS else target
    scaled = cluster.get("ScaledObject", target)
    assert scaled["spec"]["scaleTargetRef"]["name"] == target
    cluster.get("Deployment", target)
    (trigger,) = scaled["spec"]["triggers"]
    query = trigger["metadata"]["query"]
    assert f"{metric_name(RPCS_IN_FLIGHT)}{{" in query
    assert f'service="{GRPC_SERVICE_NAMES[service]}"' in query
    assert f'method="{MODEL_CALLS[service]}"' in query
    assert f'namespace="{NAMESPACE}"' in query


def test_the_gateway_scales_on_cpu_which_it_requests(cluster: Rendered) -> None:
    (hpa,) = cluster.of_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "gateway"
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    gateway = cluster.pod("gateway").container("gateway")
    assert gateway["resources"]["requests"]["cpu"]  # utilisation is relative to it


def test_the_single_node_overlay_has_no_autoscaler() -> None:
    kinds = {o["kind"] for o in overlay("single-node").objects}
    assert not kinds & {"ScaledObject", "HorizontalPodAutoscaler"}
