"""Validation driven by object_info, with the real server's checks and its gaps."""

from __future__ import annotations

import json
from typing import Any

import pytest

from standins.comfyui import FakeComfyUISettings, RunningFakeComfyUI, run_fake_comfyui
from tests.standins.comfyui.comfy_client import ComfyHttp
from tests.standins.comfyui.reference import graph, probe_image_png

SEED_MAX = 18446744073709551615


def _txt2img(**sampler: Any) -> dict[str, Any]:
    prompt = graph("flux_txt2img")
    prompt["4"]["inputs"].update(width=64, height=64)
    prompt["8"]["inputs"].update({"steps": 2, **sampler})
    return prompt


async def test_object_info_lists_exactly_the_configured_model_files() -> None:
    settings = FakeComfyUISettings(
        checkpoints=["b.safetensors", "a.safetensors"],
        loras=["style.safetensors"],
        controlnets=["canny.safetensors"],
        upscale_models=["2x-tiny.pth"],
    )
    async with run_fake_comfyui(settings) as comfy:
        info = json.loads(comfy.fake.catalog.object_info())

    def options(node: str, name: str) -> Any:
        spec = info[node]["input"]["required"][name]
        return spec[1]["options"] if spec[0] == "COMBO" else spec[0]

    assert options("CheckpointLoaderSimple", "ckpt_name") == ["a.safetensors", "b.safetensors"]
    assert options("LoraLoader", "lora_name") == ["style.safetensors"]
    assert options("LoraLoaderModelOnly", "lora_name") == ["style.safetensors"]
    assert options("ControlNetLoader", "control_net_name") == ["canny.safetensors"]
    assert options("UpscaleModelLoader", "model_name") == ["2x-tiny.pth"]
    assert options("VAELoader", "vae_name") == ["pixel_space"]


async def test_models_routes_list_the_configured_files(api: ComfyHttp) -> None:
    assert await api.get("/models/loras") == ["flux_dummy_lora.safetensors"]
    assert await api.get("/models/controlnet") == ["flux_dummy_controlnet_union.safetensors"]
    assert await api.get("/models/vae") == []


async def test_an_unknown_model_folder_is_404(comfy: RunningFakeComfyUI, api: ComfyHttp) -> None:
    async with api.session.get(comfy.url + "/models/nope") as resp:
        assert resp.status == 404


async def test_a_checkpoint_the_server_lacks_is_not_in_the_list(api: ComfyHttp) -> None:
    prompt = _txt2img()
    prompt["1"]["inputs"]["ckpt_name"] = "sdxl.safetensors"

    status, body = await api.queue(prompt)

    assert status == 400
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    [error] = body["node_errors"]["1"]["errors"]
    assert error["type"] == "value_not_in_list"
    assert error["extra_info"]["input_config"][0] == [
        "flux1-dev-fp8-emptyheader.safetensors",
        "flux1-dev-fp8.safetensors",
    ]


async def test_the_largest_seed_is_accepted_and_one_more_is_not(api: ComfyHttp) -> None:
    ok_status, _ = await api.queue(_txt2img(seed=SEED_MAX))
    bad_status, body = await api.queue(_txt2img(seed=SEED_MAX + 1))

    assert ok_status == 200
    assert bad_status == 400
    [error] = body["node_errors"]["8"]["errors"]
    assert error["type"] == "value_bigger_than_max"
    assert error["message"] == f"Value {SEED_MAX + 1} bigger than max of {SEED_MAX}"
    assert error["extra_info"]["input_config"][1]["max"] == SEED_MAX


async def test_the_int_step_is_not_enforced(api: ComfyHttp) -> None:
    prompt = _txt2img()
    prompt["4"]["inputs"].update(width=1000, height=1000)

    status, body = await api.queue(prompt)

    assert (status, body["node_errors"]) == (200, {})


async def test_steps_are_only_range_checked(api: ComfyHttp) -> None:
    assert (await api.queue(_txt2img(steps=10000)))[0] == 200
    assert (await api.queue(_txt2img(steps=0)))[0] == 400


