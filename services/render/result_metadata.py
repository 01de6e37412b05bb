"""Metadata written into each result, so one file tells how it was made.

Three entries, whatever the format:

| key          | content                                                                 |
|--------------|-------------------------------------------------------------------------|
| `parameters` | the A1111/Forge-style settings block (prompt, steps, sampler, seed …)    |
| `imagegen`   | JSON: settings, seed, workflow, models, the exact resize, provenance    |
| `prompt`     | the ComfyUI API graph that was queued (ComfyUI's own key)               |

Where they go:

| format | `parameters`                                   | `imagegen`, `prompt`        |
|--------|------------------------------------------------|-----------------------------|
| PNG    | text chunk                                     | text chunks                 |
| JPEG   | EXIF UserComment + XMP ``exif:UserComment``    | XMP ``imagegen:*`` elements |
| WEBP   | EXIF UserComment + XMP ``exif:UserComment``    | XMP ``imagegen:*`` elements |

The parameters block reads like the one A1111 and Forge write (``Distilled CFG Scale`` is
Forge's name for Flux guidance), so existing tools show it; a value with a comma is
quoted, as A1111 does. In PNG, chunks whose text is not Latin-1 (a Russian instruction
in the provenance) are written as UTF-8 iTXt by Pillow. In EXIF, the UserComment starts
with the character-code prefix A1111 and Forge write: ``ASCII\\0\\0\\0`` for ASCII text,
else ``UNICODE\\0`` and UTF-16 in the EXIF block's byte order (big-endian, as Pillow
writes it). JPEG holds at most about 64 KB of XMP, so when the graph and provenance do
not fit they are left out there (the parameters always stay).
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from isal import isal_zlib
from PIL import ExifTags, Image, ImageChops, PngImagePlugin

from services.common.sampler import SamplerSettings
from services.render.dimensions import Size

__all__ = [
    "PARAMETERS_KEY",
    "PROMPT_KEY",
    "PROVENANCE_KEY",
    "RenderRecord",
    "encode_png",
    "exif_block",
    "jpeg_xmp_packet",
    "parameters_text",
    "provenance_json",
    "read_metadata",
    "read_text_chunks",
    "user_comment",
    "with_text_chunks",
    "xmp_packet",
]

PARAMETERS_KEY = "parameters"
PROVENANCE_KEY = "imagegen"
PROMPT_KEY = "prompt"


@dataclass(frozen=True)
class RenderRecord:
    """Everything needed to reproduce one variant.

    Attributes:
        positive: Positive prompt.
        negative: Negative prompt.
        settings: Sampler settings.
        seed: The variant's seed.
        variant: Its index within the request.
        workflow: Template name.
        models: Model files the template loads (checkpoint …).
        loras: ``(name, strength)`` in chain order.
        controlnet: ControlNet description (type, model, strength, start, end), if any.
        source_size: Source size (image-to-image), else ``None``.
        render_size: Size Flux drew.
        output_size: Size of the returned image.
        resize_filter: The filter used to go from render to output size.
        scaled_for_cap: True when the render was scaled down to the megapixel cap.
        source_sha256: Hash of the source bytes (image-to-image).
        backend: The ComfyUI that rendered it.
        prompt_id: Its ComfyUI prompt id.
        provenance: The caller's provenance record (analysis, plan, instruction …).
        edit: How the source was edited (``img2img``, ``kontext``, ``inpaint``);
            empty for text-to-image.
        mask_sha256: Hash of the caller's mask; empty without one.
        kept_outside_mask: The result was composited over the source with the
            feathered mask.
    """

    positive: str
    negative: str
    settings: SamplerSettings
    seed: int
    variant: int
    workflow: str
    models: Sequence[str]
    loras: Sequence[tuple[str, float]]
    controlnet: Mapping[str, Any] | None
    source_size: Size | None
    render_size: Size
    output_size: Size
    resize_filter: str
    scaled_for_cap: bool
    source_sha256: str
    backend: str
    prompt_id: str
    provenance: Mapping[str, Any] | None
    edit: str = ""
    mask_sha256: str = ""
    kept_outside_mask: bool = False


def _quote(value: str) -> str:
    # A1111 quotes values that would break its "key: value, key: value" line.
    if any(c in value for c in ',:"'):
        return json.dumps(value, ensure_ascii=False)
    return value


def parameters_text(record: RenderRecord) -> str:
    """The A1111-style ``parameters`` block.

    Args:
        record: The variant.

    Returns:
        Three lines: the prompt, ``Negative prompt: …``, then the settings line.
    """
    s = record.settings
    fields: list[tuple[str, str]] = [
        ("Steps", str(s.steps)),
        ("Sampler", s.sampler_name),
        ("Schedule type", s.scheduler),
        ("CFG scale", f"{s.cfg:g}"),
        ("Distilled CFG Scale", f"{s.guidance:g}"),
        ("Seed", str(record.seed)),
        ("Size", str(record.output_size)),
        ("Render size", str(record.render_size)),
    ]
    if record.models:
        fields.append(("Model", ", ".join(m.rsplit(".", 1)[0] for m in record.models)))
    if record.source_size is not None:
        fields.append(("Denoising strength", f"{s.denoise:g}"))
    if record.loras:
        fields.append(("LoRAs", ", ".join(f"{n}:{w:g}" for n, w in record.loras)))
    if record.controlnet is not None:
        cn = record.controlnet
        fields.append(
            (
                "ControlNet 0",
                f"Module: {cn['type']}, Model: {cn['model']}, Weight: {cn['strength']:g}, "
                f"Guidance Start: {cn['start_percent']:g}, Guidance End: {cn['end_percent']:g}",
            )
        )
    fields.append(("Workflow", record.workflow))
    if record.edit:
        fields.append(("Edit mode", record.edit))
    if record.mask_sha256:
        fields.append(("Mask hash", record.mask_sha256[:10]))
    settings_line = ", ".join(f"{k}: {_quote(v)}" for k, v in fields)
    return f"{record.positive}\nNegative prompt: {record.negative}\n{settings_line}"


def provenance_json(record: RenderRecord) -> str:
    """The ``imagegen`` chunk: the whole record as JSON.

    Args:
        record: The variant.

    Returns:
        Compact JSON text (UTF-8, not ASCII-escaped).
    """
    s = record.settings
    body: dict[str, Any] = {
        "version": 1,
        "variant": record.variant,
        "seed": record.seed,
        "workflow": record.workflow,
        "positive_prompt": record.positive,
        "negative_prompt": record.negative,
        "settings": {
            "denoise": s.denoise,
            "steps": s.steps,
            "cfg": s.cfg,
            "guidance": s.guidance,
            "sampler_name": s.sampler_name,
            "scheduler": s.scheduler,
        },
        "models": list(record.models),
        "loras": [{"name": n, "strength": w} for n, w in record.loras],
        "controlnet": dict(record.controlnet) if record.controlnet is not None else None,
        "resize": {
            "source": _size(record.source_size),
            "render": _size(record.render_size),
            "output": _size(record.output_size),
            "filter": record.resize_filter,
            "scaled_down_to_cap": record.scaled_for_cap,
        },
        "source_sha256": record.source_sha256,
        "edit": {
            "mode": record.edit,
            "mask_sha256": record.mask_sha256,
            "kept_outside_mask": record.kept_outside_mask,
        },
        "backend": record.backend,
        "prompt_id": record.prompt_id,
        "provenance": dict(record.provenance) if record.provenance is not None else None,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _size(size: Size | None) -> dict[str, int] | None:
    return None if size is None else {"width": size.width, "height": size.height}


def encode_png(image: Image.Image, chunks: Mapping[str, str]) -> bytes:
    """Encodes ``image`` as PNG with the given text chunks.

    RGB and RGBA pictures (every rendered result) are written with the "Up" filter and
    compressed by ISA-L's deflate (:func:`_up_filtered_png`): Pillow's encoder
    tries every filter on every row, which costs more than the compression itself and
    makes a 4-megapixel result several times slower to finish. Other modes go through
    Pillow.

    Args:
        image: The picture.
        chunks: Key → text; non-Latin-1 text goes into iTXt chunks.

    Returns:
        The PNG bytes.
    """
    if image.mode in _FAST_PNG_COLOUR_TYPES:
        return with_text_chunks(_up_filtered_png(image), chunks)
    info = PngImagePlugin.PngInfo()
    for key, text in chunks.items():
        info.add_text(key, text)
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info, compress_level=4)
    return out.getvalue()


_FAST_PNG_COLOUR_TYPES = {"RGB": 2, "RGBA": 6}
"""Pillow modes written by :func:`_up_filtered_png` → PNG colour type (8 bits a sample)."""
_ISAL_LEVEL = 1
"""ISA-L's levels run 0 to 3; 1 compresses as well as 2 and 3 here, at the speed of 0."""
_NO_FILTER = b"\x00"
_UP_FILTER = b"\x02"


