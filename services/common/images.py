"""Validation of input images: the one place where untrusted image bytes are checked.

Every service that accepts an image calls :func:`validate_image` before doing anything
else with it. Only PNG, JPEG and WEBP pass, recognised by their content (never by a file
name or a claimed MIME type); oversized, truncated and decompression-bomb files are
refused with INVALID_ARGUMENT naming the request field.

Decoding is CPU-bound (tens of milliseconds for a large photo); call it through
``asyncio.to_thread`` from a handler.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import numbers
from collections.abc import Iterator
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from typing import Literal

from PIL import (
    ExifTags,
    Image,
    ImageFile,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    WebPImagePlugin,
)

from services.common.errors import FieldViolation, InvalidArgumentError

__all__ = [
    "MIN_SOURCE_SIDE",
    "DecodedImage",
    "ImageFormat",
    "ImageHeader",
    "ValidatedImage",
    "ValidatedMask",
    "decode_image",
    "decoded_header",
    "read_header",
    "validate_image",
    "validate_mask",
]

MIN_SOURCE_SIDE = 64
"""Smallest width and height of a source image: below it the latent (1/8 of each side)
has too few 2×2 Flux patches to draw anything recognisable."""

ImageFormat = Literal["PNG", "JPEG", "WEBP"]

_MIME_TYPES: dict[ImageFormat, str] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
}
# Plugins are used directly rather than through Image.open: Image.open runs Pillow's
# global decompression-bomb check, which warns (and process-wide warning filters decide
# what that does) before our own, stricter, per-call limit could refuse the image.
_PLUGINS: dict[ImageFormat, type[ImageFile.ImageFile]] = {
    "PNG": PngImagePlugin.PngImageFile,
    "JPEG": JpegImagePlugin.JpegImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
}
# Pillow keeps RGB (and RGBA, CMYK) pixels in 4 bytes each.
_BYTES_PER_PIXEL = 4
# EXIF orientations 5–8 rotate by a quarter turn, so the displayed image is transposed.
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_CAMERA_TAGS: dict[int, str] = {
    ExifTags.Base.Make: "Make",
    ExifTags.Base.Model: "Model",
    ExifTags.Base.DateTime: "DateTime",
    ExifTags.Base.Software: "Software",
}
_EXIF_IFD_TAGS: dict[int, str] = {
    ExifTags.Base.DateTimeOriginal: "DateTimeOriginal",
    ExifTags.Base.ExposureTime: "ExposureTime",
    ExifTags.Base.FNumber: "FNumber",
    ExifTags.Base.ISOSpeedRatings: "ISO",
    ExifTags.Base.FocalLength: "FocalLength",
    ExifTags.Base.LensModel: "LensModel",
}


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says, read before any pixel is decoded.

    Attributes:
        format: The container format found in the content.
        width: Width in pixels as stored (before EXIF orientation).
        height: Height in pixels as stored.
        decoded_width: Width the decoder will produce (smaller than ``width`` for a JPEG
            decoded at a reduced scale, see ``fit``).
        decoded_height: Height the decoder will produce.
        needs_copy: Whether making it upright RGB takes a second copy of the pixels (a mode
            other than RGB, or an EXIF orientation to apply).
    """

    format: ImageFormat
    width: int
    height: int
    decoded_width: int
    decoded_height: int
    needs_copy: bool

    @property
    def decoded_bytes(self) -> int:
        """Most memory decoding to upright RGB holds at once, at Pillow's 4 bytes per
        pixel: one copy of the pixels, two while converting or turning them."""
        copies = 2 if self.needs_copy else 1
        return copies * _BYTES_PER_PIXEL * self.decoded_width * self.decoded_height


@dataclass(frozen=True)
class ValidatedImage:
    """An input image that passed validation.

    Attributes:
        data: The encoded bytes, unchanged.
        format: The container format found in the content.
        mime_type: Its MIME type, e.g. ``"image/png"``.
        width: Width in pixels as displayed (after EXIF orientation).
        height: Height in pixels as displayed (after EXIF orientation).
        sha256: Hex digest of ``data``; the key of caches of analyses.
    """

    data: bytes
    format: ImageFormat
    mime_type: str
    width: int
    height: int
    sha256: str

    def open(self) -> Image.Image:
        """Decodes the image, upright (EXIF orientation applied) and in RGB.

        Returns:
            A fully loaded RGB image of ``width`` × ``height`` pixels, the caller's own.
        """
        return _upright_rgb(_open_plugin(self.format, self.data))

    def exif(self) -> dict[str, str]:
        """Camera fields from the EXIF data, as text.

        Returns:
            Any of Make, Model, DateTime, DateTimeOriginal, Software, ExposureTime,
            FNumber, ISO, FocalLength and LensModel that the image carries; empty when
            it has no EXIF data.
        """
        with _open_plugin(self.format, self.data) as raw:
            exif = raw.getexif()
            fields = {name: exif.get(tag) for tag, name in _CAMERA_TAGS.items()}
            sub_ifd = exif.get_ifd(ExifTags.IFD.Exif)
            fields.update({name: sub_ifd.get(tag) for tag, name in _EXIF_IFD_TAGS.items()})
        return {
            name: text
            for name, value in fields.items()
            if value is not None and (text := _exif_text(name, value))
        }


