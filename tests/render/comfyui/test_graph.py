"""Graph building by binding name: values, the LoRA chain, the ControlNet splice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from services.render.backend import ControlNetWiring, LoraLink, VariantValues
from services.render.comfyui.catalog import NodeCatalog, check_graph
from services.render.comfyui.graph import build_graph, naming_fields
from services.render.jobs import ControlKind
from services.render.settings import DEFAULT_WORKFLOWS_DIR
from services.render.workflows import WorkflowLibrary
from tests.render.conftest import real_object_info

LIBRARY = WorkflowLibrary(DEFAULT_WORKFLOWS_DIR)
LORAS = ["realism.safetensors", "detail.safetensors"]
CONTROLNETS = ["flux-union-pro.safetensors", "flux-canny.safetensors"]
CATALOG = NodeCatalog(
    real_object_info(
        checkpoints=["flux1-dev-fp8.safetensors"], loras=LORAS, controlnets=CONTROLNETS
    )
)


def _params(seed: int = 42, image: str | None = "imagegen/abc.png") -> VariantValues:
    return VariantValues(
        positive="a watercolor lighthouse",
        negative="",
        seed=seed,
        steps=20,
        cfg=1.0,
        guidance=3.5,
        sampler="euler",
        scheduler="simple",
        denoise=0.75,
        width=1008,
        height=752,
        image=image,
    )


def _canny(model: str = "flux-union-pro.safetensors", image: str | None = None) -> ControlNetWiring:
    return ControlNetWiring(
        model=model,
        union_kind=ControlKind.CANNY if "union" in model else None,
        canny=image is None,
        image=image,
        strength=0.6,
        start_percent=0.0,
        end_percent=0.8,
    )


def test_parameters_land_on_the_bound_inputs() -> None:
    graph = build_graph(LIBRARY.get("flux-img2img"), _params()).graph
    assert graph["8"]["inputs"]["seed"] == 42
    assert graph["8"]["inputs"]["denoise"] == 0.75
    assert graph["5"]["inputs"]["text"] == "a watercolor lighthouse"
    assert graph["6"]["inputs"]["guidance"] == 3.5
    assert (graph["3"]["inputs"]["width"], graph["3"]["inputs"]["height"]) == (1008, 752)
    assert graph["2"]["inputs"]["image"] == "imagegen/abc.png"


def test_only_bound_nodes_are_sized_not_every_node_with_a_width(tmp_path: Path) -> None:
    for path in DEFAULT_WORKFLOWS_DIR.glob("flux-img2img*.json"):
        shutil.copy(path, tmp_path / path.name)
    graph_file = tmp_path / "flux-img2img.json"
    graph = json.loads(graph_file.read_text())
    graph["20"] = {
        "class_type": "ImageScale",
        "inputs": {
            "image": ["2", 0],
            "upscale_method": "area",
            "width": 64,
            "height": 64,
            "crop": "disabled",
        },
    }
    graph_file.write_text(json.dumps(graph))
    built = build_graph(WorkflowLibrary(tmp_path).get("flux-img2img"), _params()).graph
    assert built["20"]["inputs"]["width"] == 64
    assert built["3"]["inputs"]["width"] == 1008


def test_loras_are_chained_between_the_checkpoint_and_the_sampler() -> None:
    loras = (LoraLink("realism.safetensors", 0.8), LoraLink("detail.safetensors", -0.5))
    built = build_graph(LIBRARY.get("flux-img2img"), _params(), loras)
    graph = built.graph
    first, second = graph["lora_0"], graph["lora_1"]
    assert first["class_type"] == second["class_type"] == "LoraLoaderModelOnly"
    assert first["inputs"]["model"] == ["1", 0]
    assert second["inputs"]["model"] == ["lora_0", 0]
    assert graph["8"]["inputs"]["model"] == ["lora_1", 0]
    assert second["inputs"]["strength_model"] == -0.5
    assert check_graph(graph, CATALOG, skip=built.image_inputs) == []


def test_a_union_controlnet_gets_the_flux_mode_and_the_vae() -> None:
    built = build_graph(LIBRARY.get("flux-img2img"), _params(), controlnet=_canny())
    graph = built.graph
    assert graph["controlnet_type"]["inputs"]["type"] == "openpose"
    apply = graph["controlnet_apply"]["inputs"]
    assert apply["positive"] == ["6", 0] and apply["negative"] == ["7", 0]
    assert apply["vae"] == ["1", 2]
    assert apply["image"] == ["controlnet_canny", 0]
    assert graph["controlnet_canny"]["inputs"]["image"] == ["3", 0]
    assert graph["8"]["inputs"]["positive"] == ["controlnet_apply", 0]
    assert graph["8"]["inputs"]["negative"] == ["controlnet_apply", 1]
    assert check_graph(graph, CATALOG, skip=built.image_inputs) == []


def test_a_dedicated_controlnet_has_no_union_type_node() -> None:
    graph = build_graph(
        LIBRARY.get("flux-img2img"), _params(), controlnet=_canny("flux-canny.safetensors")
    ).graph
    assert "controlnet_type" not in graph
    assert graph["controlnet_apply"]["inputs"]["control_net"] == ["controlnet_loader", 0]


def test_a_given_control_image_is_loaded_and_stretched_to_the_render_size() -> None:
    built = build_graph(
        LIBRARY.get("flux-txt2img"),
        _params(image=None),
        controlnet=_canny(image="imagegen/map.png"),
    )
    graph = built.graph
    assert graph["controlnet_image"]["inputs"]["image"] == "imagegen/map.png"
    scale = graph["controlnet_image_scale"]["inputs"]
    assert (scale["width"], scale["height"], scale["crop"]) == (1008, 752, "disabled")
    assert "controlnet_canny" not in graph
    assert check_graph(graph, CATALOG, skip=built.image_inputs) == []


def test_the_same_inputs_build_the_same_graph_and_another_seed_does_not() -> None:
    workflow = LIBRARY.get("flux-img2img")
    loras = (LoraLink("realism.safetensors", 0.8),)
    first = build_graph(workflow, _params(43), loras, _canny()).graph
    again = build_graph(workflow, _params(43), loras, _canny()).graph
    other = build_graph(workflow, _params(44), loras, _canny()).graph
    assert first == again
    assert first != other


def test_the_template_itself_is_never_modified() -> None:
    workflow = LIBRARY.get("flux-img2img")
    before = json.dumps(workflow.graph, sort_keys=True)
    build_graph(workflow, _params(), (LoraLink("realism.safetensors", 1.0),), _canny())
    assert json.dumps(workflow.graph, sort_keys=True) == before


def test_problems_name_the_request_field_that_set_the_input() -> None:
    catalog = NodeCatalog(real_object_info(checkpoints=["flux1-dev-fp8.safetensors"], loras=[]))
    loras = (LoraLink("realism.safetensors", 0.8),)
    built = build_graph(LIBRARY.get("flux-img2img"), _params(), loras)
    problems = naming_fields(
        check_graph(built.graph, catalog, skip=built.image_inputs), built.origins
    )
    assert [(p.field, p.missing_file) for p in problems] == [("loras[0].name", "lora")]