def _up_filtered_png(image: Image.Image) -> bytes:
    """An 8-bit RGB or RGBA PNG, its rows "Up"-filtered (each byte minus the byte above).

    The filter is a subtraction modulo 256 of the picture shifted down by a row, done by
    Pillow in C. The shift wraps the last row round to the top, so the first row is
    written unfiltered instead. The rows are compressed by ISA-L (``isal``) at level 1, a
    standard zlib stream: on a 4-megapixel result five times faster than zlib's fastest
    setting with its run-length strategy, for about 7 % more bytes. No text chunk is
    written.
    """
    width, height = image.size
    shifted = ImageChops.offset(image, 0, 1)
    filtered = memoryview(ImageChops.subtract_modulo(image, shifted).tobytes())
    stride = width * len(image.getbands())
    rows: list[bytes | memoryview] = [_NO_FILTER, image.crop((0, 0, width, 1)).tobytes()]
    for start in range(stride, len(filtered), stride):
        rows += (_UP_FILTER, filtered[start : start + stride])
    pixels = isal_zlib.compress(b"".join(rows), _ISAL_LEVEL)
    header = struct.pack(">IIBBBBB", width, height, 8, _FAST_PNG_COLOUR_TYPES[image.mode], 0, 0, 0)
    return b"".join(
        (
            _PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", pixels),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNK_TYPES = (b"tEXt", b"zTXt", b"iTXt")


def with_text_chunks(png: bytes, chunks: Mapping[str, str]) -> bytes:
    """``png`` with its text chunks replaced by ``chunks``; the pixels are not re-encoded.

    When ComfyUI already rendered at the output size there is nothing to resize, and
    decoding plus re-compressing a megapixel PNG would cost tens of milliseconds per
    variant just to add metadata. The chunks are written as :func:`encode_png` writes
    them (tEXt for Latin-1 text, iTXt otherwise), just before IEND.

    Args:
        png: A complete PNG file.
        chunks: Key → text.

    Returns:
        The PNG bytes.

    Raises:
        ValueError: ``png`` is not a complete PNG file.
    """
    if not png.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    kept = [_PNG_SIGNATURE]
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        end = pos + 12 + length
        if end > len(png):
            break
        if kind == b"IEND":
            kept += [_text_chunk(key, text) for key, text in chunks.items()]
            kept.append(png[pos:end])
            return b"".join(kept)
        if kind not in _TEXT_CHUNK_TYPES:
            kept.append(png[pos:end])
        pos = end
    raise ValueError("truncated PNG file (no IEND chunk)")


def _text_chunk(key: str, text: str) -> bytes:
    try:
        kind, body = b"tEXt", key.encode("latin-1") + b"\0" + text.encode("latin-1")
    except UnicodeEncodeError:
        # iTXt: keyword, NUL, compression flag and method (none), empty language tag
        # and translated keyword (each NUL-terminated), then UTF-8 text.
        kind, body = b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8")
    return _chunk(kind, body)


def read_text_chunks(data: bytes) -> dict[str, str]:
    """The text chunks of a PNG (tEXt, zTXt and iTXt).

    Args:
        data: PNG bytes.

    Returns:
        Key → text.
    """
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        text: Mapping[str, Any] = getattr(image, "text", {})
        return {str(k): str(v) for k, v in text.items()}


_ASCII_PREFIX = b"ASCII\0\0\0"
_UNICODE_PREFIX = b"UNICODE\0"
_USER_COMMENT = ExifTags.Base.UserComment
# JPEG's APP1 segment holds 65,533 bytes; the XMP header takes 29 of them.
_JPEG_XMP_LIMIT = 65_504
_XMP_NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "imagegen": "urn:imagegen:metadata:1",
}


def user_comment(text: str) -> bytes:
    """An EXIF UserComment value as A1111 and Forge write it.

    Args:
        text: The comment.

    Returns:
        ``ASCII\\0\\0\\0`` + the text when it is ASCII, else ``UNICODE\\0`` + UTF-16BE.
    """
    if text.isascii():
        return _ASCII_PREFIX + text.encode("ascii")
    return _UNICODE_PREFIX + text.encode("utf-16-be")


def _read_user_comment(value: bytes | str) -> str:
    if isinstance(value, str):
        return value
    if value.startswith(_UNICODE_PREFIX):
        return value[len(_UNICODE_PREFIX) :].decode("utf-16-be", "replace")
    if value.startswith(_ASCII_PREFIX):
        return value[len(_ASCII_PREFIX) :].decode("ascii", "replace")
    return value.decode("utf-8", "replace").strip("\0")


def exif_block(parameters: str) -> bytes:
    """The EXIF block of a JPEG or WEBP result: the parameters as UserComment.

    Args:
        parameters: The A1111-style parameters block.

    Returns:
        EXIF bytes for Pillow's ``exif=`` save argument.
    """
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[_USER_COMMENT] = user_comment(parameters)
    return exif.tobytes()


def xmp_packet(metadata: Mapping[str, str], *, limit: int | None = None) -> bytes:
    """An XMP packet holding the metadata.

    The parameters go in ``exif:UserComment`` (the XMP form of the EXIF tag, which
    photo tools show); every entry also goes in an ``imagegen:<key>`` element.

    Args:
        metadata: Key → text (keys are XML names: ``parameters``, ``imagegen``, ``prompt``).
        limit: Largest packet in bytes; entries other than the parameters are left out,
            last first, until it fits. ``None`` = no limit.

    Returns:
        The UTF-8 XMP packet.
    """
    entries = dict(metadata)
    while True:
        packet = _xmp(entries)
        droppable = [key for key in entries if key != PARAMETERS_KEY]
        if limit is None or len(packet) <= limit or not droppable:
            return packet
        del entries[droppable[-1]]


def _xmp(metadata: Mapping[str, str]) -> bytes:
    body = []
    if PARAMETERS_KEY in metadata:
        body.append(
            '<exif:UserComment><rdf:Alt><rdf:li xml:lang="x-default">'
            f"{escape(metadata[PARAMETERS_KEY])}</rdf:li></rdf:Alt></exif:UserComment>"
        )
    body += [f"<imagegen:{key}>{escape(text)}</imagegen:{key}>" for key, text in metadata.items()]
    namespaces = " ".join(f'xmlns:{p}="{uri}"' for p, uri in _XMP_NS.items() if p != "x")
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        f'<x:xmpmeta xmlns:x="{_XMP_NS["x"]}"><rdf:RDF {namespaces}>'
        f'<rdf:Description rdf:about="">{"".join(body)}</rdf:Description>'
        '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def jpeg_xmp_packet(metadata: Mapping[str, str]) -> bytes:
    """:func:`xmp_packet` within the room a JPEG has for XMP."""
    return xmp_packet(metadata, limit=_JPEG_XMP_LIMIT)


def read_metadata(data: bytes) -> dict[str, str]:
    """The metadata of a result, whatever its format.

    Args:
        data: PNG, JPEG or WEBP bytes.

    Returns:
        Key → text: the PNG text chunks, or the XMP ``imagegen:*`` entries with
        ``parameters`` from the EXIF UserComment.
    """
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.format == "PNG":
            text: Mapping[str, Any] = getattr(image, "text", {})
            return {str(k): str(v) for k, v in text.items()}
        found: dict[str, str] = {}
        xmp = image.info.get("xmp")
        if xmp:
            root = ElementTree.fromstring(xmp)
            prefix = "{" + _XMP_NS["imagegen"] + "}"
            for element in root.iter():
                if element.tag.startswith(prefix):
                    found[element.tag.removeprefix(prefix)] = element.text or ""
        comment = image.getexif().get_ifd(ExifTags.IFD.Exif).get(_USER_COMMENT)
        if comment is not None:
            found[PARAMETERS_KEY] = _read_user_comment(comment)
        return found
