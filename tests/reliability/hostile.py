"""Hypothesis strategies for what a careless or hostile caller may send.

Names aimed at the file system (``../../etc/passwd`` and its encodings), bytes that are
not images or are broken ones, numbers at and past every bound, and text with control
characters, bidirectional overrides, combining marks, emoji and sheer length.
"""

from __future__ import annotations

import io
import struct

from hypothesis import strategies as st
from PIL import Image

__all__ = [
    "DECOY_WORKFLOW",
    "any_float32",
    "broken_images",
    "hostile_names",
    "non_images",
    "odd_texts",
    "path_names",
]

DECOY_WORKFLOW = "outside"
"""A working workflow template placed *beside* the workflows folder: reaching it means a
name escaped the folder."""

PATH_NAMES = (
    "../../etc/passwd",
    "../../../../../../etc/passwd",
    f"../{DECOY_WORKFLOW}",
    f"..%2f{DECOY_WORKFLOW}",
    "..\\..\\windows\\win.ini",
    "/etc/passwd",
    "C:\\Windows\\win.ini",
    "~/.ssh/id_rsa",
    "file:///etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "....//....//etc/passwd",
    "..",
    ".",
    "./flux-img2img",
    "flux-img2img/../flux-txt2img",
    "flux-realism-lora.safetensors/../../../etc/passwd",
    "lora.safetensors\x00.png",
    "\x00",
    "..\u2215..\u2215etc\u2215passwd",  # DIVISION SLASH looks like '/'
    "..\uff0f..\uff0fetc\uff0fpasswd",  # FULLWIDTH SOLIDUS
    ".hidden.safetensors",
    "CON",
    "NUL.safetensors",
    "",
    " ",
    "\t\n",
    "x" * 300,
    "я" * 70,
)
"""Names that try to leave a folder, or are empty, reserved or too long."""

path_names = st.sampled_from(PATH_NAMES)
"""One of :data:`PATH_NAMES`."""

hostile_names = st.one_of(
    path_names,
    st.text(max_size=80),
    st.builds(lambda a, b: f"{a}/{b}", st.text(max_size=20), st.text(max_size=20)),
)
"""A file or template name a caller should not be able to use."""

odd_texts = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=300),
    st.sampled_from(
        [
            "\u202eтекст задом наперёд",
            "e\u0301" * 500,
            "🙂" * 1000,
            "\x00\x01\x02\x1b[31m",
            "Перекрась\u200b стены\u2028в\u2029бежевый",
            "\ufeff" * 10,
        ]
    ),
    # Past and around the default 65,536-character limit.
    st.builds(
        lambda c, n: c * n,
        st.sampled_from(["я", "a", "🙂", "\u202e", " "]),
        st.sampled_from([65_535, 65_536, 65_537, 100_000]),
    ),
)
"""Instructions and descriptions: any Unicode (no lone surrogates, which protobuf cannot
carry), odd on purpose, or very long."""

any_float32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
"""Any float a proto ``float`` field can carry, NaN and infinities included."""


def _image(fmt: str) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (96, 64), (200, 120, 40))
    image.putpixel((3, 3), (0, 0, 255))
    image.save(buffer, format=fmt)
    return buffer.getvalue()


_REAL_IMAGES = {fmt: _image(fmt) for fmt in ("PNG", "JPEG", "WEBP")}

_MAGICS = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"GIF89a",
    b"BM",
    b"<svg xmlns='http://www.w3.org/2000/svg'>",
    b"../../etc/passwd",
)

non_images = st.one_of(
    st.binary(max_size=2048),
    st.builds(lambda magic, tail: magic + tail, st.sampled_from(_MAGICS), st.binary(max_size=512)),
    # A PNG header promising 100000 x 100000 pixels (a decompression bomb), nothing after.
    st.just(
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 10**5, 10**5)
    ),
)
"""Bytes that are not a usable PNG, JPEG or WEBP."""


@st.composite
def broken_images(draw: st.DrawFn) -> bytes:
    """A real small image, truncated or with some bytes overwritten."""
    data = bytearray(_REAL_IMAGES[draw(st.sampled_from(sorted(_REAL_IMAGES)))])
    if draw(st.booleans()):
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)
