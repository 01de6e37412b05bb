"""Checking graphs against object_info, including what ComfyUI itself lets through."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from services.render.comfyui.catalog import NodeCatalog, check_graph
from tests.render.conftest import real_object_info

GRAPHS = Path(__file__).parents[2] / "fixtures" / "comfyui" / "graphs"
CATALOG = NodeCatalog(real_object_info())


def _graph(name: str) -> dict[str, Any]:
    graph: dict[str, Any] = json.loads((GRAPHS / name).read_text())
    return graph


@pytest.mark.parametrize("name", sorted(p.name for p in GRAPHS.glob("*.json")))
def test_graphs_a_real_comfyui_accepted_pass(name: str) -> None:
    assert check_graph(_graph(name), CATALOG) == []


def test_an_int_off_its_step_is_caught_though_comfyui_accepts_it() -> None:
    graph = copy.deepcopy(_graph("flux_txt2img.json"))
    graph["4"]["inputs"]["width"] = 1000
    (problem,) = check_graph(graph, CATALOG)
    assert (problem.node, problem.input, problem.kind) == ("4", "width", "bad_step")


def test_a_bad_v3_combo_value_is_caught_though_comfyui_accepts_it() -> None:
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "2": {
            "class_type": "ImageScaleToTotalPixels",
            "inputs": {"image": ["1", 0], "upscale_method": "sideways", "megapixels": 1.0},
        },
    }
    problems = check_graph(graph, CATALOG)
    assert [(p.node, p.input, p.kind) for p in problems] == [("2", "upscale_method", "not_in_list")]
    assert not problems[0].is_missing_model  # a combo value, not a model file


def test_an_unknown_lora_is_a_missing_model_listing_the_files() -> None:
    catalog = NodeCatalog(real_object_info(loras=["a.safetensors", "b.safetensors"]))
    graph = copy.deepcopy(_graph("flux_img2img.json"))
    graph["20"] = {
        "class_type": "LoraLoaderModelOnly",
        "inputs": {"model": ["1", 0], "lora_name": "c.safetensors", "strength_model": 1.0},
    }
    (problem,) = [p for p in check_graph(graph, catalog) if p.class_type != "LoadImage"]
    assert problem.is_missing_model and problem.missing_file == "lora"
    assert problem.options == ("a.safetensors", "b.safetensors")


@pytest.mark.parametrize(
    ("node", "input_name", "missing_file"),
    [
        ("CheckpointLoaderSimple", "ckpt_name", "model"),
        ("ControlNetLoader", "control_net_name", "controlnet"),
    ],
)
def test_a_missing_file_says_what_kind_of_file_it_is(
    node: str, input_name: str, missing_file: str
) -> None:
    graph = {"1": {"class_type": node, "inputs": {input_name: "nowhere.safetensors"}}}
    (problem,) = check_graph(graph, CATALOG)
    assert (problem.kind, problem.missing_file) == ("not_in_list", missing_file)


def test_links_are_checked_for_existence_and_type() -> None:
    graph = copy.deepcopy(_graph("flux_txt2img.json"))
    graph["9"]["inputs"]["vae"] = ["1", 1]  # CLIP, not VAE
    graph["8"]["inputs"]["latent_image"] = ["99", 0]
    kinds = {(p.node, p.input, p.kind) for p in check_graph(graph, CATALOG)}
    assert kinds == {("9", "vae", "type_mismatch"), ("8", "latent_image", "bad_link")}


def test_unknown_nodes_missing_inputs_and_out_of_range_values_are_caught() -> None:
    graph = copy.deepcopy(_graph("flux_txt2img.json"))
    graph["8"]["inputs"]["denoise"] = 1.5
    del graph["8"]["inputs"]["seed"]
    graph["50"] = {"class_type": "NoSuchNode", "inputs": {}}
    kinds = {(p.node, p.kind) for p in check_graph(graph, CATALOG)}
    assert kinds == {("8", "out_of_range"), ("8", "missing_input"), ("50", "unknown_node")}
