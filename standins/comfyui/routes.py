"""HTTP routes and the websocket of the stand-in, each also served under ``/api``.

Handlers mirror ComfyUI 0.3.64's ``server.py``: same status codes, bodies and content types
(a non-JSON ``POST /prompt`` body is an unhandled exception, which aiohttp answers with
``500`` text/plain). Two middlewares sit in front: the faults (refuse, delay, 500 on chosen
routes) and ComfyUI's Origin/Host check for loopback servers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from standins.comfyui.catalog import MODEL_FOLDERS
from standins.comfyui.storage import StoredUpload, store_upload, view_file

if TYPE_CHECKING:
    from standins.comfyui.server import FakeComfyUI

__all__ = ["create_app"]

log = logging.getLogger("fake_comfyui")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _route_keys(request: web.Request) -> set[str]:
    """Names a fault may give this request: path or route template, with or without method."""
    resource = request.match_info.route.resource
    names = {request.path, resource.canonical if resource is not None else request.path}
    names = {n[len("/api") :] if n.startswith("/api/") else n for n in names}
    return {"*", *names, *(f"{request.method} {n}" for n in names)}


def _internal_error(request: web.Request) -> web.Response:
    """aiohttp's own answer to an unhandled exception (what ComfyUI's clients see)."""
    title, message = "500 Internal Server Error", "Server got itself in trouble"
    if "text/html" in request.headers.get("Accept", ""):
        html = f"<html><head><title>{title}</title></head><body><h1>{title}</h1>{message}"
        response = web.Response(status=500, text=html + "</body></html>", content_type="text/html")
    else:
        response = web.Response(status=500, text=f"{title}\n\n{message}", content_type="text/plain")
    response.force_close()
    return response


def create_app(fake: FakeComfyUI) -> web.Application:
    """Build the aiohttp application serving ``fake``.

    Args:
        fake: the state the handlers read and change.

    Returns:
        An application with every ComfyUI route registered twice (plain and ``/api``).
    """

    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        active = fake.faults
        fake.counters.http_requests += 1
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
            return _internal_error(request)
        response = await handler(request)
        fake.request_log.append((request.method, request.path, response.status))
        return response

    @web.middleware
    async def origin_only(request: web.Request, handler: Handler) -> web.StreamResponse:
        # ComfyUI refuses browser requests from other sites to a loopback server.
        host = request.headers.get("Host", "").lower()
        origin = urllib.parse.urlparse(request.headers.get("Origin", "")).netloc.lower()
        hostname = urllib.parse.urlsplit("//" + host).hostname
        if host and origin and host != origin and hostname and _is_loopback(hostname):
            log.warning("request with non matching host and origin %s != %s, 403", host, origin)
            return web.Response(status=403)
        if request.method == "OPTIONS":
            return web.Response()
        return await handler(request)

    max_upload = int(fake.settings.max_upload_size_mb * 1024 * 1024)
    features = {"supports_preview_metadata": True, "max_upload_size": max_upload}
    app = web.Application(client_max_size=max_upload, middlewares=[faults, origin_only])
    routes = web.RouteTableDef()
    upload_lock = asyncio.Lock()

    def json_get(path: str, answer: Callable[[web.Request], Any]) -> None:
        async def handler(request: web.Request) -> web.Response:
            return web.json_response(answer(request))

        routes.get(path)(handler)

    @routes.get("/")
    async def index(request: web.Request) -> web.Response:
        text = "<!doctype html><title>ComfyUI</title><p>ComfyUI stand-in (no frontend)</p>"
        return web.Response(text=text, content_type="text/html")

    @routes.get("/ws")
    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.rel_url.query.get("clientId", "") or uuid.uuid4().hex
        fake.sockets.pop(sid, None)
        fake.sockets[sid] = ws
        fake.feature_flags[sid] = {}
        fake.counters.ws_connections += 1
        fake.track_transport(ws, request.transport)
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
            fake.track_transport(ws, None)
        return ws

    json_get("/embeddings", lambda r: [])
    json_get("/extensions", lambda r: [])
    json_get("/models", lambda r: MODEL_FOLDERS)
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
        if folder not in MODEL_FOLDERS:
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
        content = image.file.read()
        # ComfyUI stores uploads on its event loop, one at a time: no two uploads race for
        # a folder or a free name.
        async with upload_lock:
            stored = await asyncio.to_thread(
                store_upload,
                fake.files.dirs[str(kind)],
                image.filename,
                subfolder,
                content,
                post.get("overwrite"),
                str(kind),
            )
        if not isinstance(stored, StoredUpload):
            return web.Response(status=stored)
        fake.counters.uploads += 1
        fake.upload_records.append(stored)
        return web.json_response({"name": stored.name, "subfolder": subfolder, "type": kind})

    @routes.get("/view")
    async def view(request: web.Request) -> web.StreamResponse:
        return await asyncio.to_thread(view_file, fake.files, request.rel_url.query)

    @routes.get("/view_metadata/{folder_name}")
    async def view_metadata(request: web.Request) -> web.Response:
        return web.Response(status=404)  # the stand-in's model files have no header

    @routes.post("/prompt")
    async def post_prompt(request: web.Request) -> web.Response:
        log.info("got prompt")
        status, body = fake.submit(await request.json())  # not JSON: unhandled, so a 500
        return web.json_response(body, status=status)

    # The `"key" in body and body["key"]` tests below are the real server's: odd bodies
    # (lists, strings) fail or pass exactly as there.
    @routes.post("/queue")
    async def post_queue(request: web.Request) -> web.Response:
        body = await request.json()
        if "clear" in body and body["clear"]:  # noqa: RUF019
            fake.clear_queue()
        if "delete" in body:
            for prompt_id in body["delete"]:
                fake.delete_queue_item(prompt_id)
        return web.Response()

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

    @routes.post("/history")
    async def post_history(request: web.Request) -> web.Response:
        body = await request.json()
        if "clear" in body and body["clear"]:  # noqa: RUF019
            fake.history.clear()
        if "delete" in body:
            for prompt_id in body["delete"]:
                fake.history.pop(prompt_id, None)
        return web.Response()

    for route in routes:
        assert isinstance(route, web.RouteDef)
        app.router.add_route(route.method, route.path, route.handler)
        app.router.add_route(route.method, "/api" + route.path, route.handler)
    return app