async def test_a_bad_v3_combo_passes_validation_and_fails_at_execution(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    await api.upload(probe_image_png(), "probe_input.png")
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "probe_input.png"}},
        "2": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "nope.safetensors"}},
        "3": {
            "class_type": "ImageUpscaleWithModel",
            "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]},
        },
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "u"}},
    }

    status, body = await api.queue(prompt)
    entry = await comfy.fake.wait_for_history(body["prompt_id"])

    assert (status, body["node_errors"]) == (200, {})
    error = dict(entry["status"]["messages"])["execution_error"]
    assert error["node_type"] == "UpscaleModelLoader"
    assert error["exception_type"] == "FileNotFoundError"
    assert error["exception_message"] == (
        "Model in folder 'upscale_models' with filename 'nope.safetensors' not found.\n"
    )


async def test_partial_acceptance_runs_only_the_valid_output(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    prompt = _txt2img()
    prompt["11"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["99", 0], "filename_prefix": "x"},
    }

    status, body = await api.queue(prompt)
    entry = await comfy.fake.wait_for_history(body["prompt_id"])

    assert status == 200
    assert body["node_errors"]["11"]["errors"][0]["type"] == "exception_during_validation"
    assert entry["prompt"][4] == ["10"]
    assert list(entry["outputs"]) == ["10"]


async def test_an_output_index_out_of_range_is_an_exception_during_validation(
    api: ComfyHttp,
) -> None:
    prompt = _txt2img()
    prompt["10"]["inputs"]["images"] = ["9", 3]

    status, body = await api.queue(prompt)

    assert status == 400
    [error] = body["node_errors"]["10"]["errors"]
    assert (error["type"], error["details"]) == (
        "exception_during_validation",
        "tuple index out of range",
    )
    assert error["extra_info"]["exception_type"] == "IndexError"
    assert body["error"]["details"] == "Exception when validating node: tuple index out of range"


async def test_a_cycle_is_rejected_instead_of_hanging(api: ComfyHttp) -> None:
    prompt = _txt2img()
    prompt["6"]["inputs"]["conditioning"] = ["8", 0]

    status, body = await api.queue(prompt)

    assert status == 400
    assert any(
        e["type"].startswith("exception_during") or e["type"] == "return_type_mismatch"
        for node in body["node_errors"].values()
        for e in node["errors"]
    )


async def test_a_link_into_a_widget_of_another_type_is_a_type_mismatch(api: ComfyHttp) -> None:
    prompt = _txt2img()
    prompt["8"]["inputs"]["seed"] = ["5", 0]

    status, body = await api.queue(prompt)

    assert status == 400
    [error] = body["node_errors"]["8"]["errors"]
    assert error["details"] == "seed, received_type(CONDITIONING) mismatch input_type(INT)"


async def test_nodes_that_feed_no_output_are_not_validated(api: ComfyHttp) -> None:
    prompt = _txt2img()
    prompt["50"] = {"class_type": "KSampler", "inputs": {"seed": "not a number"}}

    status, body = await api.queue(prompt)

    assert (status, body["node_errors"]) == (200, {})


@pytest.mark.parametrize("body", [[], "text", {"prompt": []}, {"prompt": ["a"]}, 5])
async def test_odd_bodies_fail_like_the_real_handler(
    body: Any, comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    async with api.session.post(comfy.url + "/prompt", json=body) as resp:
        status = resp.status

    expected = {"[]": 400, "'text'": 400, "{'prompt': []}": 400, "{'prompt': ['a']}": 500, "5": 500}
    assert status == expected[repr(body)]


async def test_model_files_added_at_runtime_are_listed_and_accepted(
    comfy: RunningFakeComfyUI, api: ComfyHttp
) -> None:
    prompt = _txt2img()
    prompt["1"]["inputs"]["ckpt_name"] = "flux1-schnell.safetensors"
    assert (await api.queue(prompt))[0] == 400

    comfy.fake.set_model_files(
        checkpoints=["flux1-dev-fp8.safetensors", "flux1-schnell.safetensors"]
    )

    assert (await api.queue(prompt))[0] == 200
    assert await api.get("/models/checkpoints") == [
        "flux1-dev-fp8.safetensors",
        "flux1-schnell.safetensors",
    ]
