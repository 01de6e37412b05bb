"""Readers of the rendered Kubernetes manifests, for checking them without a cluster.

``kubectl kustomize`` renders an overlay of ``deploy/kubernetes`` into plain objects;
:class:`Rendered` indexes them and answers what the checks ask: the pod templates, the
effective environment of a container (its ``envFrom`` ConfigMaps and its ``env``), the
ConfigMap a generated name stands for.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from tests.deploy.manifests import ROOT

__all__ = [
    "KUBERNETES",
    "OVERLAYS",
    "PodTemplate",
    "Rendered",
    "kubectl",
    "render",
]

KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("single-node", "cluster")

Object = dict[str, Any]


def kubectl() -> str | None:
    """The ``kubectl`` on PATH, if any."""
    return shutil.which("kubectl")


def render(overlay: str) -> list[Object]:
    """The objects ``kubectl kustomize`` renders for ``deploy/kubernetes/overlays/<overlay>``.

    Raises:
        subprocess.CalledProcessError: kustomize refused the overlay (its message is in
            ``stderr``).
    """
    binary = kubectl()
    assert binary is not None
    completed = subprocess.run(
        [binary, "kustomize", str(KUBERNETES / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [doc for doc in yaml.safe_load_all(completed.stdout) if doc]


@dataclass(frozen=True)
class PodTemplate:
    """The pod template of a workload (Deployment or StatefulSet)."""

    workload: Object

    @property
    def name(self) -> str:
        """The workload's name."""
        return str(self.workload["metadata"]["name"])

    @property
    def spec(self) -> Object:
        """The pod spec."""
        spec: Object = self.workload["spec"]["template"]["spec"]
        return spec

    @property
    def labels(self) -> dict[str, str]:
        """The pod labels."""
        labels: dict[str, str] = self.workload["spec"]["template"]["metadata"]["labels"]
        return labels

    def containers(self) -> Iterator[Object]:
        """Every container, init containers (and native sidecars) first."""
        yield from self.spec.get("initContainers", [])
        yield from self.spec["containers"]

    def container(self, name: str) -> Object:
        """The container called ``name``."""
        for container in self.containers():
            if container["name"] == name:
                return container
        raise KeyError(f"{self.name} has no container {name}")

    def resources(self, container: Object) -> dict[str, Any]:
        """Requests and limits of a container merged (limits win), e.g. for GPU counts."""
        resources = container.get("resources", {})
        return {**resources.get("requests", {}), **resources.get("limits", {})}


class Rendered:
    """The objects of one rendered overlay, indexed by kind and name."""

    def __init__(self, objects: list[Object]) -> None:
        self.objects = objects

    def of_kind(self, kind: str) -> list[Object]:
        """Every object of ``kind``."""
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> Object:
        """The object of ``kind`` called ``name``."""
        for o in self.of_kind(kind):
            if o["metadata"]["name"] == name:
                return o
        raise KeyError(f"no {kind} {name}")

    def pods(self) -> list[PodTemplate]:
        """The pod templates of every Deployment and StatefulSet."""
        return [PodTemplate(o) for o in self.objects if o["kind"] in ("Deployment", "StatefulSet")]

    def pod(self, name: str) -> PodTemplate:
        """The pod template of the workload called ``name``."""
        for pod in self.pods():
            if pod.name == name:
                return pod
        raise KeyError(f"no workload {name}")

    def config_map(self, name: str) -> dict[str, str]:
        """The data of a ConfigMap (generated names carry a hash suffix; pass the full name)."""
        data: dict[str, str] = self.get("ConfigMap", name).get("data", {})
        return data

    def environment(self, container: Object) -> dict[str, str | None]:
        """A container's environment: its ``envFrom`` ConfigMaps, then its ``env``.

        A value taken from a ConfigMap key (``valueFrom``) is resolved; one from
        elsewhere (a Secret, the downward API) is ``None``.
        """
        env: dict[str, str | None] = {}
        for source in container.get("envFrom", []):
            env.update(self.config_map(source["configMapRef"]["name"]))
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = str(item["value"])
                continue
            ref = item.get("valueFrom", {}).get("configMapKeyRef")
            env[item["name"]] = self.config_map(ref["name"])[ref["key"]] if ref else None
        return env
