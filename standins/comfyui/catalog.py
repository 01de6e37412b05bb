"""Node schemas from the shipped ``object_info.json`` (a real ComfyUI 0.3.64 answer).

The model file lists of the loader nodes are replaced with the files this fake "has"
(from the settings), and LoadImage's list follows the input directory, as on the real server.
"""

from __future__ import annotations

import copy
import json
import mimetypes
import os
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from standins.comfyui.settings import FakeComfyUISettings

__all__ = [
    "FILE_VALIDATORS",
    "MODEL_FOLDERS",
    "MODEL_FOLDER_INPUTS",
    "NodeCatalog",
    "NodeDef",
    "is_image_filename",
    "load_reference_object_info",
]

# Where each model folder shows up in object_info: (class_type, input name, extra entries).
MODEL_FOLDER_INPUTS: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {
    "checkpoints": [
        ("CheckpointLoaderSimple", "ckpt_name", ()),
        ("CheckpointLoader", "ckpt_name", ()),
        ("ImageOnlyCheckpointLoader", "ckpt_name", ()),
        ("unCLIPCheckpointLoader", "ckpt_name", ()),
        ("CreateHookModelAsLora", "ckpt_name", ()),
        ("CreateHookModelAsLoraModelOnly", "ckpt_name", ()),
    ],
    "loras": [
        ("LoraLoader", "lora_name", ()),
        ("LoraLoaderModelOnly", "lora_name", ()),
        ("CreateHookLora", "lora_name", ()),
        ("CreateHookLoraModelOnly", "lora_name", ()),
        ("TrainLoraNode", "existing_lora", ("[None]",)),
    ],
    "controlnet": [
        ("ControlNetLoader", "control_net_name", ()),
        ("DiffControlNetLoader", "control_net_name", ()),
    ],
    "upscale_models": [("UpscaleModelLoader", "model_name", ())],
    "vae": [("VAELoader", "vae_name", ("pixel_space",))],
    "text_encoders": [
        ("CLIPLoader", "clip_name", ()),
        ("DualCLIPLoader", "clip_name1", ()),
        ("DualCLIPLoader", "clip_name2", ()),
        ("TripleCLIPLoader", "clip_name1", ()),
        ("TripleCLIPLoader", "clip_name2", ()),
        ("TripleCLIPLoader", "clip_name3", ()),
        ("QuadrupleCLIPLoader", "clip_name1", ()),
        ("QuadrupleCLIPLoader", "clip_name2", ()),
        ("QuadrupleCLIPLoader", "clip_name3", ()),
        ("QuadrupleCLIPLoader", "clip_name4", ()),
    ],
    "diffusion_models": [("UNETLoader", "unet_name", ())],
}

# GET /models, in the order the real server lists them.
MODEL_FOLDERS = [
    "checkpoints",
    "configs",
    "loras",
    "vae",
    "text_encoders",
    "diffusion_models",
    "clip_vision",
    "style_models",
    "embeddings",
    "diffusers",
    "vae_approx",
    "controlnet",
    "gligen",
    "upscale_models",
    "custom_nodes",
    "hypernetworks",
    "photomaker",
    "classifiers",
    "model_patches",
    "audio_encoders",
]

# Nodes whose VALIDATE_INPUTS checks a file (ComfyUI core): input name and message prefix.
FILE_VALIDATORS: dict[str, tuple[str, str]] = {
    "LoadImage": ("image", "Invalid image file"),
    "LoadImageMask": ("image", "Invalid image file"),
    "LoadLatent": ("latent", "Invalid latent file"),
    "LoadAudio": ("audio", "Invalid audio file"),
}

# Nodes whose file list follows the input directory (top-level image files only).
INPUT_IMAGE_LIST_NODES = [("LoadImage", "image"), ("LoadImageMask", "image")]

_KEY_ORDER = [
    "input",
    "input_order",
    "output",
    "output_is_list",
    "output_name",
    "name",
    "display_name",
    "description",
    "python_module",
    "category",
    "output_node",
]


@dataclass
class NodeDef:
    name: str
    required: dict[str, list[Any]]
    optional: dict[str, list[Any]]
    hidden: dict[str, str]
    return_types: tuple[str, ...]
    output_node: bool
    is_v3: bool
    validate_inputs: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def input_names(self) -> list[str]:
        """Required then optional inputs in declaration order."""
        return list(self.required) + list(self.optional)

    def input_spec(self, name: str) -> tuple[Any, str | None, dict[str, Any]] | None:
        """(input_type, category, extra_info) like ComfyUI's get_input_info."""
        for category, group in (("required", self.required), ("optional", self.optional)):
            if name in group:
                spec = group[name]
                extra = spec[1] if len(spec) > 1 else {}
                return spec[0], category, extra
        if name in self.hidden:
            return self.hidden[name], "hidden", {}
        return None

    @property
    def unique_id_hidden(self) -> bool:
        return "UNIQUE_ID" in self.hidden.values()


