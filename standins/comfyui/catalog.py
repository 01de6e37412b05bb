"""Node schemas from ``object_info.json`` (a real ComfyUI 0.3.64 answer, the contract for node
inputs) with the loaders listing the configured model files and LoadImage the input folder;
the input/output/temp folders."""

from __future__ import annotations

import copy
import functools
import json
import mimetypes
import os
from dataclasses import dataclass
from importlib import resources
from typing import Any

from standins.comfyui.settings import FakeComfyUISettings

__all__ = ["FILE_VALIDATORS", "RECORDED", "FileResolver", "NodeCatalog", "NodeDef"]

# Model folder → the settings field with its files and the "Class.input" lists showing them.
MODEL_INPUTS = {
    "checkpoints": ("checkpoints", "CheckpointLoaderSimple.ckpt_name CheckpointLoader.ckpt_name"),
    "loras": ("loras", "LoraLoader.lora_name LoraLoaderModelOnly.lora_name"),
    "controlnet": ("controlnets", "ControlNetLoader.control_net_name"),
    "upscale_models": ("upscale_models", "UpscaleModelLoader.model_name"),
    "vae": ("vae", "VAELoader.vae_name"),  # plus "pixel_space"
    "text_encoders": ("text_encoders", "CLIPLoader.clip_name DualCLIPLoader.clip_name1"),
    "diffusion_models": ("diffusion_models", "UNETLoader.unet_name"),
}

RECORDED: dict[str, Any] = json.loads(
    resources.files("standins.comfyui").joinpath("recorded.json").read_text("utf-8")
)
"""The real server's other answers, texts and tables (its ``comment`` says which)."""

# Nodes whose VALIDATE_INPUTS checks that a file exists: input name and message prefix.
FILE_VALIDATORS = {
    "LoadImage": ("image", "Invalid image file"),
    "LoadImageMask": ("image", "Invalid image file"),
}


@dataclass(frozen=True)
class NodeDef:
    """One node type as ``object_info`` declares it."""

    name: str
    required: dict[str, list[Any]]
    optional: dict[str, list[Any]]
    hidden: dict[str, str]
    return_types: tuple[str, ...]
    output_node: bool
    python_module: str

    def input_spec(self, name: str) -> tuple[Any, str, dict[str, Any]] | None:
        """(input_type, category, extra_info) like ComfyUI's ``get_input_info``."""
        for category, group in (("required", self.required), ("optional", self.optional)):
            if name in group:
                spec = group[name]
                return spec[0], category, (spec[1] if len(spec) > 1 else {})
        return (self.hidden[name], "hidden", {}) if name in self.hidden else None

    @classmethod
    def of(cls, name: str, node: dict[str, Any]) -> NodeDef:
        """The definition of ``object_info``'s entry ``node``."""
        groups, output_node = node["input"], bool(node["output_node"])
        required, optional = groups.get("required", {}), groups.get("optional", {})
        module, outputs = node.get("python_module", "nodes"), tuple(node["output"])
        return cls(name, required, optional, groups.get("hidden", {}), outputs, output_node, module)


def _set_options(node: dict[str, Any], input_name: str, options: list[str]) -> None:
    for group in ("required", "optional"):
        spec = node["input"].get(group, {}).get(input_name)
        if spec is not None and spec[0] == "COMBO":  # V3: the list sits in the options
            node["input"][group][input_name] = ["COMBO", {**spec[1], "options": options}]
        elif spec is not None:
            node["input"][group][input_name] = [list(options), *spec[1:]]


class FileResolver:
    """The input/, output/ and temp/ folders."""

    def __init__(self, data_dir: str) -> None:
        self.dirs = {kind: os.path.join(data_dir, kind) for kind in ("input", "output", "temp")}

    def path(self, name: str) -> str:
        """Where a LoadImage name points."""
        return os.path.join(self.dirs["input"], name)

    def input_images(self) -> list[str]:
        """Image files directly in input/ (what LoadImage lists)."""
        folder = self.dirs["input"]
        names = [f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f))]
        return sorted(f for f in names if (mimetypes.guess_type(f)[0] or "").startswith("image/"))


@functools.cache
def _shared(name: str) -> tuple[NodeDef, str]:
    """A recorded node's definition and JSON text, made once per process (never changed)."""
    node = _recorded()[name]
    return NodeDef.of(name, node), json.dumps(node)


@functools.cache
def _recorded() -> dict[str, dict[str, Any]]:
    """``object_info.json``, parsed once (:class:`NodeCatalog` copies what it adapts)."""
    nodes: dict[str, dict[str, Any]] = json.loads(
        resources.files("standins.comfyui").joinpath("object_info.json").read_text("utf-8")
    )
    return nodes


class NodeCatalog:
    """Every node type of the recorded ``object_info``, with the configured model files."""

    def __init__(self, settings: FakeComfyUISettings, files: FileResolver) -> None:
        self.files = files
        absent = set(settings.unavailable_nodes)
        # The recorded nodes are shared by every catalog and never changed; a catalog owns
        # copies of the loaders (their dicts and input groups) to list its model files in.
        self._adapted = {t.split(".")[0] for _, ts in MODEL_INPUTS.values() for t in ts.split()}
        self._info = {
            name: {**node, "input": {g: dict(v) for g, v in node["input"].items()}}
            if name in self._adapted
            else node
            for name, node in _recorded().items()
            if name not in absent
        }
        self.model_files: dict[str, list[str]] = {}
        for folder, (field, targets) in MODEL_INPUTS.items():
            names = self.model_files[folder] = sorted(getattr(settings, field))
            for target in targets.split():
                class_type, input_name = target.split(".")
                extra = ["pixel_space"] if folder == "vae" else []
                _set_options(self._info[class_type], input_name, names + extra)
        configs = self._info["CheckpointLoader"]["input"]["required"]["config_name"][0]
        self.model_files["configs"] = list(configs)
        self.nodes = {
            name: NodeDef.of(name, node) if name in self._adapted else _shared(name)[0]
            for name, node in self._info.items()
        }

    def get(self, class_type: Any) -> NodeDef | None:
        """A dict lookup on purpose: an unhashable class_type raises TypeError as in ComfyUI."""
        return self.nodes.get(class_type)

    def __getitem__(self, class_type: str) -> NodeDef:
        return self.nodes[class_type]

    def object_info(self, class_type: str | None = None) -> str:
        """``GET /object_info`` (every node) or ``/object_info/{class}`` (``{}`` if unknown),
        as JSON text: a recorded node's text is made once per process."""
        names = [n for n in (self._info if class_type is None else [class_type]) if n in self._info]
        own = self._adapted | FILE_VALIDATORS.keys()
        text = {n: json.dumps(self._current(n)) if n in own else _shared(n)[1] for n in names}
        return "{" + ", ".join(f"{json.dumps(n)}: {t}" for n, t in text.items()) + "}"

    def _current(self, class_type: str) -> dict[str, Any]:
        node = self._info[class_type]
        if class_type in FILE_VALIDATORS:
            node = copy.deepcopy(node)
            _set_options(node, FILE_VALIDATORS[class_type][0], self.files.input_images())
        return node
