"""HTTP routes and the websocket, each also under ``/api``, as ComfyUI 0.3.64's ``server.py``
has them (status codes, bodies, content types, path checks, the upload rename rule), behind
the fault middleware and ComfyUI's Origin/Host check for loopback servers."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import ipaddress
import json
import logging
import mimetypes
import os
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web
from PIL import Image

from standins.comfyui.catalog import RECORDED, FileResolver
from standins.comfyui.jobs import add_job_routes, is_newer_api

if TYPE_CHECKING:
    from standins.comfyui.server import FakeComfyUI

__all__ = ["StoredUpload", "create_app"]

log = logging.getLogger("fake_comfyui")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
    """Answer a ``/view`` query (filename, type, subfolder, preview, ``channel=rgb``)."""
    if "filename" not in query:
        return web.Response(status=404)
    filename = query["filename"]
    if not filename or filename[0] == "/" or ".." in filename:
        return web.Response(status=400)
    folder = files.dirs.get(query.get("type", "output"))
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
    if "preview" not in query and channel != "rgb":
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
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
        return _image(img.convert("RGB"), filename, "png")


def _route_keys(request: web.Request) -> set[str]:
    """Names a fault may give this request: path or route template, with or without method."""
    resource = request.match_info.route.resource
    names = {request.path, resource.canonical if resource is not None else request.path}
    names = {n[len("/api") :] if n.startswith("/api/") else n for n in names}
    return {"*", *names, *(f"{request.method} {n}" for n in names)}


def _internal_error() -> web.Response:
    """aiohttp's own answer to an unhandled exception (what ComfyUI's clients see)."""
    text = "500 Internal Server Error\n\nServer got itself in trouble"
    response = web.Response(status=500, text=text, content_type="text/plain")
    response.force_close()
    return response


def create_app(fake: FakeComfyUI) -> web.Application:
    """The application serving ``fake``, every route registered plain and under ``/api``."""

    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        active = fake.faults
        if active.refuse_connections:
            # The listener itself is closed by RunningFakeComfyUI; this drops keep-alive
            # connections opened before, without an answer.
            fake.counters.connections_refused += 1
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503)
        await asyncio.sleep(active.http_delay_s)
        remaining = active.http_500_count
        if _route_keys(request) & set(active.http_500_routes) and remaining != 0:
            if remaining is not None:
                active.http_500_count = remaining - 1
            fake.counters.http_500_injected += 1
            fake.request_log.append((request.method, request.path, 500))
            return _internal_error()
        response = await handler(request)
        fake.request_log.append((request.method, request.path, response.status))
        return response

    @web.middleware
    async def origin_only(request: web.Request, handler: Handler) -> web.StreamResponse:
        # ComfyUI refuses browser requests from other sites to a loopback server.
        host = request.headers.get("Host", "").lower()
        origin = urllib.parse.urlparse(request.headers.get("Origin", "")).netloc.lower()
        hostname = urllib.parse.urlsplit("//" + host).hostname or ""
        loopback = hostname == "localhost"
        with contextlib.suppress(ValueError):
            loopback = ipaddress.ip_address(hostname).is_loopback
        if host and origin and host != origin and loopback:
            log.warning("request with non matching host and origin %s != %s, 403", host, origin)
            return web.Response(status=403)
        if request.method == "OPTIONS":
            return web.Response()
        return await handler(request)

    max_upload = 100 * 1024 * 1024  # --max-upload-size
    features = {"supports_preview_metadata": True, "max_upload_size": max_upload}
    app = web.Application(client_max_size=max_upload, middlewares=[faults, origin_only])
    routes = web.RouteTableDef()

    def json_get(path: str, answer: Callable[[web.Request], Any]) -> None:
        async def handler(request: web.Request) -> web.Response:
            body = answer(request)  # a str is JSON text already
            text = body if isinstance(body, str) else json.dumps(body)
            return web.Response(text=text, content_type="application/json")

        routes.get(path)(handler)

    @routes.get("/ws")
    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.rel_url.query.get("clientId", "") or uuid.uuid4().hex
        fake.sockets.pop(sid, None)
        fake.sockets[sid] = ws
        fake.feature_flags[sid] = {}
        if request.transport is not None:
            fake.transports[id(ws)] = request.transport
        try:
            await ws.send_json(
                {"type": "status", "data": {"status": fake.queue_info(), "sid": sid}}
            )
            if fake.client_id == sid and fake.last_node_id is not None:  # a reconnect mid-run
                await ws.send_json({"type": "executing", "data": {"node": fake.last_node_id}})
            first = True
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                    if first and data.get("type") == "feature_flags":
                        fake.feature_flags[sid] = data.get("data", {})
                        await ws.send_json({"type": "feature_flags", "data": features})
                    first = False
                except Exception as ex:
                    log.warning("Invalid message from client %s: %s", sid, ex)
        finally:
            # Pops by id like the real server, even when a newer socket took the id over.
            fake.sockets.pop(sid, None)
            fake.feature_flags.pop(sid, None)
            fake.transports.pop(id(ws), None)
        return ws

    json_get("/embeddings", lambda r: [])
    json_get("/extensions", lambda r: [])
    json_get("/models", lambda r: RECORDED["model_folders"])
    json_get("/system_stats", lambda r: fake.system_stats(r.url.host, r.url.port))
    json_get("/features", lambda r: features)
    json_get("/prompt", lambda r: fake.queue_info())
    json_get("/object_info", lambda r: fake.catalog.object_info())
    json_get("/object_info/{name}", lambda r: fake.catalog.object_info(r.match_info["name"]))
    json_get("/history/{prompt_id}", lambda r: fake.get_history(r.match_info["prompt_id"]))
    json_get("/queue", lambda r: fake.queue_snapshot())

    @routes.get("/models/{folder}")
    async def models(request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        if folder not in RECORDED["model_folders"]:
            return web.Response(status=404)
        return web.json_response(fake.catalog.model_files.get(folder, []))

    @routes.get("/history")
    async def history(request: web.Request) -> web.Response:
        query = request.rel_url.query
        max_items = int(query["max_items"]) if "max_items" in query else None
        offset = int(query.get("offset", -1))
        return web.json_response(fake.get_history(max_items=max_items, offset=offset))

    @routes.post("/upload/image")
    async def upload_image(request: web.Request) -> web.Response:
        post = await request.post()
        image: Any = post.get("image")
        kind = post.get("type", "input")
        if kind not in ("input", "temp", "output"):  # UnboundLocalError in ComfyUI: a 500
            raise UnboundLocalError("cannot access local variable 'type_dir'")
        if not (image and image.file and image.filename):
            return web.Response(status=400)
        subfolder = str(post.get("subfolder", ""))
        # On the event loop, as ComfyUI does: no two uploads race for a folder or a free name.
        folder, overwrite = fake.files.dirs[str(kind)], post.get("overwrite")
        content = image.file.read()
        stored = store_upload(folder, image.filename, subfolder, content, overwrite, str(kind))
        if not isinstance(stored, StoredUpload):
            return web.Response(status=stored)
        fake.counters.uploads += 1
        fake.upload_records.append(stored)
        return web.json_response({"name": stored.name, "subfolder": subfolder, "type": kind})

    @routes.get("/view")
    async def view(request: web.Request) -> web.StreamResponse:
        return await asyncio.to_thread(view_file, fake.files, request.rel_url.query)

    @routes.post("/prompt")
    async def post_prompt(request: web.Request) -> web.Response:
        log.info("got prompt")
        status, body = fake.submit(await request.json())  # not JSON: unhandled, so a 500
        return web.json_response(body, status=status)

    def clear_or_delete(path: str, clear: Callable[[], Any], delete: Callable[[Any], Any]) -> None:
        async def handler(request: web.Request) -> web.Response:
            body = await request.json()
            # The real server's tests: odd bodies (lists, strings) fail or pass as there.
            if "clear" in body and body["clear"]:  # noqa: RUF019
                clear()
            for prompt_id in body["delete"] if "delete" in body else []:  # noqa: SIM401
                delete(prompt_id)
            return web.Response()

        routes.post(path)(handler)

    clear_or_delete("/queue", fake.clear_queue, fake.delete_queue_item)
    clear_or_delete("/history", lambda: fake.history.clear(), lambda i: fake.history.pop(i, None))

    @routes.post("/interrupt")
    async def post_interrupt(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = {}
        fake.interrupt(body.get("prompt_id"))
        return web.Response()

    @routes.post("/free")
    async def post_free(request: web.Request) -> web.Response:
        if (await request.json()).get("free_memory", False):
            fake.free_memory()
        return web.Response()

    if is_newer_api(fake.settings.comfyui_version):
        add_job_routes(routes, fake)

    for route in routes:
        assert isinstance(route, web.RouteDef)
        app.router.add_route(route.method, route.path, route.handler)
        app.router.add_route(route.method, "/api" + route.path, route.handler)
    return app
