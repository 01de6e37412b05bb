"""The edit templates (img2img, Kontext, inpainting) against the recorded real object_info."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from services.common.errors import FailedPreconditionError
from services.render.backend import VariantValues
from services.render.comfyui.catalog import NodeCatalog, check_graph
from services.render.comfyui.graph import build_graph, choose_model
from services.render.settings import DEFAULT_WORKFLOWS_DIR
from services.render.workflows import (
    EDIT_WORKFLOWS,
    MODEL_FILE_INPUTS,
    EditKind,
    InputRef,
    WorkflowLibrary,
)
from tests.render.conftest import real_object_info

LIBRARY = WorkflowLibrary(DEFAULT_WORKFLOWS_DIR)
RECORDED = NodeCatalog(real_object_info())


def _values(mask: str | None) -> VariantValues:
    return VariantValues(
        positive="Make the cup dark green. Keep everything else unchanged.",
        negative="",
        seed=7,
        steps=20,
        cfg=1.0,
        guidance=2.5,
        sampler="euler",
        scheduler="simple",
        denoise=0.9,
        width=1024,
        height=768,
        image="imagegen/source.png",
        mask=mask,
    )


def _built(kind: EditKind) -> tuple[dict[str, Any], tuple[InputRef, ...]]:
    workflow = LIBRARY.get(EDIT_WORKFLOWS[kind])
    built = build_graph(
        workflow, _values("imagegen/mask.png" if kind is EditKind.INPAINT else None)
    )
    return built.graph, built.image_inputs


@pytest.mark.parametrize("kind", list(EditKind))
def test_each_edit_template_fits_the_recorded_node_inputs(kind: EditKind) -> None:
    workflow = LIBRARY.get(EDIT_WORKFLOWS[kind])
    assert workflow.edit is kind
    graph, image_inputs = _built(kind)
    # Uploaded images and model files depend on the server; every node, input, link type,
    # combo and range must fit the recorded ComfyUI 0.3.64 as it is.
    problems = check_graph(graph, RECORDED, skip=image_inputs)
    assert [p for p in problems if p.input not in MODEL_FILE_INPUTS] == []


@pytest.mark.parametrize("kind", list(EditKind))
def test_an_edit_template_is_refused_only_for_model_files_the_server_lacks(
    kind: EditKind,
) -> None:
    graph, image_inputs = _built(kind)
    problems = check_graph(graph, RECORDED, skip=image_inputs)
    assert all(p.is_missing_model for p in problems)
    missing = {p.value for p in problems}
    if kind is EditKind.KONTEXT:
        assert missing == {"flux1-dev-kontext_fp8_scaled.safetensors"}
    else:
        assert missing == set()


def test_a_server_with_the_kontext_model_accepts_the_kontext_graph_whole() -> None:
    info = real_object_info()
    info["UNETLoader"]["input"]["required"]["unet_name"][0] = [
        "flux1-dev-kontext_fp8_scaled.safetensors"
    ]
    graph, image_inputs = _built(EditKind.KONTEXT)
    assert check_graph(graph, NodeCatalog(info), skip=image_inputs) == []


def test_the_mask_reaches_the_mask_loader_and_is_an_uploaded_image() -> None:
    workflow = LIBRARY.get(EDIT_WORKFLOWS[EditKind.INPAINT])
    built = build_graph(workflow, _values("imagegen/m.png"))
    (target,) = workflow.targets("mask")
    assert built.graph[target.node]["class_type"] == "LoadImageMask"
    assert built.graph[target.node]["inputs"]["image"] == "imagegen/m.png"
    assert target in built.image_inputs
    assert built.origins[target] == "mask"


def test_kontext_draws_at_the_render_size_with_the_source_as_reference() -> None:
    graph, _ = _built(EditKind.KONTEXT)
    types = {node["class_type"] for node in graph.values()}
    assert {"FluxKontextImageScale", "ReferenceLatent", "EmptySD3LatentImage"} <= types
    latent = next(n for n in graph.values() if n["class_type"] == "EmptySD3LatentImage")
    assert (latent["inputs"]["width"], latent["inputs"]["height"]) == (1024, 768)


def _write(folder: Path, name: str, bindings: dict[str, object]) -> None:
    root = folder
    shutil.copy(DEFAULT_WORKFLOWS_DIR / f"{name}.json", root / "t.json")
    (root / "t.bindings.json").write_text(json.dumps(bindings), encoding="utf-8")


def test_an_inpaint_template_without_a_mask_binding_is_broken(tmp_path: Path) -> None:
    spec = json.loads((DEFAULT_WORKFLOWS_DIR / "flux-inpaint.bindings.json").read_text())
    del spec["bindings"]["mask"]
    _write(tmp_path, "flux-inpaint", spec)
    with pytest.raises(FailedPreconditionError) as refused:
        WorkflowLibrary(tmp_path).get("t")
    assert refused.value.reason == "WORKFLOW_INVALID"
    assert "mask" in refused.value.message


def test_a_mask_binding_outside_an_inpaint_template_is_broken(tmp_path: Path) -> None:
    spec = json.loads((DEFAULT_WORKFLOWS_DIR / "flux-inpaint.bindings.json").read_text())
    spec["edit"] = "img2img"
    _write(tmp_path, "flux-inpaint", spec)
    with pytest.raises(FailedPreconditionError) as refused:
        WorkflowLibrary(tmp_path).get("t")
    assert "only 'edit': 'inpaint' templates bind 'mask'" in refused.value.message


def test_the_inpaint_model_choice_takes_the_first_file_the_server_lists() -> None:
    workflow = LIBRARY.get(EDIT_WORKFLOWS[EditKind.INPAINT])
    with_fill = NodeCatalog(
        real_object_info(
            checkpoints=["flux1-dev-fp8.safetensors", "flux1-fill-dev-fp8.safetensors"]
        )
    )
    assert choose_model(workflow, with_fill) == "flux1-fill-dev-fp8.safetensors"
    assert choose_model(workflow, RECORDED) == "flux1-dev-fp8.safetensors"
    assert choose_model(workflow, None) == "flux1-dev-fp8.safetensors"
    # Readiness asks every server for the fallback only.
    assert ("CheckpointLoaderSimple", "ckpt_name", "flux1-dev-fp8.safetensors") in (
        workflow.required_models
    )


def test_a_model_choice_on_an_input_that_loads_no_model_is_broken(tmp_path: Path) -> None:
    spec = json.loads((DEFAULT_WORKFLOWS_DIR / "flux-inpaint.bindings.json").read_text())
    spec["model_choice"]["input"] = "channel"
    spec["model_choice"]["node"] = "4"
    _write(tmp_path, "flux-inpaint", spec)
    with pytest.raises(FailedPreconditionError) as refused:
        WorkflowLibrary(tmp_path).get("t")
    assert "model_choice" in refused.value.message
