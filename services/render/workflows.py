"""Workflow templates: ComfyUI API-format graphs plus the bindings that say where each
render parameter goes.

A template is two files in the workflows folder::

    flux-img2img.json            the graph, {"<node id>": {"class_type": ..., "inputs": ...}}
    flux-img2img.bindings.json   {"mode": "img2img", "description": ...,
                                  "bindings": {"seed": {"node": "8", "input": "seed"}, ...}}

Parameters reach the graph only through these named bindings, never by searching for
"every node that has a width input": a template with two ImageScale nodes would otherwise
get both resized. A binding is one ``{"node", "input"}`` target or a list of them.

The optional ``output_size`` entry of the bindings file says what decides the size of
the results (:class:`~services.render.dimensions.SizePolicy`): ``{"policy": "source"}``
(the image-to-image default), ``{"policy": "requested"}`` (the text-to-image default and
its only choice) or ``{"policy": "scale", "min_scale": 1.5, "max_scale": 4,
"default_scale": 2}`` (the source enlarged by the request's ``scale``).

The optional ``edit`` entry (image-to-image only) says how a template changes the source
(:class:`EditKind`): ``img2img`` (the default), ``kontext`` (a fresh latent with the
source as reference, so no ``denoise`` binding) or ``inpaint`` (binds ``mask``, the
uploaded one-channel mask; only inpaint templates may).

Value bindings receive a literal (the prompt text, the seed, the size …). Link bindings
name an input that receives a link; the render splices nodes in front of it: LoRA loaders
in front of ``model``, the ControlNet in front of ``positive_conditioning`` and
``negative_conditioning``; ``vae`` and ``source_pixels`` are read to feed those nodes.

Templates are read from disk when asked for and cached until their files change, so an
operator adds one by dropping the two files into the folder (see ``workflows/README.md``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.common.errors import (
    FailedPreconditionError,
    PreconditionViolation,
)
from services.common.request_rules import is_workflow_name, validate_workflow_name
from services.render.dimensions import SizePolicy

__all__ = [
    "DEFAULT_SIZE_POLICIES",
    "DEFAULT_WORKFLOWS",
    "EDIT_WORKFLOWS",
    "LINK_BINDINGS",
    "MODEL_FILE_INPUTS",
    "VALUE_BINDINGS",
    "EditKind",
    "InputRef",
    "Mode",
    "ModelChoice",
    "OutputSizeRule",
    "Workflow",
    "WorkflowLibrary",
    "validate_workflow_name",
]


class Mode(StrEnum):
    """What a template does with its input."""

    IMG2IMG = "img2img"
    TXT2IMG = "txt2img"


class EditKind(StrEnum):
    """How an image-to-image template changes the source (the bindings file's ``edit``)."""

    IMG2IMG = "img2img"
    """The whole frame is re-drawn at the request's denoise."""
    KONTEXT = "kontext"
    """An instruction-editing model draws a new image with the source as its reference."""
    INPAINT = "inpaint"
    """Only the mask's white area is re-drawn; the render keeps the source outside it."""


EDIT_WORKFLOWS: Mapping[EditKind, str] = {
    EditKind.IMG2IMG: "flux-img2img",
    EditKind.KONTEXT: "flux-kontext-edit",
    EditKind.INPAINT: "flux-inpaint",
}
"""The shipped template of each edit kind."""

DEFAULT_WORKFLOWS: Mapping[Mode, str] = {
    Mode.IMG2IMG: "flux-img2img",
    Mode.TXT2IMG: "flux-txt2img",
}
"""The template used when a request names none."""

VALUE_BINDINGS = frozenset(
    {
        "image",
        "mask",
        "positive",
        "negative",
        "seed",
        "steps",
        "cfg",
        "guidance",
        "sampler",
        "scheduler",
        "denoise",
        "width",
        "height",
        "filename_prefix",
    }
)
"""Bindings whose inputs receive a literal value."""

LINK_BINDINGS = frozenset(
    {"model", "positive_conditioning", "negative_conditioning", "vae", "source_pixels"}
)
"""Bindings whose inputs receive a link that the render splices into or reads."""

_SAMPLING = frozenset(
    {"output", "positive", "seed", "steps", "cfg", "sampler", "scheduler", "width", "height"}
)
_REQUIRED: Mapping[Mode | EditKind, frozenset[str]] = {
    Mode.TXT2IMG: _SAMPLING,
    EditKind.IMG2IMG: _SAMPLING | {"image", "denoise"},
    # Kontext draws a fresh latent (denoise 1.0): the planned denoise has nothing to bind to.
    EditKind.KONTEXT: _SAMPLING | {"image"},
    EditKind.INPAINT: _SAMPLING | {"image", "mask", "denoise"},
}

MODEL_FILE_INPUTS = frozenset(
    {
        "ckpt_name",
        "unet_name",
        "vae_name",
        "clip_name",
        "clip_name1",
        "clip_name2",
        "lora_name",
        "control_net_name",
    }
)
"""Inputs of ComfyUI loader nodes whose value is a model file name."""

_BINDINGS_SUFFIX = ".bindings.json"


@dataclass(frozen=True)
class InputRef:
    """One input of one node of a graph."""

    node: str
    input: str

    def __str__(self) -> str:
        return f"node {self.node} input {self.input}"


@dataclass(frozen=True)
class ModelChoice:
    """A loader input that takes the first of several files the server has.

    Attributes:
        target: The loader input (e.g. ``CheckpointLoaderSimple.ckpt_name``).
        files: In order of preference; the last is the fallback every server must have.
    """

    target: InputRef
    files: tuple[str, ...]


DEFAULT_SIZE_POLICIES: Mapping[Mode, SizePolicy] = {
    Mode.IMG2IMG: SizePolicy.SOURCE,
    Mode.TXT2IMG: SizePolicy.REQUESTED,
}
"""The output size policy of a template whose bindings file declares none."""


@dataclass(frozen=True)
class OutputSizeRule:
    """What decides the size of a template's results.

    Attributes:
        policy: Source size, scaled source, or the requested size.
        min_scale: Smallest factor (``scale`` policy).
        max_scale: Largest factor (``scale`` policy).
        default_scale: Factor used when the request gives none (``scale`` policy).
    """

    policy: SizePolicy
    min_scale: float = 1.0
    max_scale: float = 1.0
    default_scale: float = 1.0


@dataclass(frozen=True)
class Workflow:
    """A loaded, checked template.

    Attributes:
        name: The template's name (its file stem).
        mode: Image-to-image or text-to-image.
        edit: How an image-to-image template changes the source (``None`` for
            text-to-image).
        model_choice: A loader input filled with the first listed file the server has.
        description: One line for people.
        graph: The API-format graph; never modified (the graph builder copies it).
        bindings: Parameter name → the inputs that receive it.
        output_node: Id of the node whose saved images are the result.
        required_models: ``(class_type, input, file)`` of every model file it loads.
        output_size: What decides the size of its results.
    """

    name: str
    mode: Mode
    description: str
    graph: Mapping[str, Any]
    bindings: Mapping[str, tuple[InputRef, ...]]
    output_node: str
    required_models: tuple[tuple[str, str, str], ...] = field(default=())
    output_size: OutputSizeRule = field(default=OutputSizeRule(SizePolicy.SOURCE))
    edit: EditKind | None = EditKind.IMG2IMG
    model_choice: ModelChoice | None = None

    def has(self, binding: str) -> bool:
        """True when the template binds ``binding``."""
        return binding in self.bindings

    def targets(self, binding: str) -> tuple[InputRef, ...]:
        """The inputs bound to ``binding``; empty when the template does not bind it."""
        return self.bindings.get(binding, ())


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node: str = Field(min_length=1)
    input: str = Field(min_length=1)


class _OutputSize(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: Literal["source", "scale", "requested"]
    min_scale: float | None = Field(default=None, ge=1.0, le=8.0)
    max_scale: float | None = Field(default=None, ge=1.0, le=8.0)
    default_scale: float | None = Field(default=None, ge=1.0, le=8.0)


class _ModelChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node: str = Field(min_length=1)
    input: str = Field(min_length=1)
    files: list[str] = Field(min_length=1)


class _BindingsFile(BaseModel):
    """The ``*.bindings.json`` file as written by a person."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["img2img", "txt2img"]
    edit: Literal["img2img", "kontext", "inpaint"] | None = None
    description: str = ""
    output_size: _OutputSize | None = None
    model_choice: _ModelChoice | None = None
    bindings: dict[str, _Target | list[_Target]]


class WorkflowLibrary:
    """The templates of one folder, loaded on demand and cached until their files change.

    Args:
        directory: The folder holding ``<name>.json`` and ``<name>.bindings.json`` pairs.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._cache: dict[str, tuple[tuple[int, int, int, int], Workflow]] = {}

    @property
    def directory(self) -> Path:
        """The folder templates are read from."""
        return self._directory

    def names(self) -> list[str]:
        """Names of the templates present (a graph with its bindings file), sorted."""
        if not self._directory.is_dir():
            return []
        found = []
        for bindings in self._directory.glob(f"*{_BINDINGS_SUFFIX}"):
            name = bindings.name.removesuffix(_BINDINGS_SUFFIX)
            if is_workflow_name(name) and (self._directory / f"{name}.json").is_file():
                found.append(name)
        return sorted(found)

    def get(self, name: str) -> Workflow:
        """The template called ``name``.

        Args:
            name: A template name; checked with :func:`validate_workflow_name`.

        Returns:
            The loaded, checked template.

        Raises:
            InvalidArgumentError: The name is not a plain name.
            FailedPreconditionError: No such template (reason ``WORKFLOW_NOT_FOUND``,
                listing the available ones) or its files are broken (``WORKFLOW_INVALID``).
        """
        validate_workflow_name(name)
        graph_path = self._directory / f"{name}.json"
        bindings_path = self._directory / f"{name}{_BINDINGS_SUFFIX}"
        try:
            g, b = graph_path.stat(), bindings_path.stat()
        except FileNotFoundError:
            available = self.names()
            listing = ", ".join(available) or "none"
            raise FailedPreconditionError(
                f"unknown workflow {name!r}; available: {listing}",
                reason="WORKFLOW_NOT_FOUND",
                metadata={"workflow": name, "available": ",".join(available)},
                violations=[
                    PreconditionViolation("WORKFLOW", name, f"no such workflow; have {listing}")
                ],
            ) from None
        stamp = (g.st_mtime_ns, g.st_size, b.st_mtime_ns, b.st_size)
        cached = self._cache.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        workflow = _load(name, graph_path, bindings_path)
        self._cache[name] = (stamp, workflow)
        return workflow


def _invalid(name: str, problem: str) -> FailedPreconditionError:
    return FailedPreconditionError(
        f"workflow {name!r} is broken: {problem}",
        reason="WORKFLOW_INVALID",
        metadata={"workflow": name},
        violations=[PreconditionViolation("WORKFLOW", name, problem)],
    )


def _is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


def _load(name: str, graph_path: Path, bindings_path: Path) -> Workflow:
    try:
        graph = json.loads(graph_path.read_text(encoding="utf-8"))
        spec = _BindingsFile.model_validate_json(bindings_path.read_bytes())
    except (OSError, ValueError, ValidationError) as e:
        raise _invalid(name, f"cannot read its files ({e})") from e
    if not isinstance(graph, dict) or not graph:
        raise _invalid(name, "the graph is not a JSON object of nodes")
    for node_id, node in graph.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            raise _invalid(name, f"node {node_id} has no class_type")
        if not isinstance(node.get("inputs", {}), dict):
            raise _invalid(name, f"node {node_id} has no inputs object")

    mode = Mode(spec.mode)
    if mode is Mode.TXT2IMG and spec.edit is not None:
        raise _invalid(name, "'edit' belongs to img2img templates only")
    edit = None if mode is Mode.TXT2IMG else EditKind(spec.edit or EditKind.IMG2IMG)
    bindings: dict[str, tuple[InputRef, ...]] = {}
    output_node = ""
    for binding, raw in spec.bindings.items():
        targets = tuple(
            InputRef(t.node, t.input) for t in (raw if isinstance(raw, list) else [raw])
        )
        if not targets:
            raise _invalid(name, f"binding {binding!r} has no target")
        for target in targets:
            node = graph.get(target.node)
            if node is None:
                raise _invalid(name, f"binding {binding!r} names missing node {target.node}")
            inputs = node.get("inputs", {})
            if target.input not in inputs:
                raise _invalid(name, f"binding {binding!r}: {target} does not exist")
            value = inputs[target.input]
            if binding in VALUE_BINDINGS and _is_link(value):
                raise _invalid(name, f"binding {binding!r}: {target} is a link, not a value")
            if (binding in LINK_BINDINGS or binding == "output") and not _is_link(value):
                raise _invalid(name, f"binding {binding!r}: {target} is not a link")
        if binding == "output":
            if len(targets) != 1:
                raise _invalid(name, "binding 'output' must name exactly one node")
            output_node = targets[0].node
        elif binding not in VALUE_BINDINGS | LINK_BINDINGS:
            raise _invalid(name, f"unknown binding {binding!r}")
        if binding in LINK_BINDINGS:
            sources = {tuple(graph[t.node]["inputs"][t.input]) for t in targets}
            if len(sources) != 1:
                raise _invalid(name, f"binding {binding!r}: its inputs are fed by different links")
        bindings[binding] = targets
    kind = edit or mode
    missing = sorted(_REQUIRED[kind] - bindings.keys())
    if missing:
        raise _invalid(name, f"{kind.value} templates must bind {', '.join(missing)}")
    if edit is not EditKind.INPAINT and "mask" in bindings:
        raise _invalid(name, "only 'edit': 'inpaint' templates bind 'mask'")

    output_size = _output_size_rule(name, mode, spec.output_size)
    choice = _model_choice(name, graph, spec.model_choice)
    # A choice needs only its fallback (its last file) on every server.
    required_models = tuple(
        (
            node["class_type"],
            input_name,
            choice.files[-1]
            if choice is not None and choice.target == InputRef(node_id, input_name)
            else value,
        )
        for node_id, node in graph.items()
        for input_name, value in node.get("inputs", {}).items()
        if input_name in MODEL_FILE_INPUTS and isinstance(value, str)
    )
    return Workflow(
        name=name,
        mode=mode,
        description=spec.description,
        graph=graph,
        bindings=bindings,
        output_node=output_node,
        required_models=required_models,
        output_size=output_size,
        edit=edit,
        model_choice=choice,
    )


def _model_choice(
    name: str, graph: Mapping[str, Any], declared: _ModelChoice | None
) -> ModelChoice | None:
    if declared is None:
        return None
    target = InputRef(declared.node, declared.input)
    node = graph.get(target.node)
    if (
        node is None
        or target.input not in MODEL_FILE_INPUTS
        or not isinstance(node.get("inputs", {}).get(target.input), str)
    ):
        raise _invalid(name, f"model_choice: {target} is not a loader's model file input")
    return ModelChoice(target, tuple(declared.files))


def _output_size_rule(name: str, mode: Mode, declared: _OutputSize | None) -> OutputSizeRule:
    if declared is None:
        return OutputSizeRule(DEFAULT_SIZE_POLICIES[mode])
    policy = SizePolicy(declared.policy)
    factors = (declared.min_scale, declared.max_scale, declared.default_scale)
    if policy is not SizePolicy.SCALE:
        if any(f is not None for f in factors):
            raise _invalid(name, "output_size: scale factors belong to the 'scale' policy only")
        if mode is Mode.TXT2IMG and policy is not SizePolicy.REQUESTED:
            raise _invalid(name, "output_size: txt2img templates have no source to size from")
        return OutputSizeRule(policy)
    if mode is not Mode.IMG2IMG:
        raise _invalid(name, "output_size: the 'scale' policy needs an img2img template")
    low, high, default = factors
    if low is None or high is None:
        raise _invalid(name, "output_size: the 'scale' policy needs min_scale and max_scale")
    default = low if default is None else default
    if not low <= default <= high:
        raise _invalid(name, "output_size: min_scale <= default_scale <= max_scale must hold")
    return OutputSizeRule(policy, low, high, default)