@dataclass(frozen=True)
class DecodedImage:
    """A validated image and its upright RGB pixels, which the caller closes.

    Use it as a context manager so the pixels are freed as soon as they are no longer
    needed (``with decode_image(...) as decoded: ...``).

    Attributes:
        image: The validated image (its sizes are the full, upright ones).
        pixels: The upright RGB pixels; for a JPEG decoded with ``fit``, at a reduced
            scale no smaller than ``fit`` on the shorter side the decoder allows.
    """

    image: ValidatedImage
    pixels: Image.Image

    def __enter__(self) -> DecodedImage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.pixels.close()


def read_header(
    data: bytes, *, field: str, max_bytes: int, max_side: int, min_side: int = 1
) -> ImageHeader:
    """The cheap half of validation: size, format and dimensions, no pixel decoded.

    Args:
        data: The encoded image as received.
        field: Path of the request field holding it; named in the error.
        max_bytes: Largest accepted size of ``data``.
        max_side: Largest accepted width or height (and ``max_side²`` pixels).
        min_side: Smallest accepted width and height.

    Returns:
        The header; ``decoded_bytes`` is what a full decode will cost.

    Raises:
        InvalidArgumentError: Empty, too large, not PNG/JPEG/WEBP by content, a side above
            ``max_side``, a decompression bomb, or a header that cannot be read.
    """
    fmt = _check_bytes(data, field=field, max_bytes=max_bytes)
    try:
        with _open_plugin(fmt, data) as image:
            width, height = _check_size(image, field=field, max_side=max_side, min_side=min_side)
            orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
            return ImageHeader(
                fmt,
                width,
                height,
                decoded_width=width,
                decoded_height=height,
                needs_copy=image.mode != "RGB" or orientation != 1,
            )
    except InvalidArgumentError:
        raise
    except Exception as e:
        raise _broken(field, fmt, e) from e


