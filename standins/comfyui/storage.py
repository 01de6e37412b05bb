"""Uploads (``POST /upload/image``) and ``GET /view`` over the input/, output/, temp/ folders.

The path checks, the rename rule and the status codes are ComfyUI's: an existing name with
identical bytes is reused, different bytes get ``stem (1).ext``; a filename with ``..`` or a
leading ``/`` is a 400, a subfolder escaping the folder a 403.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import os
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web
from PIL import Image

from standins.comfyui.catalog import FileResolver

__all__ = ["StoredUpload", "store_upload", "view_file"]

_FORCE_DOWNLOAD = {
    "text/html",
    "text/html-sandboxed",
    "application/xhtml+xml",
    "text/javascript",
    "text/css",
}


@dataclass(frozen=True)
class StoredUpload:
    """An accepted upload: the name to put into LoadImage and whether bytes were written."""

    name: str
    subfolder: str
    type: str
    size: int
    written: bool


def store_upload(
    folder: str, filename: str, subfolder: str, content: bytes, overwrite: object, kind: str
) -> StoredUpload | int:
    """Write an uploaded file like ComfyUI's ``image_upload``; an int is an HTTP error status."""
    target = os.path.join(folder, os.path.normpath(subfolder))
    path = os.path.abspath(os.path.join(target, filename))
    if os.path.commonpath((folder, path)) != folder:
        return 400
    os.makedirs(target, exist_ok=True)
    stem, ext = os.path.splitext(filename)
    digest = hashlib.sha256(content).digest()
    n = 0
    while overwrite not in ("true", "1") and os.path.exists(path):
        with open(path, "rb") as fh:
            if hashlib.sha256(fh.read()).digest() == digest:
                return StoredUpload(filename, subfolder, kind, len(content), written=False)
        n += 1
        filename = f"{stem} ({n}){ext}"
        path = os.path.join(target, filename)
    with open(path, "wb") as fh:
        fh.write(content)
    return StoredUpload(filename, subfolder, kind, len(content), written=True)


def _image(img: Image.Image, filename: str, image_format: str, **options: int) -> web.Response:
    buffer = io.BytesIO()
    img.save(buffer, format=image_format, **options)
    headers = {"Content-Disposition": f'filename="{filename}"'}
    return web.Response(
        body=buffer.getvalue(), content_type=f"image/{image_format}", headers=headers
    )


def view_file(files: FileResolver, query: Mapping[str, str]) -> web.StreamResponse:
    """Answer a ``/view`` query (filename, type, subfolder, preview, channel)."""
    if "filename" not in query:
        return web.Response(status=404)
    filename, folder = files.annotated(query["filename"])
    if not filename or filename[0] == "/" or ".." in filename:
        return web.Response(status=400)
    folder = folder or files.dirs.get(query.get("type", "output"))
    if folder is None:
        return web.Response(status=400)
    if "subfolder" in query:
        full = os.path.join(folder, query["subfolder"])
        if os.path.commonpath((os.path.abspath(full), folder)) != folder:
            return web.Response(status=403)
        folder = full
    filename = os.path.basename(filename)
    path = os.path.join(folder, filename)
    if not os.path.isfile(path):
        return web.Response(status=404)
    channel = query.get("channel", "")
    if "preview" not in query and channel not in ("rgb", "a"):
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if content_type in _FORCE_DOWNLOAD:
            content_type = "application/octet-stream"
        headers = {"Content-Disposition": f'filename="{filename}"', "Content-Type": content_type}
        return web.FileResponse(path, headers=headers)
    with Image.open(path) as img:
        if "preview" in query:
            preview = query["preview"].split(";")
            image_format = "webp"
            if preview[0] in ("webp", "jpeg") and "a" not in channel:
                image_format = preview[0]
            quality = int(preview[-1]) if preview[-1].isdigit() else 90
            rgb = image_format == "jpeg" or channel == "rgb"
            return _image(
                img.convert("RGB") if rgb else img, filename, image_format, quality=quality
            )
        if channel == "rgb":
            return _image(img.convert("RGB"), filename, "png")
        alpha = img.getchannel("A") if img.mode == "RGBA" else Image.new("L", img.size, 255)
    out = Image.new("RGBA", alpha.size)
    out.putalpha(alpha)
    return _image(out, filename, "png")