def _ordered_node(node: dict[str, Any]) -> dict[str, Any]:
    """Re-order keys and inputs as the real server emits them (declaration order)."""
    node = dict(node)
    order = node.get("input_order", {})
    inputs = {}
    for group in ("required", "optional", "hidden"):
        if group in node["input"]:
            entries = node["input"][group]
            names = order.get(group, list(entries))
            ordered = {name: entries[name] for name in names if name in entries}
            ordered.update({k: v for k, v in entries.items() if k not in ordered})
            inputs[group] = ordered
    node["input"] = inputs
    out = {k: node[k] for k in _KEY_ORDER if k in node}
    out.update({k: v for k, v in node.items() if k not in out})
    return out


def load_reference_object_info() -> dict[str, Any]:
    text = resources.files("standins.comfyui").joinpath("object_info.json").read_text("utf-8")
    raw: dict[str, Any] = json.loads(text)
    return {name: _ordered_node(node) for name, node in raw.items()}


def _set_options(node: dict[str, Any], input_name: str, options: list[str]) -> None:
    for group in ("required", "optional"):
        entries = node["input"].get(group, {})
        if input_name in entries:
            spec = entries[input_name]
            if spec and spec[0] == "COMBO":
                extra = dict(spec[1]) if len(spec) > 1 else {}
                extra["options"] = list(options)
                entries[input_name] = ["COMBO", extra, *spec[2:]]
            else:
                entries[input_name] = [list(options), *spec[1:]]


def is_image_filename(name: str) -> bool:
    mime, _ = mimetypes.guess_type(name)
    return mime is not None and mime.split("/")[0] == "image"


class NodeCatalog:
    """All node types the fake knows, with the configured model files applied."""

    def __init__(self, settings: FakeComfyUISettings, input_dir: str) -> None:
        self._input_dir = input_dir
        self.model_files: dict[str, list[str]] = {
            "checkpoints": sorted(settings.checkpoints),
            "loras": sorted(settings.loras),
            "controlnet": sorted(settings.controlnets),
            "upscale_models": sorted(settings.upscale_models),
            "vae": sorted(settings.vae),
            "text_encoders": sorted(settings.text_encoders),
            "diffusion_models": sorted(settings.diffusion_models),
        }
        info = load_reference_object_info()
        for folder, targets in MODEL_FOLDER_INPUTS.items():
            for class_type, input_name, extra in targets:
                if class_type in info:
                    _set_options(info[class_type], input_name, [*self.model_files[folder], *extra])
        config_spec = info.get("CheckpointLoader", {}).get("input", {}).get("required", {})
        configs = config_spec.get("config_name", [[]])[0]
        self.model_files["configs"] = list(configs) if isinstance(configs, list) else []
        self._info = info
        self.nodes: dict[str, NodeDef] = {}
        for name, node in info.items():
            inputs = node["input"]
            validator = FILE_VALIDATORS.get(name)
            self.nodes[name] = NodeDef(
                name=name,
                required=inputs.get("required", {}),
                optional=inputs.get("optional", {}),
                hidden=inputs.get("hidden", {}),
                return_types=tuple(node["output"]),
                output_node=bool(node["output_node"]),
                is_v3="api_node" in node,
                validate_inputs=(validator[0],) if validator else (),
                raw=node,
            )

    def get(self, class_type: Any) -> NodeDef | None:
        # A dict lookup on purpose: an unhashable class_type raises TypeError like the real one.
        return self.nodes.get(class_type)

    def __getitem__(self, class_type: str) -> NodeDef:
        return self.nodes[class_type]

    def input_images(self) -> list[str]:
        try:
            entries = os.listdir(self._input_dir)
        except FileNotFoundError:
            return []
        files = [f for f in entries if os.path.isfile(os.path.join(self._input_dir, f))]
        return sorted(f for f in files if is_image_filename(f))

    def _current(self, class_type: str) -> dict[str, Any]:
        node: dict[str, Any] = self._info[class_type]
        if any(class_type == name for name, _ in INPUT_IMAGE_LIST_NODES):
            node = copy.deepcopy(node)
            for name, input_name in INPUT_IMAGE_LIST_NODES:
                if name == class_type:
                    _set_options(node, input_name, self.input_images())
        return node

    def object_info(self) -> dict[str, Any]:
        return {name: self._current(name) for name in self._info}

    def object_info_for(self, class_type: str) -> dict[str, Any]:
        if class_type not in self._info:
            return {}
        return {class_type: self._current(class_type)}
