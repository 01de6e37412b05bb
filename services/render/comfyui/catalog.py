"""What a ComfyUI server offers (its ``/object_info``) and checking a graph against it.

ComfyUI validates a queued graph, but not completely (ComfyUI 0.3.64):

* the ``step`` of INT inputs is not enforced (width 1000 on EmptySD3LatentImage passes);
* combo values of nodes written in the V3 schema (``["COMBO", {"options": [...]}]``) are
  not checked, so a bad value only fails mid-execution;
* a graph with one valid output node is accepted with HTTP 200 and a non-empty
  ``node_errors`` for the rest.

:func:`check_graph` checks all of it before the graph is submitted, so a refusal names
the request field that caused it instead of surfacing as a half-run prompt. The model
lists inside object_info (checkpoints, LoRAs, ControlNets) are how the render learns
which files a server has.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping
from typing import Any

from services.render.backend import BackendOffer, GraphProblem
from services.render.workflows import MODEL_FILE_INPUTS, InputRef

__all__ = ["NodeCatalog", "check_graph", "offer_of"]

_MODEL_FILE_KINDS = {"lora_name": "lora", "control_net_name": "controlnet"}
"""Loader inputs whose missing file is not a ``"model"`` (checkpoint, UNet, VAE, CLIP)."""


class NodeCatalog:
    """The node schemas of one ComfyUI server.

    Args:
        object_info: The parsed body of ``GET /object_info``.
    """

    def __init__(self, object_info: Mapping[str, Any]) -> None:
        self._info = object_info

    def has_node(self, class_type: str) -> bool:
        """True when the server has the node class."""
        return class_type in self._info

    def input_spec(self, class_type: str, input_name: str) -> list[Any] | None:
        """The schema entry of one input (``["INT", {...}]``, a combo list …), if any."""
        node = self._info.get(class_type)
        if not isinstance(node, Mapping):
            return None
        inputs = node.get("input", {})
        for section in ("required", "optional"):
            spec = inputs.get(section, {}).get(input_name)
            if isinstance(spec, list) and spec:
                return spec
        return None

    def options(self, class_type: str, input_name: str) -> list[str] | None:
        """The allowed values of a combo input, e.g. the LoRA files of ``LoraLoaderModelOnly``.

        Handles both schema styles: classic ``[[values], {...}]`` and V3
        ``["COMBO", {"options": [values]}]``.

        Returns:
            The values, or ``None`` when the input is not a combo (or does not exist).
        """
        spec = self.input_spec(class_type, input_name)
        if spec is None:
            return None
        return _combo_options(spec)

    def required_inputs(self, class_type: str) -> list[str]:
        """Names of the node's required inputs."""
        node = self._info.get(class_type, {})
        return list(node.get("input", {}).get("required", {}).keys())

    def outputs(self, class_type: str) -> list[str]:
        """Output types of a node class, in slot order."""
        node = self._info.get(class_type, {})
        return [str(t) for t in node.get("output", [])]


_LISTS = {
    "loras": ("LoraLoaderModelOnly", "lora_name"),
    "controlnets": ("ControlNetLoader", "control_net_name"),
    "samplers": ("KSampler", "sampler_name"),
    "schedulers": ("KSampler", "scheduler"),
}
"""Where each list of :class:`~services.render.backend.BackendOffer` is read: the combo
input of the node class the graph builder uses for it."""


def offer_of(catalog: NodeCatalog) -> BackendOffer:
    """The names a request may use on this server, read from its node schemas.

    Edit modes are left empty here: the render catalog fills them in by checking each
    mode's template against the server (:mod:`services.render.catalog`).
    """
    lists = {
        name: tuple(catalog.options(class_type, input_name) or ())
        for name, (class_type, input_name) in _LISTS.items()
    }
    return BackendOffer(
        loras=lists["loras"],
        controlnets=lists["controlnets"],
        samplers=lists["samplers"],
        schedulers=lists["schedulers"],
        edit_modes=(),
    )


def _combo_options(spec: list[Any]) -> list[str] | None:
    head = spec[0]
    if isinstance(head, list):
        return [str(v) for v in head]
    if head == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping):
        return [str(v) for v in spec[1].get("options", [])]
    return None


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2


def _types_match(produced: str, expected: str) -> bool:
    if "*" in (produced, expected):
        return True
    return bool(set(produced.split(",")) & set(expected.split(",")))


