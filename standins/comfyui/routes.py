"""HTTP routes and the websocket of the fake ComfyUI, each also served under ``/api``.

Handlers mirror ComfyUI 0.3.64's ``server.py``: same status codes, bodies and content types
(e.g. a non-JSON ``POST /prompt`` body is an unhandled exception, which aiohttp answers
with ``500`` text/plain). Two middlewares sit in front: fault injection (refuse, delay,
500 on chosen routes) and ComfyUI's Origin/Host check for loopback servers.
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
from standins.comfyui.storage import (
    StoredUpload,
    resolve_upload_dir,
    store_upload,
    view_file,
)

if TYPE_CHECKING:
    from standins.comfyui.server import FakeComfyUI

__all__ = ["create_app"]

log = logging.getLogger("fake_comfyui")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _strip_api(path: str) -> str:
    if path == "/api" or not path.startswith("/api/"):
        return path
    return path[len("/api") :]


def _route_keys(request: web.Request) -> set[str]:
    """Names a fault may use for this request: path, route template, with/without method."""
    resource = request.match_info.route.resource
    canonical = _strip_api(resource.canonical if resource is not None else request.path)
    path = _strip_api(request.path)
    return {canonical, path, f"{request.method} {canonical}", f"{request.method} {path}", "*"}


def _internal_error(request: web.Request) -> web.Response:
    """aiohttp's own answer to an unhandled exception (what ComfyUI's clients see)."""
    title, message = "500 Internal Server Error", "Server got itself in trouble"
    if "text/html" in request.headers.get("Accept", ""):
        html = f"<html><head><title>{title}</title></head><body><h1>{title}</h1>{message}"
        resp = web.Response(status=500, text=html + "</body></html>", content_type="text/html")
    else:
        resp = web.Response(status=500, text=f"{title}\n\n{message}", content_type="text/plain")
    resp.force_close()
    return resp


def create_app(fake: FakeComfyUI) -> web.Application:
    """Build the aiohttp application serving ``fake``.

    Args:
        fake: the state the handlers read and change.

    Returns:
        An application with every ComfyUI route registered twice (plain and ``/api``).
    """

    @web.middleware
    async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        faults = fake.faults
        fake.counters.http_requests += 1
        if faults.refuse_connections:
            fake.counters.connections_refused += 1
            # Drop the connection without an answer (the listener itself is closed by
            # RunningFakeComfyUI; this covers keep-alive connections opened before).
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503)
        if faults.http_delay_s:
            await asyncio.sleep(faults.http_delay_s)
        if faults.http_500_routes and _route_keys(request) & set(faults.http_500_routes):
            remaining = faults.http_500_count
            if remaining is None or remaining > 0:
                if remaining is not None:
                    faults.http_500_count = remaining - 1
                fake.counters.http_500_injected += 1
                fake.request_log.append((request.method, request.path, 500))
                return _internal_error(request)
        response = await handler(request)
        fake.request_log.append((request.method, request.path, response.status))
        return response

    @web.middleware
    async def origin_only_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        # ComfyUI blocks browser requests from other sites to a loopback server.
        if "Host" in request.headers and "Origin" in request.headers:
            host_domain = request.headers["Host"].lower()
            origin_domain = urllib.parse.urlparse(request.headers["Origin"]).netloc.lower()
            hostname = urllib.parse.urlsplit("//" + host_domain).hostname
            if (
                hostname
                and _is_loopback(hostname)
                and host_domain
                and origin_domain
                and host_domain != origin_domain
            ):
                log.warning(
                    "WARNING: request with non matching host and origin %s != %s, returning 403",
                    host_domain,
                    origin_domain,
                )
                return web.Response(status=403)
        if request.method == "OPTIONS":
            return web.Response()
        return await handler(request)

    max_upload = int(fake.settings.max_upload_size_mb * 1024 * 1024)
    app = web.Application(
        client_max_size=max_upload, middlewares=[fault_middleware, origin_only_middleware]
    )
    routes = web.RouteTableDef()

    @routes.get("/")
    async def index(request: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><title>ComfyUI</title><p>fake ComfyUI stand-in (no frontend)</p>",
            content_type="text/html",
        )

    @routes.get("/ws")
    async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.rel_url.query.get("clientId", "")
        if sid:
            fake.sockets.pop(sid, None)
        else:
            sid = uuid.uuid4().hex
        fake.sockets[sid] = ws
        fake.sockets_metadata[sid] = {"feature_flags": {}}
        fake.counters.ws_connections += 1
        fake.track_transport(ws, request.transport)
        try:
            await ws.send_json(
                {"type": "status", "data": {"status": fake.queue_info(), "sid": sid}}
            )
            if fake.client_id == sid and fake.last_node_id is not None:
                await ws.send_json({"type": "executing", "data": {"node": fake.last_node_id}})
            first_message = True
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    log.warning("ws connection closed with exception %s", ws.exception())
                elif msg.type == WSMsgType.TEXT:
                    try:
                        data = json.loads(msg.data)
                        if first_message and data.get("type") == "feature_flags":
                            metadata = fake.sockets_metadata.setdefault(sid, {})
                            metadata["feature_flags"] = data.get("data", {})
                            flags = {
                                "supports_preview_metadata": True,
                                "max_upload_size": max_upload,
                            }
                            await ws.send_json({"type": "feature_flags", "data": flags})
                        first_message = False
                    except json.JSONDecodeError:
                        log.warning("Invalid JSON received from client %s: %s", sid, msg.data)
                    except Exception as ex:
                        log.error("Error processing WebSocket message: %s", ex)
        finally:
            # Pops by id like the real server, even when a newer socket took the id over.
            fake.sockets.pop(sid, None)
            fake.sockets_metadata.pop(sid, None)
            fake.untrack_transport(ws)
        return ws

    @routes.get("/embeddings")
    async def get_embeddings(request: web.Request) -> web.Response:
        return web.json_response([])

    @routes.get("/extensions")
    async def get_extensions(request: web.Request) -> web.Response:
        return web.json_response([])

    @routes.get("/models")
    async def list_model_types(request: web.Request) -> web.Response:
        return web.json_response(MODEL_FOLDERS)

    @routes.get("/models/{folder}")
    async def get_models(request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        if folder not in MODEL_FOLDERS:
            return web.Response(status=404)
        return web.json_response(fake.catalog.model_files.get(folder, []))

    upload_lock = asyncio.Lock()

    @routes.post("/upload/image")
    async def upload_image(request: web.Request) -> web.Response:
        post = await request.post()
        image: Any = post.get("image")
        upload_dir, upload_type = resolve_upload_dir(fake.files, post.get("type"))
        if not (image and image.file):
            return web.Response(status=400)
        if not image.filename:
            return web.Response(status=400)
        subfolder: Any = post.get("subfolder", "")
        content = image.file.read()
        # ComfyUI stores uploads on its event loop, one at a time; the lock keeps that
        # (no two first uploads racing to create a folder or claim the same free name).
        async with upload_lock:
            stored = await asyncio.to_thread(
                store_upload, upload_dir, image.filename, subfolder, content, post.get("overwrite")
            )
        if not isinstance(stored, StoredUpload):
            return web.Response(status=stored)
        fake.record_upload(stored, upload_type)
        return web.json_response({"name": stored.name, "subfolder": subfolder, "type": upload_type})

    @routes.get("/view")
    async def view_image(request: web.Request) -> web.StreamResponse:
        result = await asyncio.to_thread(view_file, fake.files, request.rel_url.query)
        if result.status != 200:
            return web.Response(status=result.status)
        headers = {"Content-Disposition": f'filename="{result.filename}"'}
        if result.path is not None:
            headers["Content-Type"] = result.content_type or "application/octet-stream"
            return web.FileResponse(result.path, headers=headers)
        return web.Response(body=result.body, content_type=result.content_type, headers=headers)

    @routes.get("/view_metadata/{folder_name}")
    async def view_metadata(request: web.Request) -> web.Response:
        # The fake's model files have no safetensors header, so there is never metadata.
        return web.Response(status=404)

    @routes.get("/system_stats")
    async def system_stats(request: web.Request) -> web.Response:
        return web.json_response(fake.system_stats(request.url.host, request.url.port))

    @routes.get("/features")
    async def features(request: web.Request) -> web.Response:
        return web.json_response({"supports_preview_metadata": True, "max_upload_size": max_upload})

    @routes.get("/prompt")
    async def get_prompt(request: web.Request) -> web.Response:
        return web.json_response(fake.queue_info())

    @routes.get("/object_info")
    async def get_object_info(request: web.Request) -> web.Response:
        return web.json_response(fake.catalog.object_info())

    @routes.get("/object_info/{node_class}")
    async def get_object_info_node(request: web.Request) -> web.Response:
        return web.json_response(fake.catalog.object_info_for(request.match_info["node_class"]))

    @routes.get("/history")
    async def get_history(request: web.Request) -> web.Response:
        max_items = request.rel_url.query.get("max_items", None)
        offset = request.rel_url.query.get("offset", None)
        return web.json_response(
            fake.get_history(
                max_items=int(max_items) if max_items is not None else None,
                offset=int(offset) if offset is not None else -1,
            )
        )

    @routes.get("/history/{prompt_id}")
    async def get_history_prompt_id(request: web.Request) -> web.Response:
        return web.json_response(fake.get_history(prompt_id=request.match_info["prompt_id"]))

    @routes.get("/queue")
    async def get_queue(request: web.Request) -> web.Response:
        return web.json_response(fake.queue_snapshot())

    @routes.post("/prompt")
    async def post_prompt(request: web.Request) -> web.Response:
        log.info("got prompt")
        json_data = await request.json()  # not JSON: unhandled, i.e. 500 text/plain
        status, body = fake.submit(json_data)
        return web.json_response(body, status=status)

    # The `"key" in body and body["key"]` tests below are the real server's; they make odd
    # bodies (lists, strings) fail or pass exactly as there.
    @routes.post("/queue")
    async def post_queue(request: web.Request) -> web.Response:
        json_data = await request.json()
        if "clear" in json_data and json_data["clear"]:  # noqa: RUF019
            fake.wipe_queue(requested=True)
        if "delete" in json_data:
            for id_to_delete in json_data["delete"]:
                fake.delete_queue_item(id_to_delete)
        return web.Response(status=200)

    @routes.post("/interrupt")
    async def post_interrupt(request: web.Request) -> web.Response:
        try:
            json_data = await request.json()
        except json.JSONDecodeError:
            json_data = {}
        fake.interrupt(json_data.get("prompt_id"))
        return web.Response(status=200)

    @routes.post("/free")
    async def post_free(request: web.Request) -> web.Response:
        json_data = await request.json()
        if json_data.get("free_memory", False):
            fake.free_memory()
        return web.Response(status=200)

    @routes.post("/history")
    async def post_history(request: web.Request) -> web.Response:
        json_data = await request.json()
        if "clear" in json_data and json_data["clear"]:  # noqa: RUF019
            fake.history.clear()
        if "delete" in json_data:
            for id_to_delete in json_data["delete"]:
                fake.history.pop(id_to_delete, None)
        return web.Response(status=200)

    for route in routes:
        assert isinstance(route, web.RouteDef)
        app.router.add_route(route.method, route.path, route.handler)
        app.router.add_route(route.method, "/api" + route.path, route.handler)
    return app
