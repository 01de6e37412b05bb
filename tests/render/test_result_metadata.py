"""The metadata chunks of result PNGs."""

from __future__ import annotations

import io
import json
import zlib

import pytest
from PIL import Image

from services.common.sampler import SamplerSettings
from services.render.dimensions import Size
from services.render.result_metadata import (
    PARAMETERS_KEY,
    PROVENANCE_KEY,
    RenderRecord,
    encode_png,
    parameters_text,
    provenance_json,
    read_text_chunks,
    with_text_chunks,
)

RECORD = RenderRecord(
    positive="warm beige walls, soft light",
    negative="",
    settings=SamplerSettings(0.85, 28, 1.0, 3.5, "euler", "simple"),
    seed=43,
    variant=1,
    workflow="flux-img2img",
    models=["flux1-dev-fp8.safetensors"],
    loras=[("realism.safetensors", 0.8)],
    controlnet=None,
    source_size=Size(1000, 750),
    render_size=Size(1008, 752),
    output_size=Size(1000, 750),
    resize_filter="lanczos",
    scaled_for_cap=False,
    source_sha256="ab" * 32,
    backend="http://gpu-1:8188",
    prompt_id="p-1",
    provenance={"instruction": "перекрась стены в тёплый бежевый"},
)


def test_the_parameters_block_reads_like_a1111() -> None:
    text = parameters_text(RECORD)
    prompt, negative, settings = text.split("\n")
    assert prompt == "warm beige walls, soft light"
    assert negative == "Negative prompt: "
    assert settings.startswith(
        "Steps: 28, Sampler: euler, Schedule type: simple, CFG scale: 1, "
        "Distilled CFG Scale: 3.5, Seed: 43, Size: 1000x750, Render size: 1008x752, "
        "Model: flux1-dev-fp8, Denoising strength: 0.85"
    )
    assert 'LoRAs: "realism.safetensors:0.8"' in settings  # quoted as A1111 does


def test_chunks_survive_a_round_trip_with_non_latin_text() -> None:
    data = encode_png(
        Image.new("RGB", (8, 8)),
        {PARAMETERS_KEY: parameters_text(RECORD), PROVENANCE_KEY: provenance_json(RECORD)},
    )
    chunks = read_text_chunks(data)
    assert chunks[PARAMETERS_KEY] == parameters_text(RECORD)
    record = json.loads(chunks[PROVENANCE_KEY])
    assert record["provenance"]["instruction"] == "перекрась стены в тёплый бежевый"
    assert record["seed"] == 43 and record["settings"]["steps"] == 28


def test_text_chunks_are_rewritten_without_touching_the_pixels() -> None:
    image = Image.new("RGB", (32, 16), (10, 200, 30))
    original = encode_png(image, {"prompt": "{}", "workflow": "{}"})
    rewritten = with_text_chunks(original, {"parameters": "a sofa, Steps: 20", "imagegen": "тест"})
    assert read_text_chunks(rewritten) == {"parameters": "a sofa, Steps: 20", "imagegen": "тест"}
    with Image.open(io.BytesIO(rewritten)) as opened:
        opened.load()
        assert opened.size == (32, 16)
        assert opened.convert("RGB").tobytes() == image.tobytes()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_encoded_pixels_read_back_exactly_in_every_mode(mode: str) -> None:
    noise = Image.effect_noise((67, 41), 80)  # odd sizes: no row or band lines up by luck
    picture = Image.merge(
        "RGBA", [noise, noise.rotate(90), noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT), noise]
    )
    image = picture.convert(mode)
    data = encode_png(image, {"parameters": "Steps: 20", "imagegen": "тест"})
    assert read_text_chunks(data) == {"parameters": "Steps: 20", "imagegen": "тест"}
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        assert (opened.mode, opened.size) == (image.mode, image.size)
        assert opened.tobytes() == image.tobytes()


def test_a_picture_is_encoded_up_filtered_and_compressed() -> None:
    gradient = Image.linear_gradient("L").resize((512, 384))
    image = Image.merge(
        "RGB", [gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gradient.rotate(180)]
    )
    data = encode_png(image, {})
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        assert opened.tobytes() == image.tobytes()
    raw = zlib.decompress(data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8])
    stride = 1 + 512 * 3
    assert raw[0] == 0  # the first row as it is, every other "Up"
    assert {raw[row] for row in range(stride, len(raw), stride)} == {2}
    assert len(data) < len(image.tobytes()) / 4


def test_text_chunks_refuse_a_truncated_png() -> None:
    original = encode_png(Image.new("RGB", (8, 8)), {})
    with pytest.raises(ValueError, match="truncated"):
        with_text_chunks(original[:-12], {"parameters": "x"})
