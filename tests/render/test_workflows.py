"""Workflow templates: the shipped ones, names, and templates an operator drops in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from services.common.errors import FailedPreconditionError, InvalidArgumentError
from services.render.dimensions import SizePolicy
from services.render.settings import DEFAULT_WORKFLOWS_DIR
from services.render.workflows import (
    InputRef,
    Mode,
    OutputSizeRule,
    WorkflowLibrary,
    validate_workflow_name,
)


def test_the_default_templates_are_shipped() -> None:
    library = WorkflowLibrary(DEFAULT_WORKFLOWS_DIR)
    assert {"flux-img2img", "flux-txt2img"} <= set(library.names())
    img2img = library.get("flux-img2img")
    assert img2img.mode is Mode.IMG2IMG
    assert img2img.targets("width") == (InputRef("3", "width"),)
    assert img2img.required_models == (
        ("CheckpointLoaderSimple", "ckpt_name", "flux1-dev-fp8.safetensors"),
    )
    assert library.get("flux-txt2img").mode is Mode.TXT2IMG


@pytest.mark.parametrize("name", ["../flux-img2img", "a/b", "a\\b", ".hidden", "", "x" * 65, "a b"])
def test_names_with_paths_or_odd_characters_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        validate_workflow_name(name)
    assert refused.value.violations[0].field == "workflow"


def test_an_unknown_template_is_refused_listing_the_available_ones() -> None:
    with pytest.raises(FailedPreconditionError) as refused:
        WorkflowLibrary(DEFAULT_WORKFLOWS_DIR).get("flux-outpaint")
    assert refused.value.reason == "WORKFLOW_NOT_FOUND"
    assert "flux-img2img" in refused.value.message


def _copy_defaults(tmp_path: Path) -> Path:
    for path in DEFAULT_WORKFLOWS_DIR.glob("flux-img2img*.json"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_an_operator_adds_a_template_by_dropping_two_files(tmp_path: Path) -> None:
    folder = _copy_defaults(tmp_path)
    library = WorkflowLibrary(folder)
    assert library.names() == ["flux-img2img"]
    shutil.copy(folder / "flux-img2img.json", folder / "my-style.json")
    shutil.copy(folder / "flux-img2img.bindings.json", folder / "my-style.bindings.json")
    assert library.names() == ["flux-img2img", "my-style"]
    assert library.get("my-style").name == "my-style"


def test_a_binding_to_a_missing_node_makes_the_template_invalid(tmp_path: Path) -> None:
    folder = _copy_defaults(tmp_path)
    bindings = json.loads((folder / "flux-img2img.bindings.json").read_text())
    bindings["bindings"]["seed"] = {"node": "99", "input": "seed"}
    (folder / "flux-img2img.bindings.json").write_text(json.dumps(bindings))
    with pytest.raises(FailedPreconditionError) as refused:
        WorkflowLibrary(folder).get("flux-img2img")
    assert refused.value.reason == "WORKFLOW_INVALID"
    assert "99" in refused.value.message


def test_a_value_binding_on_a_link_makes_the_template_invalid(tmp_path: Path) -> None:
    folder = _copy_defaults(tmp_path)
    bindings = json.loads((folder / "flux-img2img.bindings.json").read_text())
    bindings["bindings"]["width"] = {"node": "4", "input": "pixels"}
    (folder / "flux-img2img.bindings.json").write_text(json.dumps(bindings))
    with pytest.raises(FailedPreconditionError, match="is a link"):
        WorkflowLibrary(folder).get("flux-img2img")


def test_a_template_missing_a_required_binding_is_invalid(tmp_path: Path) -> None:
    folder = _copy_defaults(tmp_path)
    bindings = json.loads((folder / "flux-img2img.bindings.json").read_text())
    del bindings["bindings"]["denoise"]
    (folder / "flux-img2img.bindings.json").write_text(json.dumps(bindings))
    with pytest.raises(FailedPreconditionError, match="denoise"):
        WorkflowLibrary(folder).get("flux-img2img")


def test_an_edited_template_is_read_again(tmp_path: Path) -> None:
    folder = _copy_defaults(tmp_path)
    library = WorkflowLibrary(folder)
    assert library.get("flux-img2img").description
    bindings = json.loads((folder / "flux-img2img.bindings.json").read_text())
    bindings["description"] = "edited"
    (folder / "flux-img2img.bindings.json").write_text(json.dumps(bindings))
    assert library.get("flux-img2img").description == "edited"


def test_templates_declare_their_output_size_policy() -> None:
    library = WorkflowLibrary(DEFAULT_WORKFLOWS_DIR)
    assert library.get("flux-img2img").output_size == OutputSizeRule(SizePolicy.SOURCE)
    assert library.get("flux-txt2img").output_size == OutputSizeRule(SizePolicy.REQUESTED)
    upscale = library.get("flux-upscale")
    assert upscale.mode is Mode.IMG2IMG
    assert upscale.output_size == OutputSizeRule(SizePolicy.SCALE, 1.5, 4.0, 2.0)


@pytest.mark.parametrize(
    ("output_size", "problem"),
    [
        ({"policy": "scale", "min_scale": 1.5}, "min_scale and max_scale"),
        ({"policy": "scale", "min_scale": 2, "max_scale": 4, "default_scale": 5}, "<="),
        ({"policy": "source", "max_scale": 4}, "'scale' policy only"),
        ({"policy": "zoom"}, "cannot read"),
    ],
)
def test_a_broken_output_size_makes_the_template_invalid(
    tmp_path: Path, output_size: dict[str, object], problem: str
) -> None:
    folder = _copy_defaults(tmp_path)
    bindings = json.loads((folder / "flux-img2img.bindings.json").read_text())
    bindings["output_size"] = output_size
    (folder / "flux-img2img.bindings.json").write_text(json.dumps(bindings))
    with pytest.raises(FailedPreconditionError, match=problem) as refused:
        WorkflowLibrary(folder).get("flux-img2img")
    assert refused.value.reason == "WORKFLOW_INVALID"


def test_a_txt2img_template_cannot_take_its_size_from_a_source(tmp_path: Path) -> None:
    for path in DEFAULT_WORKFLOWS_DIR.glob("flux-txt2img*.json"):
        shutil.copy(path, tmp_path / path.name)
    bindings = json.loads((tmp_path / "flux-txt2img.bindings.json").read_text())
    bindings["output_size"] = {"policy": "source"}
    (tmp_path / "flux-txt2img.bindings.json").write_text(json.dumps(bindings))
    with pytest.raises(FailedPreconditionError, match="no source"):
        WorkflowLibrary(tmp_path).get("flux-txt2img")
