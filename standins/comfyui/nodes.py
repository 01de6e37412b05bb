"""What the fake's nodes compute.

No models are loaded: MODEL/CLIP/VAE/... are tokens, and a sampler records (seed, denoise,
prompt fingerprint) on the latent. VAEDecode turns that into pixels: the source image (for
img2img) blended with a seed-derived colour field in proportion to denoise. Sizes follow
ComfyUI's rules (VAEEncode crops to multiples of 8, latents are 1/8 of the pixels, scale
nodes round like the real ones), so the PNGs have the size a real render would have.
Unknown node types fall back to a generic pass-through that keeps sizes plausible.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from PIL import Image, ImageFilter, ImageOps, ImageSequence

from standins.comfyui import images as im
from standins.comfyui.catalog import NodeDef
from standins.comfyui.settings import FakeComfyUISettings
from standins.comfyui.validation import FileResolver

__all__ = [
    "IMPLS",
    "STEPPED",
    "FakeNodeError",
    "ImageBatch",
    "Latent",
    "NodeContext",
    "NodeInterrupted",
    "generic_node",
    "get_save_image_path",
    "render_latent",
]

# --------------------------------------------------------------------------- values

_OBJECT_REPR = {
    "MODEL": "comfy.model_patcher.ModelPatcher",
    "CLIP": "comfy.sd.CLIP",
    "VAE": "comfy.sd.VAE",
    "CONTROL_NET": "comfy.controlnet.ControlNet",
    "CLIP_VISION": "comfy.clip_vision.ClipVisionModel",
    "UPSCALE_MODEL": "spandrel.__helpers.model_descriptor.ImageModelDescriptor",
    "SAMPLER": "comfy.samplers.KSAMPLER",
    "GUIDER": "comfy.samplers.CFGGuider",
    "NOISE": "comfy_extras.nodes_custom_sampler.Noise_RandomNoise",
}


@dataclass(frozen=True)
class Token:
    """A model-ish object (MODEL, CLIP, VAE, CONTROL_NET, SAMPLER, ...)."""

    kind: str
    name: str
    patches: tuple[str, ...] = ()
    data: tuple[Any, ...] = ()

    def fingerprint(self) -> str:
        return "|".join([self.kind, self.name, *self.patches])

    def __str__(self) -> str:
        cls = _OBJECT_REPR.get(self.kind, "object")
        return f"<{cls} object at 0x{im.seed_int(self.fingerprint()) & 0x7FFFFFFFFFFF:012x}>"


@dataclass
class ImageBatch:
    """An IMAGE value: same-sized RGB images."""

    images: list[Image.Image]

    @property
    def size(self) -> tuple[int, int]:
        return self.images[0].size

    def __str__(self) -> str:
        w, h = self.size
        return im.tensor_repr(len(self.images), h, w, 3)


@dataclass(frozen=True)
class MaskBatch:
    """A MASK value (only its size matters here)."""

    width: int
    height: int
    batch: int = 1

    def __str__(self) -> str:
        return im.tensor_repr(self.batch, self.height, self.width, 1, 0.0)


@dataclass(frozen=True)
class ControlHint:
    """A ControlNet hint image and its strength, carried by conditioning to the sampler."""

    image: Image.Image
    strength: float
    name: str


@dataclass(frozen=True)
class Conditioning:
    """Encoded prompt text (plus guidance and ControlNet hints)."""

    texts: tuple[str, ...]
    clip: str
    guidance: float | None = None
    controls: tuple[ControlHint, ...] = ()
    zeroed: bool = False

    def fingerprint(self) -> str:
        parts = [self.clip, *self.texts, str(self.guidance), str(self.zeroed)]
        parts += [f"{c.name}:{c.strength}" for c in self.controls]
        return "|".join(parts)

    def __str__(self) -> str:
        extra = {"pooled_output": "tensor([[...]])"}
        if self.guidance is not None:
            extra["guidance"] = str(self.guidance)
        return f"[[tensor([[[...]]]), {extra}]]"


@dataclass(frozen=True)
class SamplerOp:
    """One sampler pass recorded on a latent: what VAEDecode turns into pixels."""

    seed: int
    denoise: float
    key: int
    controls: tuple[ControlHint, ...] = ()


@dataclass(frozen=True)
class Latent:
    """A latent batch: size in latent pixels, the encoded source images and sampler passes."""

    width: int  # in latent pixels (image width / 8)
    height: int
    batch: int
    channels: int = 16
    base: tuple[Image.Image, ...] | None = None
    ops: tuple[SamplerOp, ...] = ()

    @property
    def pixel_size(self) -> tuple[int, int]:
        return self.width * 8, self.height * 8

    def __str__(self) -> str:
        return "{'samples': " + im.tensor_repr(self.batch, self.height, self.width, 4, 0.0) + "}"


@dataclass(frozen=True)
class Sigmas:
    """A noise schedule, reduced to its step count and denoise."""

    steps: int
    denoise: float = 1.0

    def __str__(self) -> str:
        return "tensor([1.0000, ..., 0.0000])"


# --------------------------------------------------------------------------- context


class NodeInterrupted(Exception):
    """comfy.model_management.InterruptProcessingException"""


class FakeNodeError(Exception):
    """An error with a chosen exception_type / message / traceback (injected faults)."""

    def __init__(self, message: str, exception_type: str, frames: list[str]) -> None:
        super().__init__(message)
        self.exception_type = exception_type
        self.frames = frames


class NodeContext(Protocol):
    """What a node implementation may use (provided by the executor)."""

    node_id: str
    class_type: str
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    settings: FakeComfyUISettings
    files: FileResolver
    output_dir: str
    temp_dir: str
    state: dict[str, Any]

    async def progress(self, value: int, total: int, preview: Image.Image | None) -> None: ...

    def send_text(self, text: str) -> None: ...

    def model_files(self, folder: str) -> list[str]: ...


NodeResult = tuple[tuple[Any, ...], dict[str, Any] | None]
NodeImpl = Callable[[NodeContext, dict[str, Any]], Awaitable[NodeResult]]

IMPLS: dict[str, NodeImpl] = {}
STEPPED: set[str] = set()


def node(*names: str, stepped: bool = False) -> Callable[[NodeImpl], NodeImpl]:
    """Register an implementation for class types; ``stepped`` ones report progress."""

    def register(fn: NodeImpl) -> NodeImpl:
        for name in names:
            IMPLS[name] = fn
            if stepped:
                STEPPED.add(name)
        return fn

    return register


def _thread(fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    return asyncio.to_thread(fn, *args)


def _model_not_found(folder: str, name: Any) -> FileNotFoundError:
    return FileNotFoundError(f"Model in folder '{folder}' with filename '{name}' not found.")


# --------------------------------------------------------------------------- loaders


@node("CheckpointLoaderSimple", "CheckpointLoader")
async def _checkpoint_loader(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    name = str(i["ckpt_name"])
    return (Token("MODEL", name), Token("CLIP", name), Token("VAE", name)), None


@node("ImageOnlyCheckpointLoader")
async def _image_only_checkpoint_loader(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    name = str(i["ckpt_name"])
    return (Token("MODEL", name), Token("CLIP_VISION", name), Token("VAE", name)), None


@node("unCLIPCheckpointLoader")
async def _unclip_checkpoint_loader(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    name = str(i["ckpt_name"])
    tokens = (Token("MODEL", name), Token("CLIP", name), Token("VAE", name))
    return (*tokens, Token("CLIP_VISION", name)), None


def _loader(kind: str, folder: str, *inputs: str) -> NodeImpl:
    async def load(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
        names = []
        for key in inputs:
            value = i[key]
            if value not in ctx.model_files(folder) and not (
                folder == "vae" and value == "pixel_space"
            ):
                raise _model_not_found(folder, value)
            names.append(str(value))
        return (Token(kind, "+".join(names)),), None

    return load


node("UNETLoader")(_loader("MODEL", "diffusion_models", "unet_name"))
node("VAELoader")(_loader("VAE", "vae", "vae_name"))
node("CLIPLoader")(_loader("CLIP", "text_encoders", "clip_name"))
node("DualCLIPLoader")(_loader("CLIP", "text_encoders", "clip_name1", "clip_name2"))
node("TripleCLIPLoader")(_loader("CLIP", "text_encoders", "clip_name1", "clip_name2", "clip_name3"))
node("QuadrupleCLIPLoader")(
    _loader("CLIP", "text_encoders", "clip_name1", "clip_name2", "clip_name3", "clip_name4")
)
node("ControlNetLoader")(_loader("CONTROL_NET", "controlnet", "control_net_name"))


@node("DiffControlNetLoader")
async def _diff_controlnet_loader(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    return (Token("CONTROL_NET", str(i["control_net_name"])),), None


@node("UpscaleModelLoader")
async def _upscale_model_loader(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    name = i["model_name"]
    if name not in ctx.model_files("upscale_models"):
        raise _model_not_found("upscale_models", name)
    match = re.search(r"(\d+)x|x(\d+)", str(name), re.IGNORECASE)
    scale = int(match.group(1) or match.group(2)) if match else 4
    return (Token("UPSCALE_MODEL", str(name), data=(max(1, min(scale, 8)),)),), None


@node("LoraLoader")
async def _lora_loader(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    model: Token = i["model"]
    clip: Token = i["clip"]
    sm, sc = i["strength_model"], i["strength_clip"]
    if sm == 0 and sc == 0:
        return (model, clip), None
    tag = f"lora:{i['lora_name']}"
    return (
        replace(model, patches=(*model.patches, f"{tag}@{sm}")),
        replace(clip, patches=(*clip.patches, f"{tag}@{sc}")),
    ), None


@node("LoraLoaderModelOnly")
async def _lora_loader_model_only(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    model: Token = i["model"]
    if i["strength_model"] == 0:
        return (model,), None
    return (
        replace(model, patches=(*model.patches, f"lora:{i['lora_name']}@{i['strength_model']}")),
    ), None


# --------------------------------------------------------------------------- conditioning


@node("CLIPTextEncode")
async def _clip_text_encode(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    clip: Token = i["clip"]
    return (Conditioning((str(i["text"]),), clip.fingerprint()),), None


@node("CLIPTextEncodeFlux")
async def _clip_text_encode_flux(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    clip: Token = i["clip"]
    texts = (str(i["clip_l"]), str(i["t5xxl"]))
    return (Conditioning(texts, clip.fingerprint(), guidance=float(i["guidance"])),), None


@node("FluxGuidance")
async def _flux_guidance(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    cond: Conditioning = i["conditioning"]
    return (replace(cond, guidance=float(i["guidance"])),), None


@node("ConditioningZeroOut")
async def _conditioning_zero_out(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    cond: Conditioning = i["conditioning"]
    return (replace(cond, zeroed=True),), None


@node("SetUnionControlNetType")
async def _set_union_type(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    cn: Token = i["control_net"]
    return (replace(cn, patches=(*cn.patches, f"type:{i['type']}")),), None


def _with_control(
    cond: Conditioning, cn: Token, image: ImageBatch, strength: float
) -> Conditioning:
    hint = ControlHint(image.images[0], float(strength), cn.fingerprint())
    return replace(cond, controls=(*cond.controls, hint))


@node("ControlNetApplyAdvanced")
async def _controlnet_apply_advanced(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    pos: Conditioning = i["positive"]
    neg: Conditioning = i["negative"]
    if i["strength"] == 0:
        return (pos, neg), None
    cn, img, s = i["control_net"], i["image"], i["strength"]
    return (_with_control(pos, cn, img, s), _with_control(neg, cn, img, s)), None


@node("ControlNetApply")
async def _controlnet_apply(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    cond: Conditioning = i["conditioning"]
    if i["strength"] == 0:
        return (cond,), None
    return (_with_control(cond, i["control_net"], i["image"], i["strength"]),), None


# --------------------------------------------------------------------------- images


def _read_image_file(path: str) -> tuple[list[Image.Image], MaskBatch]:
    with Image.open(path) as img:
        frames: list[Image.Image] = []
        has_alpha = False
        size: tuple[int, int] | None = None
        for frame in ImageSequence.Iterator(img):
            frame = ImageOps.exif_transpose(frame)
            if frame.mode == "I":
                frame = frame.point(lambda v: v * (1 / 255))
            rgb = frame.convert("RGB")
            if size is None:
                size = rgb.size
            if rgb.size != size:
                continue
            has_alpha = has_alpha or "A" in frame.getbands()
            frames.append(rgb)
    assert size is not None
    mask = MaskBatch(size[0], size[1], len(frames)) if has_alpha else MaskBatch(64, 64, 1)
    return frames, mask


@node("LoadImage")
async def _load_image(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    frames, mask = await _thread(_read_image_file, ctx.files.path(i["image"]))
    return (ImageBatch(frames), mask), None


@node("LoadImageOutput")
async def _load_image_output(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    frames, mask = await _thread(_read_image_file, ctx.files.path(i["image"], ctx.output_dir))
    return (ImageBatch(frames), mask), None


@node("LoadImageMask")
async def _load_image_mask(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    frames, _ = await _thread(_read_image_file, ctx.files.path(i["image"]))
    w, h = frames[0].size
    return (MaskBatch(w, h, 1),), None


def _map(batch: ImageBatch, fn: Callable[[Image.Image], Image.Image]) -> ImageBatch:
    return ImageBatch([fn(img) for img in batch.images])


async def _map_async(batch: ImageBatch, fn: Callable[[Image.Image], Image.Image]) -> ImageBatch:
    result: ImageBatch = await _thread(_map, batch, fn)
    return result


@node("ImageScale")
async def _image_scale(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    image: ImageBatch = i["image"]
    width, height = i["width"], i["height"]
    if width == 0 and height == 0:
        return (image,), None
    w0, h0 = image.size
    if width == 0:
        width = max(1, round(w0 * height / h0))
    elif height == 0:
        height = max(1, round(h0 * width / w0))
    method, crop = i["upscale_method"], i["crop"]
    out = await _map_async(image, lambda img: im.common_upscale(img, width, height, method, crop))
    return (out,), None


@node("ImageScaleBy")
async def _image_scale_by(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    image: ImageBatch = i["image"]
    w0, h0 = image.size
    width, height = round(w0 * i["scale_by"]), round(h0 * i["scale_by"])
    method = i["upscale_method"]
    out = await _map_async(
        image, lambda img: im.common_upscale(img, width, height, method, "disabled")
    )
    return (out,), None


@node("ImageScaleToTotalPixels")
async def _image_scale_to_total_pixels(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    image: ImageBatch = i["image"]
    w0, h0 = image.size
    total = int(i["megapixels"] * 1024 * 1024)
    scale_by = math.sqrt(total / (w0 * h0))
    width, height = round(w0 * scale_by), round(h0 * scale_by)
    method = i["upscale_method"]
    out = await _map_async(
        image, lambda img: im.common_upscale(img, width, height, method, "disabled")
    )
    return (out,), None


@node("ImageScaleToMaxDimension")
async def _image_scale_to_max_dimension(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    image: ImageBatch = i["image"]
    width, height = image.size
    largest = i["largest_size"]
    if height > width:
        width, height = round((width / height) * largest), largest
    elif width > height:
        width, height = largest, round((height / width) * largest)
    else:
        width = height = largest
    method = i["upscale_method"]
    out = await _map_async(
        image, lambda img: im.common_upscale(img, width, height, method, "disabled")
    )
    return (out,), None


KONTEXT_RESOLUTIONS = [
    (672, 1568), (688, 1504), (720, 1456), (752, 1392), (800, 1328), (832, 1248),
    (880, 1184), (944, 1104), (1024, 1024), (1104, 944), (1184, 880), (1248, 832),
    (1328, 800), (1392, 752), (1456, 720), (1504, 688), (1568, 672),
]  # fmt: skip


@node("FluxKontextImageScale")
async def _flux_kontext_image_scale(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    image: ImageBatch = i["image"]
    w0, h0 = image.size
    aspect = w0 / h0
    _, width, height = min((abs(aspect - w / h), w, h) for w, h in KONTEXT_RESOLUTIONS)
    out = await _map_async(
        image, lambda img: im.common_upscale(img, width, height, "lanczos", "center")
    )
    return (out,), None


@node("ResizeAndPadImage")
async def _resize_and_pad_image(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    image: ImageBatch = i["image"]
    tw, th = i["target_width"], i["target_height"]
    w0, h0 = image.size
    scale = min(tw / w0, th / h0)
    nw, nh = int(w0 * scale), int(h0 * scale)
    color = (255, 255, 255) if i["padding_color"] == "white" else (0, 0, 0)
    method = i["interpolation"]

    def pad(img: Image.Image) -> Image.Image:
        canvas = Image.new("RGB", (tw, th), color)
        canvas.paste(
            im.common_upscale(img, nw, nh, method, "disabled"), ((tw - nw) // 2, (th - nh) // 2)
        )
        return canvas

    return (await _map_async(image, pad),), None


@node("ImageInvert")
async def _image_invert(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    return (await _map_async(i["image"], im.invert),), None


@node("ImageCrop")
async def _image_crop(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    image: ImageBatch = i["image"]
    w0, h0 = image.size
    x, y = min(i["x"], w0 - 1), min(i["y"], h0 - 1)
    x2, y2 = min(x + i["width"], w0), min(y + i["height"], h0)
    return (await _map_async(image, lambda img: img.crop((x, y, x2, y2))),), None


@node("ImageFlip")
async def _image_flip(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    fn = ImageOps.flip if str(i["flip_method"]).startswith("x") else ImageOps.mirror
    return (await _map_async(i["image"], fn),), None


@node("ImageRotate")
async def _image_rotate(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    turns = {"90 degrees": Image.Transpose.ROTATE_270, "180 degrees": Image.Transpose.ROTATE_180,
             "270 degrees": Image.Transpose.ROTATE_90}.get(str(i["rotation"]))  # fmt: skip
    if turns is None:
        return (i["image"],), None
    return (await _map_async(i["image"], lambda img: img.transpose(turns)),), None


@node("ImageBlur", "ImageSharpen")
async def _image_filter(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    flt: ImageFilter.Filter | type[ImageFilter.Filter]
    if ctx.class_type == "ImageBlur":
        radius = int(i["blur_radius"])
        flt = ImageFilter.GaussianBlur(radius) if radius else ImageFilter.BLUR
    else:
        flt = ImageFilter.SHARPEN
    return (await _map_async(i["image"], lambda img: img.filter(flt)),), None


@node("ImageBlend")
async def _image_blend(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    a: ImageBatch = i["image1"]
    b: ImageBatch = i["image2"]
    factor = float(i["blend_factor"])
    out = await _thread(
        lambda: ImageBatch(
            [im.blend(x, b.images[n % len(b.images)], factor) for n, x in enumerate(a.images)]
        )
    )
    return (out,), None


@node("EmptyImage")
async def _empty_image(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    c = int(i["color"])
    color = ((c >> 16) & 0xFF, (c >> 8) & 0xFF, c & 0xFF)
    size = (int(i["width"]), int(i["height"]))
    return (ImageBatch([Image.new("RGB", size, color) for _ in range(int(i["batch_size"]))]),), None


@node("RepeatImageBatch")
async def _repeat_image_batch(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    image: ImageBatch = i["image"]
    return (ImageBatch(image.images * int(i["amount"])),), None


@node("ImageBatch")
async def _image_batch(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    a: ImageBatch = i["image1"]
    b: ImageBatch = i["image2"]
    size = a.size
    extra = [
        img if img.size == size else img.resize(size, Image.Resampling.BILINEAR) for img in b.images
    ]
    return (ImageBatch(a.images + extra),), None


@node("GetImageSize")
async def _get_image_size(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    image: ImageBatch = i["image"]
    width, height = image.size
    batch = len(image.images)
    ctx.send_text(f"width: {width}, height: {height}\n batch size: {batch}")
    return (width, height, batch), None


@node("Canny")
async def _canny(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    low, high = float(i["low_threshold"]), float(i["high_threshold"])
    return (await _map_async(i["image"], lambda img: im.canny(img, low, high)),), None


@node("ImageUpscaleWithModel", stepped=True)
async def _image_upscale_with_model(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    model: Token = i["upscale_model"]
    image: ImageBatch = i["image"]
    scale = int(model.data[0]) if model.data else 4
    w0, h0 = image.size
    tile, overlap = 512, 32
    steps = len(image.images) * math.ceil(h0 / (tile - overlap)) * math.ceil(w0 / (tile - overlap))
    for step in range(steps):
        await asyncio.sleep(ctx.settings.step_delay_s)
        await ctx.progress(step + 1, steps, None)
    size = (w0 * scale, h0 * scale)
    return (await _map_async(image, lambda img: img.resize(size, Image.Resampling.LANCZOS)),), None


# --------------------------------------------------------------------------- latents


def _crop_to_8(img: Image.Image) -> Image.Image:
    w, h = img.size
    w8, h8 = (w // 8) * 8, (h // 8) * 8
    if (w8, h8) == (w, h):
        return img
    x, y = (w % 8) // 2, (h % 8) // 2
    return img.crop((x, y, x + w8, y + h8))


@node("VAEEncode", "VAEEncodeTiled")
async def _vae_encode(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    pixels: ImageBatch = i["pixels"]
    cropped = await _map_async(pixels, _crop_to_8)
    w, h = cropped.size
    latent = Latent(w // 8, h // 8, len(cropped.images), 16, tuple(cropped.images))
    return (latent,), None


@node("EmptySD3LatentImage", "EmptyLatentImage", "EmptyHunyuanLatentVideo")
async def _empty_latent(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    channels = 4 if ctx.class_type == "EmptyLatentImage" else 16
    latent = Latent(
        int(i["width"]) // 8, int(i["height"]) // 8, int(i.get("batch_size", 1)), channels
    )
    return (latent,), None


def _resize_latent(latent: Latent, width: int, height: int, method: str, crop: str) -> Latent:
    base = None
    if latent.base is not None:
        base = tuple(
            im.common_upscale(img, width * 8, height * 8, method, crop) for img in latent.base
        )
    return replace(latent, width=width, height=height, base=base)


@node("LatentUpscale")
async def _latent_upscale(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    latent: Latent = i["samples"]
    width, height = int(i["width"]), int(i["height"])
    if width == 0 and height == 0:
        return (latent,), None
    if width == 0:
        height = max(64, height)
        width = max(64, round(latent.width * height / latent.height))
    elif height == 0:
        width = max(64, width)
        height = max(64, round(latent.height * width / latent.width))
    else:
        width, height = max(64, width), max(64, height)
    out = await _thread(
        _resize_latent, latent, width // 8, height // 8, i["upscale_method"], i["crop"]
    )
    return (out,), None


@node("LatentUpscaleBy")
async def _latent_upscale_by(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    latent: Latent = i["samples"]
    w, h = round(latent.width * i["scale_by"]), round(latent.height * i["scale_by"])
    out = await _thread(_resize_latent, latent, w, h, i["upscale_method"], "disabled")
    return (out,), None


@node("RepeatLatentBatch")
async def _repeat_latent_batch(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    latent: Latent = i["samples"]
    amount = int(i["amount"])
    base = None if latent.base is None else latent.base * amount
    return (replace(latent, batch=latent.batch * amount, base=base),), None


def _render_one(
    latent: Latent, index: int, size: tuple[int, int], progress: float = 1.0
) -> Image.Image:
    if latent.base:
        img = latent.base[index % len(latent.base)]
        if img.size != size:
            img = img.resize(size, Image.Resampling.BILINEAR)
    else:
        img = Image.new("RGB", size, (128, 128, 128))
    for n, op in enumerate(latent.ops):
        share = progress if n == len(latent.ops) - 1 else 1.0
        pattern = im.seed_pattern(size, im.seed_int(op.seed, index, op.key))
        img = im.blend(img, pattern, op.denoise * share)
        for hint in op.controls:
            img = im.blend(img, hint.image, min(0.5, 0.25 * hint.strength) * share)
    return img


def render_latent(latent: Latent) -> list[Image.Image]:
    """Pixels of a latent: source (or grey) blended with each sampler pass's colour field."""
    size = latent.pixel_size
    return [_render_one(latent, b, size) for b in range(latent.batch)]


