"""What the stand-in's nodes compute (``NODES``; any other node type is a :func:`pass_through`):
deterministic images of the size a real render has, sized by ComfyUI's rules.

Pixels are :class:`Images`, :class:`Mask` and :class:`Latent`; any other value is a
:class:`Token` fingerprinting the inputs that made it, so a LoRA, prompt or hint changes what a
sampler draws. A sampler records (seed, denoise, key) on the latent; VAEDecode blends the
source (or grey) with a colour field derived from them, in proportion to denoise.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast

from PIL import Image, ImageFilter, ImageOps, PngImagePlugin

from standins.comfyui.catalog import RECORDED, FileResolver, NodeDef

__all__ = ["NODES", "Latent", "NodeCall", "NodeImpl", "Token", "pass_through", "preview"]


def fingerprint(*parts: Any) -> str:
    """A short stable hash of values (their ``key`` when they have one)."""
    keys = [getattr(part, "key", part) for part in parts]
    return hashlib.sha256(json.dumps(keys, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Token:
    """A model-like value: only its identity matters (``scale`` of an upscale model)."""

    kind: str
    key: str
    scale: int = 1


@dataclass(frozen=True)
class Images:
    """An IMAGE batch of same-sized RGB images."""

    images: tuple[Image.Image, ...]

    @property
    def size(self) -> tuple[int, int]:
        return self.images[0].size

    @property
    def key(self) -> str:
        return fingerprint(
            *(hashlib.sha256(i.resize((8, 8)).tobytes()).hexdigest() for i in self.images)
        )

    def map(self, fn: Callable[[Image.Image], Image.Image]) -> Images:
        return Images(tuple(fn(img) for img in self.images))


@dataclass(frozen=True)
class Mask:
    """A MASK: its size, and its values (``L``, 255 = 1.0) where they matter (inpainting)."""

    width: int
    height: int
    pixels: Image.Image | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        pixels = None if self.pixels is None else hashlib.sha256(self.pixels.tobytes()).hexdigest()
        return fingerprint("mask", self.width, self.height, pixels)


@dataclass(frozen=True)
class Latent:
    """A latent batch: size in latent pixels, the encoded sources and the sampler passes."""

    width: int
    height: int
    batch: int
    base: Images | None = None
    passes: tuple[tuple[int, float, str], ...] = ()
    noise_mask: Mask | None = None

    @property
    def key(self) -> str:
        return fingerprint(
            self.width, self.height, self.batch, self.base, self.passes, self.noise_mask
        )


@dataclass
class NodeCall:
    """What an implementation sees besides its inputs; ``texts`` are sent as TEXT frames,
    ``images`` (PNG bytes) as the image frames of ``SaveImageWebsocket``."""

    node_id: str
    class_type: str
    files: FileResolver
    model_files: dict[str, list[str]]
    texts: list[str] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)


Result = tuple[Any, ...] | dict[str, Any]
"""Output values, or the ``ui`` dict of an output node."""


@dataclass(frozen=True)
class NodeImpl:
    """A node implementation; ``steps`` (samplers, tiled upscales) counts its progress."""

    run: Callable[[NodeCall, dict[str, Any]], Result]
    steps: Callable[[dict[str, Any]], int] | None = None


RESAMPLE = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "bislerp": Image.Resampling.BICUBIC,
}


def _resize(img: Image.Image, width: int, height: int, method: str, crop: str) -> Image.Image:
    """comfy.utils.common_upscale: optional centre crop to the target aspect, then resize."""
    if method not in RESAMPLE:  # what torch says of a mode it does not know (V3 combos)
        raise NotImplementedError(
            "Input Error: Only 3D, 4D and 5D input Tensors supported (got 4D) for the modes: "
            "nearest | linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact "
            f"(got {method})"
        )
    if crop == "center":
        w, h = img.size
        old, new = w / h, width / height
        x = round((w - w * (new / old)) / 2) if old > new else 0
        y = round((h - h * (old / new)) / 2) if old < new else 0
        img = img.crop((x, y, w - x, h - y))
    return img.resize((width, height), RESAMPLE[method]) if img.size != (width, height) else img


def _scaled(
    i: dict[str, Any], size: Callable[[int, int], tuple[int, int]], crop: str = ""
) -> Result:
    images: Images = i["image"]
    width, height = size(*images.size)
    return (images.map(lambda img: _resize(img, width, height, i["upscale_method"], crop)),)


def _image_scale(call: NodeCall, i: dict[str, Any]) -> Result:
    width, height = i["width"], i["height"]
    if width == 0 and height == 0:
        return (i["image"],)

    def size(w: int, h: int) -> tuple[int, int]:
        if width == 0:
            return max(1, round(w * height / h)), height
        return width, (max(1, round(h * width / w)) if height == 0 else height)

    return _scaled(i, size, i["crop"])


def _total_pixels(call: NodeCall, i: dict[str, Any]) -> Result:
    def size(w: int, h: int) -> tuple[int, int]:
        scale = math.sqrt(int(i["megapixels"] * 1024 * 1024) / (w * h))
        return round(w * scale), round(h * scale)

    return _scaled(i, size)


def _load_image(call: NodeCall, i: dict[str, Any]) -> Result:
    with Image.open(call.files.path(i["image"])) as img:
        image = ImageOps.exif_transpose(img)
        alpha = "A" in image.getbands()
        image = image.convert("RGB")
    return Images((image,)), (Mask(*image.size) if alpha else Mask(64, 64))


def _canny(call: NodeCall, i: dict[str, Any]) -> Result:
    cut = int(255 * (i["low_threshold"] + i["high_threshold"]) / 4)

    def edges(img: Image.Image) -> Image.Image:
        gray = img.convert("L").filter(ImageFilter.GaussianBlur(1)).filter(ImageFilter.FIND_EDGES)
        return gray.point(lambda v: 255 if v > cut else 0).convert("RGB")

    return (i["image"].map(edges),)


def _get_image_size(call: NodeCall, i: dict[str, Any]) -> Result:
    images: Images = i["image"]
    (width, height), batch = images.size, len(images.images)
    call.texts.append(f"width: {width}, height: {height}\n batch size: {batch}")
    return width, height, batch


def _upscale_model(call: NodeCall, i: dict[str, Any]) -> Result:
    name = i["model_name"]
    if name not in call.model_files["upscale_models"]:  # a V3 combo: validation let it by
        raise FileNotFoundError(
            f"Model in folder 'upscale_models' with filename '{name}' not found."
        )
    match = re.search(r"(\d+)x|x(\d+)", name, re.IGNORECASE)
    scale = int(match.group(1) or match.group(2)) if match else 4
    return (Token("UPSCALE_MODEL", fingerprint(name), max(1, min(scale, 8))),)


def _upscale_tiles(i: dict[str, Any]) -> int:
    images: Images = i["image"]
    w, h = images.size
    return len(images.images) * math.ceil(h / 480) * math.ceil(w / 480)  # 512 tiles, 32 overlap


def _upscale(call: NodeCall, i: dict[str, Any]) -> Result:
    images: Images = i["image"]
    size = (images.size[0] * i["upscale_model"].scale, images.size[1] * i["upscale_model"].scale)
    return (images.map(lambda img: img.resize(size, Image.Resampling.LANCZOS)),)


def _vae_encode(call: NodeCall, i: dict[str, Any]) -> Result:
    def crop_to_8(img: Image.Image) -> Image.Image:
        w, h = img.size
        x, y = (w % 8) // 2, (h % 8) // 2
        return img.crop((x, y, x + w // 8 * 8, y + h // 8 * 8)) if w % 8 or h % 8 else img

    pixels: Images = i["pixels"].map(crop_to_8)
    w, h = pixels.size
    return (Latent(w // 8, h // 8, len(pixels.images), pixels),)


def _sampler_steps(i: dict[str, Any]) -> int:
    return int(i["steps"]) if i["denoise"] > 0 else 0


def _ksampler(call: NodeCall, i: dict[str, Any]) -> Result:
    latent: Latent = i["latent_image"]
    if _sampler_steps(i) <= 0:
        return (latent,)
    key = fingerprint(*(v for k, v in sorted(i.items()) if k not in _PER_PASS))
    return (replace(latent, passes=(*latent.passes, (i["seed"], min(1.0, i["denoise"]), key))),)


_PER_PASS = {"seed", "denoise", "steps", "latent_image"}


def _render(latent: Latent, index: int, size: tuple[int, int], share: float = 1.0) -> Image.Image:
    """One image of a latent: the source (or grey) blended with each pass's colour field; with
    a noise mask the source stays outside it (only the masked area is denoised)."""
    source = None
    if latent.base is not None:
        source = latent.base.images[index % len(latent.base.images)]
        source = source.resize(size, Image.Resampling.BILINEAR) if source.size != size else source
    img = source if source is not None else Image.new("RGB", size, (128, 128, 128))
    for n, (seed, denoise, key) in enumerate(latent.passes):
        rng = random.Random(fingerprint(seed, index, key))
        grid = (rng.randint(3, 7), rng.randint(3, 7))
        colours = Image.new("RGB", grid)
        colours.putdata(
            [tuple(rng.randrange(256) for _ in "rgb") for _ in range(grid[0] * grid[1])]
        )
        part = share if n == len(latent.passes) - 1 else 1.0
        img = Image.blend(img, colours.resize(size, Image.Resampling.BICUBIC), denoise * part)
    mask = latent.noise_mask
    if mask is None or mask.pixels is None or source is None:
        return img
    return Image.composite(img, source, mask.pixels.resize(size, Image.Resampling.BILINEAR))


def preview(latent: Latent, share: float, max_size: int) -> bytes:
    """The JPEG preview of a sampler ``share`` of the way (latent-sized, like latent2rgb)."""
    img = _render(latent, 0, (max(1, latent.width), max(1, latent.height)), share)
    if max(img.size) > max_size:
        img.thumbnail((max_size, max_size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _vae_decode(call: NodeCall, i: dict[str, Any]) -> Result:
    latent: Latent = i["samples"]
    size = (latent.width * 8, latent.height * 8)
    return (Images(tuple(_render(latent, b, size) for b in range(latent.batch))),)


def _save_path(prefix: str, output_dir: str, width: int, height: int) -> tuple[str, str, int, str]:
    """folder_paths.get_save_image_path: folder, file stem, next counter, subfolder."""
    prefix = prefix.replace("%width%", str(width)).replace("%height%", str(height))
    subfolder = os.path.dirname(os.path.normpath(prefix))
    filename = os.path.basename(os.path.normpath(prefix))
    folder = os.path.join(output_dir, subfolder)
    if os.path.commonpath((output_dir, os.path.abspath(folder))) != output_dir:
        raise Exception("**** ERROR: Saving image outside the output folder is not allowed.")
    os.makedirs(folder, exist_ok=True)
    counters = [0]
    for name in os.listdir(folder):
        stem, rest = name[: len(filename)], name[len(filename) :]
        if os.path.normcase(stem) == os.path.normcase(filename) and rest.startswith("_"):
            digits = rest[1:].split("_")[0]
            counters.append(int(digits) if digits.isdigit() else 0)
    return folder, filename, max(counters) + 1, subfolder


def _save(call: NodeCall, i: dict[str, Any], kind: str, prefix: str, level: int) -> Result:
    images: Images = i["images"]
    folder, filename, counter, subfolder = _save_path(prefix, call.files.dirs[kind], *images.size)
    info = PngImagePlugin.PngInfo()
    if i.get("prompt") is not None:
        info.add_text("prompt", json.dumps(i["prompt"]))
    for key, value in (i.get("extra_pnginfo") or {}).items():
        info.add_text(key, json.dumps(value))
    results = []
    for index, img in enumerate(images.images):
        file = f"{filename.replace('%batch_num%', str(index))}_{counter + index:05}_.png"
        img.save(os.path.join(folder, file), format="PNG", pnginfo=info, compress_level=level)
        results.append({"filename": file, "subfolder": subfolder, "type": kind})
    return {"images": results}


def _save_websocket(call: NodeCall, i: dict[str, Any]) -> Result:
    """``SaveImageWebsocket``: PNGs for the socket, nothing on disk, an empty ``ui``."""
    for img in i["images"].images:
        out = io.BytesIO()
        img.save(out, format="PNG", compress_level=1)
        call.images.append(out.getvalue())
    return {}


def _preview_image(call: NodeCall, i: dict[str, Any]) -> Result:
    # ComfyUI picks five random letters per node object; a node id's own letters here.
    suffix = "".join(chr(97 + int(c, 16)) for c in fingerprint(call.node_id)[:5])
    return _save(call, i, "temp", f"ComfyUI_temp_{suffix}", 1)


def _kontext_scale(call: NodeCall, i: dict[str, Any]) -> Result:
    """FluxKontextImageScale: to the preferred resolution nearest the aspect, centre crop."""
    width, height = i["image"].size
    aspect = width / height
    _, w, h = min((abs(aspect - w / h), w, h) for w, h in RECORDED["kontext_resolutions"])
    return (i["image"].map(lambda img: _resize(img, w, h, "lanczos", "center")),)


def _reference_latent(call: NodeCall, i: dict[str, Any]) -> Result:
    """ReferenceLatent: the conditioning carries the (optional) reference latent."""
    key = fingerprint("reference", i["conditioning"], i.get("latent"))
    return (Token("CONDITIONING", key),)


def _load_image_mask(call: NodeCall, i: dict[str, Any]) -> Result:
    """LoadImageMask: one channel of the file as the mask (alpha inverted, like ComfyUI)."""
    with Image.open(call.files.path(i["image"])) as img:
        rgba = ImageOps.exif_transpose(img).convert("RGBA")
    channel = rgba.getchannel(i["channel"][0].upper())
    if i["channel"] == "alpha":
        channel = ImageOps.invert(channel)
    return (Mask(*channel.size, channel),)


def _inpaint_conditioning(call: NodeCall, i: dict[str, Any]) -> Result:
    """InpaintModelConditioning: the source latent (cropped to 8), the mask as its noise
    mask when ``noise_mask``; both conditionings gain the masked source."""
    latent = cast(tuple[Latent], _vae_encode(call, {"pixels": i["pixels"], "vae": i["vae"]}))[0]
    mask: Mask = i["mask"]
    if i["noise_mask"]:
        latent = replace(latent, noise_mask=mask)
    positive, negative = (
        Token("CONDITIONING", fingerprint("inpaint", i[name], i["pixels"], mask))
        for name in ("positive", "negative")
    )
    return positive, negative, latent


NODES: dict[str, NodeImpl] = {
    "UpscaleModelLoader": NodeImpl(_upscale_model),
    "LoadImage": NodeImpl(_load_image),
    "ImageScale": NodeImpl(_image_scale),
    "ImageScaleBy": NodeImpl(
        lambda c, i: _scaled(i, lambda w, h: (round(w * i["scale_by"]), round(h * i["scale_by"])))
    ),
    "ImageScaleToTotalPixels": NodeImpl(_total_pixels),
    "ImageInvert": NodeImpl(lambda c, i: (i["image"].map(ImageOps.invert),)),
    "Canny": NodeImpl(_canny),
    "GetImageSize": NodeImpl(_get_image_size),
    "ImageUpscaleWithModel": NodeImpl(_upscale, steps=_upscale_tiles),
    "VAEEncode": NodeImpl(_vae_encode),
    "EmptySD3LatentImage": NodeImpl(
        lambda c, i: (Latent(i["width"] // 8, i["height"] // 8, i["batch_size"]),)
    ),
    "KSampler": NodeImpl(_ksampler, steps=_sampler_steps),
    "VAEDecode": NodeImpl(_vae_decode),
    "SaveImage": NodeImpl(lambda c, i: _save(c, i, "output", i["filename_prefix"], 4)),
    "PreviewImage": NodeImpl(_preview_image),
    "SaveImageWebsocket": NodeImpl(_save_websocket),
    "FluxKontextImageScale": NodeImpl(_kontext_scale),
    "ReferenceLatent": NodeImpl(_reference_latent),
    "LoadImageMask": NodeImpl(_load_image_mask),
    "InpaintModelConditioning": NodeImpl(_inpaint_conditioning),
    "SetLatentNoiseMask": NodeImpl(lambda c, i: (replace(i["samples"], noise_mask=i["mask"]),)),
    "DifferentialDiffusion": NodeImpl(
        lambda c, i: (Token("MODEL", fingerprint("differential", i["model"], i.get("strength"))),)
    ),
}

_PIXELS = {Images: "IMAGE", Latent: "LATENT", Mask: "MASK"}
_DEFAULTS = {"INT": 0, "FLOAT": 0.0, "BOOLEAN": False, "STRING": ""}


def pass_through(call: NodeCall, i: dict[str, Any], node: NodeDef) -> Result:
    """A node type without an implementation: pixel outputs pass the first input of their type
    through (or a default); other outputs are tokens keyed by the node's inputs."""
    given = {_PIXELS.get(type(v), getattr(v, "kind", None)): v for v in reversed(i.values())}
    pixels = {"IMAGE": Images((Image.new("RGB", (512, 512), "grey"),)), "LATENT": Latent(64, 64, 1)}
    outputs: list[Any] = []
    for index, kind in enumerate(node.return_types):
        if kind in ("IMAGE", "LATENT", "MASK"):
            outputs.append(given.get(kind, pixels.get(kind, Mask(64, 64))))
        elif kind in _DEFAULTS:
            outputs.append(_DEFAULTS[kind])
        else:
            key = fingerprint(call.class_type, index, *(i[k] for k in sorted(i)))
            outputs.append(Token(kind, key))
    return tuple(outputs)
