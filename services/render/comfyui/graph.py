"""Building the ComfyUI graph of one variant from a template, by binding name.

:func:`build_graph` copies the template, writes each parameter into the inputs its
binding names, chains ``LoraLoaderModelOnly`` nodes in front of the ``model`` binding and
splices a ControlNet between the text encoding and the sampler. The result depends only
on its arguments, so the same seed and inputs always give the same graph (and ComfyUI's
cache may answer a repeat at once).

ControlNet wiring (Flux)::

    ControlNetLoader ─► [SetUnionControlNetType] ─┐
    source pixels ─► [Canny] ─────────────────────┤
    positive / negative conditioning ─────────────┼─► ControlNetApplyAdvanced (+ VAE)
                                                  └─► sampler positive / negative

Union ControlNet trap: ``SetUnionControlNetType`` sends the *index* of the chosen name in
its SDXL (xinsir) list — openpose 0, depth 1, hed… 2, canny… 3, normal 4 — but Flux Union
models (InstantX, Shakker-Labs Union-Pro) number their modes canny 0, tile 1, depth 2,
blur 3, pose 4. So Flux canny is selected with ``"openpose"``, tile with ``"depth"``,
depth with ``"hed/pidi/scribble/ted"`` and pose with ``"normal"`` (Comfy-Org/ComfyUI
issue #4823). :data:`FLUX_UNION_TYPES` holds that mapping.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.render.backend import (
    ControlNetWiring,
    GraphProblem,
    LoraLink,
    VariantSpec,
    VariantValues,
)
from services.render.comfyui.catalog import NodeCatalog
from services.render.jobs import ControlKind
from services.render.workflows import InputRef, Workflow

__all__ = [
    "FLUX_UNION_TYPES",
    "WEBSOCKET_OUTPUT",
    "BuiltGraph",
    "build_graph",
    "build_variant",
    "choose_model",
    "naming_fields",
]

FLUX_UNION_TYPES: Mapping[ControlKind, str] = {
    ControlKind.CANNY: "openpose",
    ControlKind.TILE: "depth",
    ControlKind.DEPTH: "hed/pidi/scribble/ted",
    ControlKind.POSE: "normal",
}
"""``SetUnionControlNetType.type`` value that selects each mode of a Flux Union ControlNet."""


WEBSOCKET_OUTPUT = "SaveImageWebsocket"
"""The output node that sends its images over the websocket instead of saving them."""


@dataclass(frozen=True)
class BuiltGraph:
    """A graph ready for ``POST /prompt``.

    Attributes:
        graph: The API-format graph.
        sampler_node: The node whose ``progress`` messages are sampling steps.
        output_node: The node whose saved images are the result.
        origins: Inputs set from request fields → those fields, for error messages.
        image_inputs: ``LoadImage`` inputs that hold uploaded file names.
    """

    graph: dict[str, Any]
    sampler_node: str
    output_node: str
    origins: dict[InputRef, str] = field(default_factory=dict)
    image_inputs: tuple[InputRef, ...] = ()


class _Builder:
    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.graph: dict[str, Any] = copy.deepcopy(dict(workflow.graph))
        self.origins: dict[InputRef, str] = {}
        self.image_inputs: list[InputRef] = []

    def set_value(self, binding: str, value: Any, origin: str | None = None) -> None:
        for target in self.workflow.targets(binding):
            self.graph[target.node]["inputs"][target.input] = value
            if origin is not None:
                self.origins[target] = origin

    def link_of(self, binding: str) -> list[Any]:
        target = self.workflow.targets(binding)[0]
        return list(self.graph[target.node]["inputs"][target.input])

    def relink(self, binding: str, link: list[Any]) -> None:
        for target in self.workflow.targets(binding):
            self.graph[target.node]["inputs"][target.input] = list(link)

    def add(self, base: str, class_type: str, inputs: dict[str, Any]) -> str:
        node_id, n = base, 1
        while node_id in self.graph:
            n += 1
            node_id = f"{base}_{n}"
        self.graph[node_id] = {"class_type": class_type, "inputs": inputs}
        return node_id


def build_variant(
    spec: VariantSpec, catalog: NodeCatalog | None = None, *, websocket_output: bool = False
) -> BuiltGraph:
    """The graph of a variant spec (see :func:`build_graph`), its model choice made from
    what ``catalog`` lists (the fallback file without one)."""
    built = build_graph(
        spec.workflow,
        spec.values,
        spec.loras,
        spec.controlnet,
        websocket_output=websocket_output,
    )
    choice = spec.workflow.model_choice
    if choice is not None:
        target = choice.target
        built.graph[target.node]["inputs"][target.input] = choose_model(spec.workflow, catalog)
    return built


def choose_model(workflow: Workflow, catalog: NodeCatalog | None) -> str:
    """The first file of the template's model choice that the server lists, else its last.

    E.g. ``flux-inpaint`` takes the Flux Fill checkpoint where the server has it and
    Flux dev elsewhere; the last file is the fallback, refused by name when missing.
    """
    choice = workflow.model_choice
    if choice is None:
        raise ValueError(f"workflow {workflow.name!r} has no model_choice")
    if catalog is None:
        return choice.files[-1]
    class_type = str(workflow.graph[choice.target.node]["class_type"])
    listed = set(catalog.options(class_type, choice.target.input) or ())
    return next((f for f in choice.files if f in listed), choice.files[-1])


def naming_fields(
    problems: list[GraphProblem], origins: Mapping[InputRef, str]
) -> list[GraphProblem]:
    """The problems, each naming the request field that set its input (where one did)."""
    return [
        dataclasses.replace(p, field=origins.get(InputRef(p.node, p.input or ""))) for p in problems
    ]


def build_graph(
    workflow: Workflow,
    params: VariantValues,
    loras: tuple[LoraLink, ...] = (),
    controlnet: ControlNetWiring | None = None,
    *,
    websocket_output: bool = False,
) -> BuiltGraph:
    """The graph of one variant.

    Args:
        workflow: The template.
        params: The literal values.
        loras: LoRAs in chain order (the first is applied to the checkpoint's model).
        controlnet: The ControlNet to splice in, if any.
        websocket_output: Replace the template's ``SaveImage`` output by
            ``SaveImageWebsocket`` (the server has it): the result comes over the socket
            and no file is written.

    Returns:
        The graph, with the node ids needed to follow its progress and fetch its result.

    Raises:
        ValueError: The template lacks a binding the request needs (``model`` for LoRAs,
            the conditionings for a ControlNet, ``source_pixels`` for a ControlNet
            without its own image); the caller checks this first.
    """
    b = _Builder(workflow)
    b.set_value("positive", params.positive, "positive_prompt")
    b.set_value("negative", params.negative, "negative_prompt")
    b.set_value("seed", params.seed, "seed")
    b.set_value("steps", params.steps, "settings.steps")
    b.set_value("cfg", params.cfg, "settings.cfg")
    b.set_value("guidance", params.guidance, "settings.guidance")
    b.set_value("sampler", params.sampler, "settings.sampler_name")
    b.set_value("scheduler", params.scheduler, "settings.scheduler")
    b.set_value("denoise", params.denoise, "settings.denoise")
    b.set_value("width", params.width, "width")
    b.set_value("height", params.height, "height")
    b.set_value("filename_prefix", params.filename_prefix)
    if params.image is not None:
        b.set_value("image", params.image, "source_image")
        b.image_inputs.extend(workflow.targets("image"))
    if params.mask is not None:
        b.set_value("mask", params.mask, "mask")
        b.image_inputs.extend(workflow.targets("mask"))

    if loras:
        if not workflow.has("model"):
            raise ValueError(f"workflow {workflow.name!r} has no 'model' binding for LoRAs")
        model = b.link_of("model")
        for i, lora in enumerate(loras):
            node = b.add(
                f"lora_{i}",
                "LoraLoaderModelOnly",
                {"model": model, "lora_name": lora.name, "strength_model": lora.strength},
            )
            b.origins[InputRef(node, "lora_name")] = f"loras[{i}].name"
            b.origins[InputRef(node, "strength_model")] = f"loras[{i}].strength"
            model = [node, 0]
        b.relink("model", model)

    if controlnet is not None:
        _splice_controlnet(b, workflow, controlnet, params)

    output = b.graph[workflow.output_node]
    if websocket_output and output["class_type"] == "SaveImage":
        b.graph[workflow.output_node] = {
            "class_type": WEBSOCKET_OUTPUT,
            "inputs": {"images": output["inputs"]["images"]},
        }

    sampler_node = workflow.targets("seed")[0].node
    return BuiltGraph(
        graph=b.graph,
        sampler_node=sampler_node,
        output_node=workflow.output_node,
        origins=b.origins,
        image_inputs=tuple(b.image_inputs),
    )


def _splice_controlnet(
    b: _Builder, workflow: Workflow, cn: ControlNetWiring, params: VariantValues
) -> None:
    if not (workflow.has("positive_conditioning") and workflow.has("negative_conditioning")):
        raise ValueError(f"workflow {workflow.name!r} has no conditioning bindings")
    loader = b.add("controlnet_loader", "ControlNetLoader", {"control_net_name": cn.model})
    b.origins[InputRef(loader, "control_net_name")] = "controlnet.model"
    control_net: list[Any] = [loader, 0]
    if cn.union_kind is not None:
        union = b.add(
            "controlnet_type",
            "SetUnionControlNetType",
            {"control_net": control_net, "type": FLUX_UNION_TYPES[cn.union_kind]},
        )
        b.origins[InputRef(union, "type")] = "controlnet.type"
        control_net = [union, 0]

    if cn.image is not None:
        loaded = b.add("controlnet_image", "LoadImage", {"image": cn.image})
        b.image_inputs.append(InputRef(loaded, "image"))
        b.origins[InputRef(loaded, "image")] = "controlnet.control_image"
        # Stretch, not crop: the hint must line up with the source, which is stretched
        # to the render size the same way.
        image: list[Any] = [
            b.add(
                "controlnet_image_scale",
                "ImageScale",
                {
                    "image": [loaded, 0],
                    "upscale_method": "lanczos",
                    "width": params.width,
                    "height": params.height,
                    "crop": "disabled",
                },
            ),
            0,
        ]
    else:
        if not workflow.has("source_pixels"):
            raise ValueError(f"workflow {workflow.name!r} has no 'source_pixels' binding")
        image = b.link_of("source_pixels")
    if cn.canny:
        image = [
            b.add(
                "controlnet_canny",
                "Canny",
                {"image": image, "low_threshold": cn.canny_low, "high_threshold": cn.canny_high},
            ),
            0,
        ]

    inputs: dict[str, Any] = {
        "positive": b.link_of("positive_conditioning"),
        "negative": b.link_of("negative_conditioning"),
        "control_net": control_net,
        "image": image,
        "strength": cn.strength,
        "start_percent": cn.start_percent,
        "end_percent": cn.end_percent,
    }
    # Flux ControlNets take a VAE-encoded hint; without the VAE ComfyUI only logs a warning
    # and the control is silently wrong.
    if workflow.has("vae"):
        inputs["vae"] = b.link_of("vae")
    apply = b.add("controlnet_apply", "ControlNetApplyAdvanced", inputs)
    for name, origin in (
        ("strength", "controlnet.strength"),
        ("start_percent", "controlnet.start_percent"),
        ("end_percent", "controlnet.end_percent"),
    ):
        b.origins[InputRef(apply, name)] = origin
    b.relink("positive_conditioning", [apply, 0])
    b.relink("negative_conditioning", [apply, 1])