def validate_image(
    data: bytes, *, field: str, max_bytes: int, max_side: int, min_side: int = 1
) -> ValidatedImage:
    """Checks untrusted image bytes and describes the image.

    Every byte of the compressed pixel data is decoded (a truncated or corrupt file must
    fail here, not in the middle of a render), then freed. Nothing is kept, so nothing is
    turned upright or converted, and a JPEG is decoded at 1/8 scale: libjpeg still reads
    and checks all of its entropy-coded data, at a fraction of the work and memory.

    Args:
        data: The encoded image as received.
        field: Path of the request field holding it, e.g. ``"source_image.data"``;
            named in the error.
        max_bytes: Largest accepted size of ``data``.
        max_side: Largest accepted width or height; the pixel count is also bounded
            by ``max_side²``.
        min_side: Smallest accepted width and height (:data:`MIN_SOURCE_SIDE` for a
            source image).

    Returns:
        The validated image with its format, upright size and hash.

    Raises:
        InvalidArgumentError: Empty, too large, not PNG/JPEG/WEBP by content, a side
            above ``max_side`` or below ``min_side``, a decompression bomb, or
            truncated/corrupt data. The ``BadRequest`` violation names ``field``.
    """
    fmt = _check_bytes(data, field=field, max_bytes=max_bytes)
    with _refusing(field, fmt), _open_plugin(fmt, data) as raw:
        width, height = _check_size(raw, field=field, max_side=max_side, min_side=min_side)
        orientation = raw.getexif().get(ExifTags.Base.Orientation, 1)
        if fmt == "JPEG":
            raw.draft(raw.mode, (-(-width // 8), -(-height // 8)))
        raw.load()
    return _validated(data, fmt, width, height, orientation)


def decode_image(
    data: bytes,
    *,
    field: str,
    max_bytes: int,
    max_side: int,
    min_side: int = 1,
    fit: int | None = None,
) -> DecodedImage:
    """Validates like :func:`validate_image` and keeps the upright RGB pixels.

    Args:
        data: The encoded image as received.
        field: Path of the request field holding it; named in the error.
        max_bytes: Largest accepted size of ``data``.
        max_side: Largest accepted width or height.
        min_side: Smallest accepted width and height.
        fit: When set, a JPEG is decoded at the smallest scale (1/2, 1/4, 1/8) that keeps
            both sides at least ``fit`` pixels: every pixel is still read, at a fraction of
            the memory. Other formats decode at full size.

    Returns:
        The validated image and its pixels; close it (or use it in a ``with``) as soon as
        the pixels are no longer needed.

    Raises:
        InvalidArgumentError: As :func:`validate_image`.
    """
    fmt = _check_bytes(data, field=field, max_bytes=max_bytes)
    with _refusing(field, fmt):
        raw = _open_plugin(fmt, data)
        try:
            width, height = _check_size(raw, field=field, max_side=max_side, min_side=min_side)
            orientation = raw.getexif().get(ExifTags.Base.Orientation, 1)
            if fit is not None and fmt == "JPEG":
                raw.draft("RGB", (fit, fit))
        except BaseException:
            raw.close()
            raise
        # Every pixel is decoded now: a truncated or corrupt file must fail here, not in
        # the middle of a render. LOAD_TRUNCATED_IMAGES stays False for that reason.
        pixels = _upright_rgb(raw)
    return DecodedImage(_validated(data, fmt, width, height, orientation), pixels)


@contextlib.contextmanager
def _refusing(field: str, fmt: ImageFormat) -> Iterator[None]:
    """Turns Pillow's complaints about ``field``'s data into INVALID_ARGUMENT."""
    try:
        yield
    except InvalidArgumentError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise _refusal(field, f"refused as a possible decompression bomb ({e})") from e
    except Exception as e:
        raise _broken(field, fmt, e) from e


def _validated(
    data: bytes, fmt: ImageFormat, width: int, height: int, orientation: int
) -> ValidatedImage:
    if orientation in _TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    return ValidatedImage(
        data=data,
        format=fmt,
        mime_type=_MIME_TYPES[fmt],
        width=width,
        height=height,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def decoded_header(header: ImageHeader, *, fit: int | None) -> ImageHeader:
    """The header with the size :func:`decode_image` will decode to for ``fit``.

    Args:
        header: What :func:`read_header` read.
        fit: The ``fit`` that will be passed to :func:`decode_image`.

    Returns:
        The header whose ``decoded_bytes`` is the cost of that decode.
    """
    if fit is None or header.format != "JPEG":
        return header
    scale = _jpeg_scale(header.width, header.height, fit)
    return replace(
        header,
        decoded_width=-(-header.width // scale),
        decoded_height=-(-header.height // scale),
    )


def _upright_rgb(raw: ImageFile.ImageFile) -> Image.Image:
    """Takes over ``raw``: loads it, turns it upright and converts it to RGB.

    Returns ``raw`` itself when it is already RGB (the common case: one copy of the
    pixels), else the converted copy with ``raw`` closed; two copies exist only while
    turning or converting. ``raw`` is closed when this fails.
    """
    try:
        raw.load()
        ImageOps.exif_transpose(raw, in_place=True)
        if raw.mode == "RGB":
            return raw
        rgb = raw.convert("RGB")
    except BaseException:
        raw.close()
        raise
    raw.close()
    return rgb


def _refusal(field: str, description: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{field}: {description}", [FieldViolation(field=field, description=description)]
    )


def _broken(field: str, fmt: ImageFormat, e: Exception) -> InvalidArgumentError:
    # Pillow reports broken data as OSError, SyntaxError, ValueError, EOFError,
    # struct.error or zlib.error depending on where the file breaks.
    return _refusal(field, f"is truncated or corrupt {fmt} data ({type(e).__name__}: {e})")


def _check_bytes(data: bytes, *, field: str, max_bytes: int) -> ImageFormat:
    if not data:
        raise _refusal(field, "is empty; send the encoded PNG, JPEG or WEBP bytes")
    if len(data) > max_bytes:
        raise _refusal(field, f"is {len(data)} bytes; the limit is {max_bytes} bytes")
    fmt = _sniff_format(data)
    if fmt is None:
        found = "a GIF image" if data.startswith((b"GIF87a", b"GIF89a")) else "not an image"
        raise _refusal(
            field, f"is {found}; only PNG, JPEG and WEBP are accepted (judged by content)"
        )
    return fmt


def _check_size(image: Image.Image, *, field: str, max_side: int, min_side: int) -> tuple[int, int]:
    width, height = image.size
    if width > max_side or height > max_side or width * height > max_side * max_side:
        if width * height > 4 * max_side * max_side:
            raise _refusal(
                field,
                f"claims {width}×{height} pixels, far above the {max_side}×{max_side} "
                "limit; refused as a possible decompression bomb",
            )
        raise _refusal(field, f"is {width}×{height} pixels; the limit is {max_side} per side")
    if width < 1 or height < 1:
        raise _refusal(field, f"has no pixels ({width}×{height})")
    if width < min_side or height < min_side:
        raise _refusal(
            field,
            f"is {width}×{height} pixels; it must be at least {min_side} pixels on each side "
            "to render from",
        )
    return width, height


def _jpeg_scale(width: int, height: int, fit: int) -> int:
    """The largest libjpeg reduction (1, 2, 4 or 8) keeping both sides at least ``fit``."""
    scale = 8
    while scale > 1 and min(width, height) < fit * scale:
        scale //= 2
    return scale


@dataclass(frozen=True)
class ValidatedMask:
    """An inpainting mask that passed validation, as one greyscale channel.

    Attributes:
        image: The caller's file as validated (its ``sha256`` names the mask in provenance).
        png: The mask as an 8-bit greyscale PNG, white = change, black = keep.
    """

    image: ValidatedImage
    png: bytes = dataclass_field(repr=False)

    @property
    def sha256(self) -> str:
        """Hex digest of the caller's mask bytes."""
        return self.image.sha256

    def open(self) -> Image.Image:
        """The mask as an ``L`` image (255 = change), the caller's own."""
        with Image.open(io.BytesIO(self.png)) as mask:
            return mask.convert("L")


def validate_mask(
    data: bytes,
    *,
    field: str,
    source: ValidatedImage | None,
    max_bytes: int,
    max_side: int,
) -> ValidatedMask:
    """Checks an inpainting mask: an image like any other, of the source's size.

    A mask is read in one of two ways: a PNG (or WEBP) with transparent pixels marks what
    to change by its transparency (as ComfyUI and image-editing APIs do); any other
    image (or one whose alpha is opaque everywhere) is read as greyscale, white = change
    and black = keep. Grey values are soft edges.

    Args:
        data: The encoded mask as received.
        field: Path of the request field, e.g. ``"mask.data"``; named in the error.
        source: The validated source image; ``None`` when the request has none.
        max_bytes: Largest accepted size of ``data``.
        max_side: Largest accepted width or height.

    Returns:
        The mask, normalised to one greyscale channel.

    Raises:
        InvalidArgumentError: Not a valid image (see :func:`validate_image`), no source
            to apply it to, a size other than the source's, or nothing marked to change.
    """

    def refuse(description: str) -> InvalidArgumentError:
        return InvalidArgumentError(
            f"{field}: {description}", [FieldViolation(field=field, description=description)]
        )

    if source is None:
        raise refuse("needs a source_image to apply to; text-to-image has nothing to mask")
    image = validate_image(data, field=field, max_bytes=max_bytes, max_side=max_side)
    if (image.width, image.height) != (source.width, source.height):
        raise refuse(
            f"is {image.width}×{image.height} pixels; it must match the source image's "
            f"{source.width}×{source.height}"
        )
    with _open_plugin(image.format, data) as raw:
        upright = ImageOps.exif_transpose(raw)
        if upright.mode == "P" and "transparency" in upright.info:
            upright = upright.convert("RGBA")
        alpha = upright.getchannel("A") if "A" in upright.getbands() else None
        # A fully opaque alpha channel carries no mask: read the grey values instead.
        if alpha is not None and alpha.getextrema() != (255, 255):
            mask = ImageOps.invert(alpha)
        else:
            mask = upright.convert("L")
    if mask.getbbox() is None:
        raise refuse("marks nothing to change (white, or transparent, marks what to change)")
    out = io.BytesIO()
    mask.save(out, format="PNG")
    return ValidatedMask(image=image, png=out.getvalue())


def _sniff_format(data: bytes) -> ImageFormat | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _open_plugin(fmt: ImageFormat, data: bytes) -> ImageFile.ImageFile:
    return _PLUGINS[fmt](io.BytesIO(data))


def _exif_text(name: str, value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip("\x00 ")
    if isinstance(value, tuple):
        return ", ".join(_exif_text(name, v) for v in value)
    if isinstance(value, numbers.Real) and not isinstance(value, int):
        seconds = float(value)
        # Exposure times read as photographers write them: 1/125, not 0.008.
        if name == "ExposureTime" and 0 < seconds < 1:
            return f"1/{round(1 / seconds)}"
        return f"{seconds:g}"
    return str(value).strip("\x00 ")