@node("VAEDecode", "VAEDecodeTiled")
async def _vae_decode(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    latent: Latent = i["samples"]
    return (ImageBatch(await _thread(render_latent, latent)),), None


async def _sample(
    ctx: NodeContext,
    latent: Latent,
    *,
    seed: int,
    total: int,
    denoise: float,
    key: int,
    controls: tuple[ControlHint, ...],
) -> Latent:
    if total <= 0 or denoise <= 0:
        return latent
    op = SamplerOp(seed=seed, denoise=min(1.0, denoise), key=key, controls=controls)
    out = replace(
        latent, ops=(*latent.ops, op), channels=16 if latent.channels == 4 else latent.channels
    )
    preview_size = (max(1, latent.width), max(1, latent.height))
    for step in range(total):
        await asyncio.sleep(ctx.settings.step_delay_s)
        preview = None
        if ctx.settings.previews_enabled:
            preview = await _thread(_render_one, out, 0, preview_size, (step + 1) / total)
        await ctx.progress(step + 1, total, preview)
    return out


def _fingerprint(*parts: Any) -> int:
    return im.seed_int(*[p.fingerprint() if hasattr(p, "fingerprint") else p for p in parts])


@node("KSampler", stepped=True)
async def _ksampler(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    positive: Conditioning = i["positive"]
    key = _fingerprint(i["model"], positive, i["cfg"], i["sampler_name"], i["scheduler"])
    out = await _sample(
        ctx,
        i["latent_image"],
        seed=int(i["seed"]),
        total=int(i["steps"]),
        denoise=float(i["denoise"]),
        key=key,
        controls=positive.controls,
    )
    return (out,), None


@node("KSamplerAdvanced", stepped=True)
async def _ksampler_advanced(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    positive: Conditioning = i["positive"]
    steps, start, end = int(i["steps"]), int(i["start_at_step"]), int(i["end_at_step"])
    total = max(0, min(end, steps) - start)
    key = _fingerprint(i["model"], positive, i["cfg"], i["sampler_name"], i["scheduler"])
    out = await _sample(
        ctx,
        i["latent_image"],
        seed=int(i["noise_seed"]),
        total=total,
        denoise=total / steps if steps else 0.0,
        key=key,
        controls=positive.controls,
    )
    return (out,), None


@node("RandomNoise")
async def _random_noise(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    return (Token("NOISE", str(i["noise_seed"]), data=(int(i["noise_seed"]),)),), None


@node("DisableNoise")
async def _disable_noise(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    return (Token("NOISE", "disabled", data=(0,)),), None


@node("BasicGuider")
async def _basic_guider(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    cond: Conditioning = i["conditioning"]
    name = _fingerprint(i["model"], cond)
    return (Token("GUIDER", str(name), data=(cond,)),), None


@node("CFGGuider")
async def _cfg_guider(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    cond: Conditioning = i["positive"]
    name = _fingerprint(i["model"], cond, i["cfg"])
    return (Token("GUIDER", str(name), data=(cond,)),), None


@node("KSamplerSelect")
async def _ksampler_select(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    return (Token("SAMPLER", str(i["sampler_name"])),), None


@node("BasicScheduler")
async def _basic_scheduler(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    denoise = float(i["denoise"])
    steps = int(i["steps"]) if denoise > 0 else 0
    return (Sigmas(steps, denoise),), None


def _sigmas(value: Any) -> Sigmas:
    return value if isinstance(value, Sigmas) else Sigmas(20, 1.0)


@node("SamplerCustomAdvanced", stepped=True)
async def _sampler_custom_advanced(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    noise: Token = i["noise"]
    guider: Token = i["guider"]
    sigmas = _sigmas(i["sigmas"])
    cond = guider.data[0] if guider.data and isinstance(guider.data[0], Conditioning) else None
    out = await _sample(
        ctx,
        i["latent_image"],
        seed=int(noise.data[0]) if noise.data else 0,
        total=sigmas.steps,
        denoise=sigmas.denoise,
        key=_fingerprint(guider, i["sampler"]),
        controls=cond.controls if cond else (),
    )
    return (out, out), None


@node("SamplerCustom", stepped=True)
async def _sampler_custom(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    positive: Conditioning = i["positive"]
    sigmas = _sigmas(i["sigmas"])
    out = await _sample(
        ctx,
        i["latent_image"],
        seed=int(i["noise_seed"]),
        total=sigmas.steps,
        denoise=sigmas.denoise,
        key=_fingerprint(i["model"], positive, i["cfg"], i["sampler"]),
        controls=positive.controls,
    )
    return (out, out), None


# --------------------------------------------------------------------------- outputs


def _compute_vars(text: str, width: int, height: int) -> str:
    text = text.replace("%width%", str(width)).replace("%height%", str(height))
    now = time.localtime()
    for key, value in (
        ("%year%", str(now.tm_year)),
        ("%month%", str(now.tm_mon).zfill(2)),
        ("%day%", str(now.tm_mday).zfill(2)),
        ("%hour%", str(now.tm_hour).zfill(2)),
        ("%minute%", str(now.tm_min).zfill(2)),
        ("%second%", str(now.tm_sec).zfill(2)),
    ):
        text = text.replace(key, value)
    return text


def get_save_image_path(
    filename_prefix: str, output_dir: str, width: int = 0, height: int = 0
) -> tuple[str, str, int, str]:
    """folder_paths.get_save_image_path: folder, file stem, next counter, subfolder."""

    def map_filename(filename: str) -> tuple[int, str]:
        prefix_len = len(os.path.basename(filename_prefix))
        prefix = filename[: prefix_len + 1]
        try:
            digits = int(filename[prefix_len + 1 :].split("_")[0])
        except ValueError:
            digits = 0
        return digits, prefix

    if "%" in filename_prefix:
        filename_prefix = _compute_vars(filename_prefix, width, height)
    subfolder = os.path.dirname(os.path.normpath(filename_prefix))
    filename = os.path.basename(os.path.normpath(filename_prefix))
    full_output_folder = os.path.join(output_dir, subfolder)
    common = os.path.commonpath((output_dir, os.path.abspath(full_output_folder)))
    if common != output_dir:
        raise Exception(
            "**** ERROR: Saving image outside the output folder is not allowed."
            f"\n full_output_folder: {os.path.abspath(full_output_folder)}"
            f"\n         output_dir: {output_dir}"
            f"\n         commonpath: {common}"
        )
    try:
        counter = (
            max(
                filter(
                    lambda a: (
                        os.path.normcase(a[1][:-1]) == os.path.normcase(filename)
                        and a[1][-1] == "_"
                    ),
                    map(map_filename, os.listdir(full_output_folder)),
                )
            )[0]
            + 1
        )
    except ValueError:
        counter = 1
    except FileNotFoundError:
        os.makedirs(full_output_folder, exist_ok=True)
        counter = 1
    return full_output_folder, filename, counter, subfolder


def _save_images(
    batch: ImageBatch,
    filename_prefix: str,
    output_dir: str,
    folder_type: str,
    compress_level: int,
    chunks: list[tuple[str, str]] | None,
) -> list[dict[str, str]]:
    width, height = batch.size
    folder, filename, counter, subfolder = get_save_image_path(
        filename_prefix, output_dir, width, height
    )
    results = []
    for batch_number, img in enumerate(batch.images):
        name = filename.replace("%batch_num%", str(batch_number))
        file = f"{name}_{counter:05}_.png"
        data = im.png_bytes(img, chunks, compress_level)
        with open(os.path.join(folder, file), "wb") as fh:
            fh.write(data)
        results.append({"filename": file, "subfolder": subfolder, "type": folder_type})
        counter += 1
    return results


def _png_chunks(ctx: NodeContext, i: dict[str, Any]) -> list[tuple[str, str]] | None:
    if ctx.settings.disable_metadata:
        return None
    chunks: list[tuple[str, str]] = []
    prompt = i.get("prompt")
    if prompt is not None:
        chunks.append(("prompt", json.dumps(prompt)))
    extra = i.get("extra_pnginfo")
    if extra is not None:
        for key in extra:
            chunks.append((key, json.dumps(extra[key])))
    return chunks


@node("SaveImage")
async def _save_image(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    prefix = str(i.get("filename_prefix", "ComfyUI"))
    results = await _thread(
        _save_images, i["images"], prefix, ctx.output_dir, "output", 4, _png_chunks(ctx, i)
    )
    return (), {"images": results}


@node("PreviewImage")
async def _preview_image(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    suffix = ctx.state.get("prefix_append")
    if suffix is None:
        rng = random.Random()
        suffix = "_temp_" + "".join(rng.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5))
        ctx.state["prefix_append"] = suffix
    results = await _thread(
        _save_images, i["images"], "ComfyUI" + suffix, ctx.temp_dir, "temp", 1, _png_chunks(ctx, i)
    )
    return (), {"images": results}


@node("PreviewAny")
async def _preview_any(ctx: NodeContext, i: dict[str, Any]) -> NodeResult:
    source = i.get("source")
    value = "None"
    if isinstance(source, str):
        value = source
    elif isinstance(source, int | float | bool):
        value = str(source)
    elif source is not None:
        try:
            value = json.dumps(source)
        except (TypeError, ValueError):
            value = str(source)
    return (), {"text": [value]}


# --------------------------------------------------------------------------- fallback


async def generic_node(ctx: NodeContext, i: dict[str, Any], node_def: NodeDef) -> NodeResult:
    """Outputs for a node type the fake does not model: pass inputs of the same type through.

    Keeps image and latent sizes plausible; other types become tokens or default values.
    """

    def first(kind: type) -> Any:
        return next((v for v in i.values() if isinstance(v, kind)), None)

    outputs: list[Any] = []
    for type_name in node_def.return_types:
        if type_name == "IMAGE":
            value: Any = first(ImageBatch) or ImageBatch(
                [Image.new("RGB", (512, 512), (128, 128, 128))]
            )
        elif type_name == "LATENT":
            value = first(Latent) or Latent(64, 64, 1)
        elif type_name == "MASK":
            value = first(MaskBatch) or MaskBatch(64, 64, 1)
        elif type_name == "CONDITIONING":
            value = first(Conditioning) or Conditioning((), "none")
        elif type_name in ("INT", "FLOAT", "BOOLEAN", "STRING"):
            py = {"INT": int, "FLOAT": float, "BOOLEAN": bool, "STRING": str}[type_name]
            value = next((v for v in i.values() if type(v) is py), py())
        elif type_name == "SIGMAS":
            value = Sigmas(int(i.get("steps", 20)) if isinstance(i.get("steps"), int) else 20)
        else:
            value = first(Token) if type_name in ("MODEL", "CLIP", "VAE") else None
            if not isinstance(value, Token) or value.kind != type_name:
                value = Token(type_name, ctx.class_type)
        outputs.append(value)
    return tuple(outputs), None
