"""The input/, output/ and temp/ folders: uploads (``POST /upload/image``) and ``GET /view``.

The path checks, the rename-on-collision rule and the status codes are ComfyUI's: an
existing name with identical bytes is reused, different bytes get ``stem (1).ext``; a
filename with ``..`` or a leading ``/`` is a 400, a subfolder escaping the folder a 403.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from PIL import Image

from standins.comfyui.validation import FileResolver

__all__ = ["StoredUpload", "ViewResult", "resolve_upload_dir", "store_upload", "view_file"]

_FORCE_DOWNLOAD = {
    "text/html",
    "text/html-sandboxed",
    "application/xhtml+xml",
    "text/javascript",
    "text/css",
}


@dataclass(frozen=True)
class StoredUpload:
    """Outcome of an upload: the name to put into LoadImage and whether bytes were written."""

    name: str
    subfolder: str
    type: str
    size: int
    written: bool


@dataclass(frozen=True)
class ViewResult:
    """What ``GET /view`` answers: a status, or a file path / encoded body with its type."""

    status: int = 200
    path: str | None = None
    body: bytes | None = None
    content_type: str | None = None
    filename: str | None = None


def resolve_upload_dir(files: FileResolver, dir_type: Any) -> tuple[str, str]:
    """The folder for the form's ``type`` field (default input).

    Raises:
        UnboundLocalError: for an unknown type, as the real handler does (HTTP 500).
    """
    if dir_type is None:
        dir_type = "input"
    if dir_type in ("input", "temp", "output"):
        return files.dirs[dir_type], dir_type
    raise UnboundLocalError("cannot access local variable 'type_dir' where it is not associated")


def store_upload(
    upload_dir: str, filename: str, subfolder: Any, content: bytes, overwrite: Any
) -> StoredUpload | int:
    """Write an uploaded file like ComfyUI's ``image_upload``; an int is an HTTP error status."""
    full_output_folder = os.path.join(upload_dir, os.path.normpath(subfolder))
    filepath = os.path.abspath(os.path.join(full_output_folder, filename))
    if os.path.commonpath((upload_dir, filepath)) != upload_dir:
        return 400
    if not os.path.exists(full_output_folder):
        os.makedirs(full_output_folder)
    stem, ext = os.path.splitext(filename)
    duplicate = False
    if not (overwrite is not None and overwrite in ("true", "1")):
        digest = hashlib.sha256(content).digest()
        i = 1
        while os.path.exists(filepath):
            with open(filepath, "rb") as fh:
                if hashlib.sha256(fh.read()).digest() == digest:
                    duplicate = True
                    break
            filename = f"{stem} ({i}){ext}"
            filepath = os.path.join(full_output_folder, filename)
            i += 1
    if not duplicate:
        with open(filepath, "wb") as fh:
            fh.write(content)
    return StoredUpload(filename, subfolder, "", len(content), not duplicate)


def view_file(files: FileResolver, query: Any) -> ViewResult:
    """Resolve a ``/view`` query (filename, type, subfolder, preview, channel)."""
    if "filename" not in query:
        return ViewResult(404)
    filename, output_dir = files.annotated(query["filename"])
    if not filename:
        return ViewResult(400)
    if filename[0] == "/" or ".." in filename:
        return ViewResult(400)
    if output_dir is None:
        output_dir = files.dirs.get(query.get("type", "output"))
    if output_dir is None:
        return ViewResult(400)
    if "subfolder" in query:
        full_output_dir = os.path.join(output_dir, query["subfolder"])
        if os.path.commonpath((os.path.abspath(full_output_dir), output_dir)) != output_dir:
            return ViewResult(403)
        output_dir = full_output_dir
    filename = os.path.basename(filename)
    file = os.path.join(output_dir, filename)
    if not os.path.isfile(file):
        return ViewResult(404)

    if "preview" in query:
        preview_info = query["preview"].split(";")
        image_format = preview_info[0]
        if image_format not in ("webp", "jpeg") or "a" in query.get("channel", ""):
            image_format = "webp"
        quality = int(preview_info[-1]) if preview_info[-1].isdigit() else 90
        with Image.open(file) as img:
            out: Image.Image = img
            if image_format == "jpeg" or query.get("channel", "") == "rgb":
                out = img.convert("RGB")
            buffer = BytesIO()
            out.save(buffer, format=image_format, quality=quality)
        return ViewResult(
            body=buffer.getvalue(), content_type=f"image/{image_format}", filename=filename
        )

    channel = query.get("channel", "rgba")
    if channel == "rgb":
        with Image.open(file) as img:
            if img.mode == "RGBA":
                r, g, b, _ = img.split()
                rgb = Image.merge("RGB", (r, g, b))
            else:
                rgb = img.convert("RGB")
            buffer = BytesIO()
            rgb.save(buffer, format="PNG")
        return ViewResult(body=buffer.getvalue(), content_type="image/png", filename=filename)
    if channel == "a":
        with Image.open(file) as img:
            alpha = img.split()[3] if img.mode == "RGBA" else Image.new("L", img.size, 255)
        alpha_img = Image.new("RGBA", alpha.size)
        alpha_img.putalpha(alpha)
        buffer = BytesIO()
        alpha_img.save(buffer, format="PNG")
        return ViewResult(body=buffer.getvalue(), content_type="image/png", filename=filename)

    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if content_type in _FORCE_DOWNLOAD:
        content_type = "application/octet-stream"
    return ViewResult(path=file, content_type=content_type, filename=filename)