def check_graph(
    graph: Mapping[str, Any],
    catalog: NodeCatalog,
    *,
    skip: Collection[InputRef] = (),
) -> list[GraphProblem]:
    """Everything in ``graph`` that the server would refuse or fail on.

    Args:
        graph: An API-format graph.
        catalog: The server's node schemas.
        skip: Inputs not to check, e.g. ``LoadImage.image`` before the upload that puts
            the file there.

    Returns:
        The problems, empty when the graph fits the server.
    """
    problems: list[GraphProblem] = []
    skipped = set(skip)
    for node_id, node in graph.items():
        class_type = str(node.get("class_type", ""))
        if not catalog.has_node(class_type):
            problems.append(
                GraphProblem(
                    node_id, class_type, None, "unknown_node", "the server has no such node"
                )
            )
            continue
        inputs: Mapping[str, Any] = node.get("inputs", {})
        for name in catalog.required_inputs(class_type):
            if name not in inputs:
                problems.append(
                    GraphProblem(node_id, class_type, name, "missing_input", "required, not given")
                )
        for name, value in inputs.items():
            if InputRef(node_id, name) in skipped:
                continue
            spec = catalog.input_spec(class_type, name)
            if spec is None:
                continue  # ComfyUI ignores inputs a node does not declare
            problem = (
                _check_link(graph, catalog, node_id, class_type, name, value, spec)
                if _is_link(value)
                else _check_value(node_id, class_type, name, value, spec)
            )
            if problem is not None:
                problems.append(problem)
    return problems


def _check_link(
    graph: Mapping[str, Any],
    catalog: NodeCatalog,
    node_id: str,
    class_type: str,
    name: str,
    value: list[Any],
    spec: list[Any],
) -> GraphProblem | None:
    source_id, slot = value
    source = graph.get(str(source_id))
    if source is None or not isinstance(slot, int):
        return GraphProblem(
            node_id, class_type, name, "bad_link", f"links to missing node {source_id!r}"
        )
    outputs = catalog.outputs(str(source.get("class_type", "")))
    if not catalog.has_node(str(source.get("class_type", ""))):
        return None  # reported on the source node itself
    if not 0 <= slot < len(outputs):
        return GraphProblem(
            node_id, class_type, name, "bad_link", f"node {source_id} has no output {slot}"
        )
    expected = spec[0]
    if isinstance(expected, str) and not _types_match(outputs[slot], expected):
        return GraphProblem(
            node_id,
            class_type,
            name,
            "type_mismatch",
            f"expects {expected}, node {source_id} output {slot} gives {outputs[slot]}",
        )
    return None


def _check_value(
    node_id: str, class_type: str, name: str, value: Any, spec: list[Any]
) -> GraphProblem | None:
    def problem(kind: str, message: str, options: tuple[str, ...] = ()) -> GraphProblem:
        return GraphProblem(node_id, class_type, name, kind, message, options, str(value))

    options = _combo_options(spec)
    if options is not None:
        if str(value) not in options:
            shown = ", ".join(options) if options else "nothing"
            return dataclasses.replace(
                problem("not_in_list", f"{value!r} is not one of: {shown}", tuple(options)),
                missing_file=_MODEL_FILE_KINDS.get(name, "model")
                if name in MODEL_FILE_INPUTS
                else None,
            )
        return None
    kind = spec[0]
    config: Mapping[str, Any] = spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
    if kind == "INT":
        if isinstance(value, bool) or not isinstance(value, int):
            return problem("bad_value", f"{value!r} is not an integer")
        step = config.get("step")
        # ComfyUI does not check INT steps; Flux latents need them (e.g. 16 px sizes).
        if isinstance(step, int) and step > 1 and value % step:
            return problem("bad_step", f"{value} is not a multiple of {step}")
    elif kind == "FLOAT":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return problem("bad_value", f"{value!r} is not a number")
        if math.isnan(value) or math.isinf(value):
            return problem("bad_value", f"{value!r} is not a finite number")
    elif kind == "STRING":
        if not isinstance(value, str):
            return problem("bad_value", f"{value!r} is not a string")
        return None
    elif kind == "BOOLEAN":
        if not isinstance(value, bool):
            return problem("bad_value", f"{value!r} is not a boolean")
        return None
    else:
        return None
    low, high = config.get("min"), config.get("max")
    if isinstance(low, int | float) and value < low:
        return problem("out_of_range", f"{value} is below the minimum {low}")
    if isinstance(high, int | float) and value > high:
        return problem("out_of_range", f"{value} is above the maximum {high}")
    return None
