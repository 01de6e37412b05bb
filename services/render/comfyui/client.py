"""ComfyUI's transport: one pooled HTTP client and one websocket per backend.

Every render of the process shares them. Prompts are queued with a client-chosen
``prompt_id`` and this instance's ``client_id``; ComfyUI sends the messages about a
prompt only to the socket of its ``client_id``, and the socket's reader hands each one
to the subscription of that ``prompt_id`` (:meth:`ComfyUIClient.subscribe`), so there
is no socket per job.

Behaviours of ComfyUI 0.3.64 this module absorbs:

* ``POST /prompt`` may answer **200 with a non-empty ``node_errors``** (only the valid
  outputs run): treated as a refusal, like the 400.
* ``POST /queue`` and ``POST /interrupt`` never say whether they did anything; callers
  check ``/queue`` afterwards.
* Newer servers (0.26+) report and cancel one job (``/api/jobs/{id}``, atomic
  ``/api/jobs/{id}/cancel``); both are used where ``/system_stats`` shows such a
  version. Prompt ids are minted here as lowercase UUIDs (0.25+ refuses anything else)
  and node ids are kept as strings (subgraph nodes are ``"54:73"``).
* The socket has no replay: after a reconnect the subscriptions are told
  (:class:`SocketState`) so their prompts' outcomes are recovered from ``/history``.
* ``status`` messages (the queue length changed) go to every socket and name no prompt:
  they are handled once — one shared ``/queue`` read, whose snapshot goes only to the
  subscriptions still waiting in that queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from services.common.backend_tls import backend_tls_context
from services.common.logs import get_logger
from services.common.metrics import BACKEND_CALLS_TOTAL, COMFYUI_QUEUE_DEPTH
from services.common.retry import RetryPolicy, retry_async
from services.render.backend import StoredResult
from services.render.comfyui.errors import (
    ComfyUIError,
    ComfyUIRefusedError,
    ComfyUIResponseError,
    ComfyUIUnavailableError,
    refusal_text,
)
from services.render.comfyui.messages import (
    ComfyEvent,
    PreviewFrame,
    QueueSnapshot,
    SocketState,
    WsMessage,
    decode_preview_frame,
    parse_queue,
)

__all__ = ["ComfyUIClient", "PromptSubscription"]

T = TypeVar("T")

_log = get_logger(__name__)

_JOBS_API_SINCE = (0, 26, 0)
"""First ComfyUI version with ``POST /api/jobs/{id}/cancel``."""

_CALLS_OK = BACKEND_CALLS_TOTAL.labels(backend="comfyui", outcome="ok")
_CALLS_ERROR = BACKEND_CALLS_TOTAL.labels(backend="comfyui", outcome="error")
_CALLS_TIMEOUT = BACKEND_CALLS_TOTAL.labels(backend="comfyui", outcome="timeout")


@dataclass
class PromptSubscription:
    """The websocket events of one prompt, in arrival order.

    Attributes:
        prompt_id: The prompt.
        events: Filled by the socket reader; never blocks it.
        waiting: The prompt has not started: it gets queue snapshots after ``status``
            messages (set by whoever follows the prompt).
    """

    prompt_id: str
    events: asyncio.Queue[ComfyEvent] = field(default_factory=asyncio.Queue)
    waiting: bool = True

    async def next(self, timeout_s: float | None) -> ComfyEvent | None:
        """The next event, or ``None`` after ``timeout_s`` without one.

        ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` returns the
        event instead of raising when a cancel lands as the event arrives (CPython
        gh-86296), and the render would follow a prompt nobody waits for.
        """
        try:
            async with asyncio.timeout(timeout_s):
                return await self.events.get()
        except TimeoutError:
            return None


class ComfyUIClient:
    """One ComfyUI backend: HTTP calls over a pooled client and one shared websocket.

    Args:
        url: Base URL, e.g. ``http://127.0.0.1:8188``.
        client_id: This service instance's id; prompts are queued under it.
        request_timeout_s: Timeout of one HTTP request.
        connect_timeout_s: Timeout of opening a connection (HTTP or websocket).
        retry: Retry policy of HTTP calls that fail to reach the backend.
        reconnect_max_s: Longest pause between websocket reconnection attempts.
        catalog_max_age_s: ``/object_info`` older than this is read again when asked for.
        transport: An httpx transport, for tests.
    """

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        request_timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        retry: RetryPolicy | None = None,
        reconnect_max_s: float = 5.0,
        catalog_max_age_s: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.client_id = client_id
        self._retry = retry or RetryPolicy()
        self._connect_timeout_s = connect_timeout_s
        self._reconnect_max_s = reconnect_max_s
        # trust_env=False: the backend is an internal address; a proxy set for the
        # outside world must not capture it.
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(request_timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            transport=transport,
            trust_env=False,
            verify=backend_tls_context(),
        )
        scheme = "wss" if self.url.startswith("https") else "ws"
        self._ws_url = f"{scheme}{self.url.removeprefix('https').removeprefix('http')}/ws"
        self._subscriptions: dict[str, PromptSubscription] = {}
        self._socket_task: asyncio.Task[None] | None = None
        self._socket: ClientConnection | None = None
        self._closing = False
        self._connected = asyncio.Event()
        self._executing: str | None = None
        self._executing_node: str | None = None
        self._queue_fetch: asyncio.Task[QueueSnapshot] | None = None
        self._queue_fetch_at = 0.0
        self._object_info: dict[str, Any] | None = None
        self._object_info_at = 0.0
        self._catalog_max_age_s = catalog_max_age_s
        self._object_info_fetch: asyncio.Task[dict[str, Any]] | None = None
        self._positions_task: asyncio.Task[None] | None = None
        self._positions_stale = False
        self.queue_remaining: int | None = None
        self.reconnects = 0
        self._jobs_api: bool | None = None

    def __repr__(self) -> str:
        return f"ComfyUIClient({self.url!r})"

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Starts the websocket reader (it reconnects by itself until :meth:`aclose`)."""
        if self._socket_task is None:
            self._socket_task = asyncio.create_task(
                self._run_socket(), name=f"comfyui-ws {self.url}"
            )

    async def aclose(self) -> None:
        """Stops the websocket reader and closes the HTTP pool."""
        self._closing = True
        task, self._socket_task = self._socket_task, None
        if task is not None:
            socket = self._socket
            if socket is not None:
                # Close the open socket rather than cancel the reader inside its
                # ``async with``: the reader then leaves its loop on its own.
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self._connect_timeout_s):
                        await socket.close()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._connect_timeout_s):
                        await asyncio.shield(task)
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        refresh, self._positions_task = self._positions_task, None
        if refresh is not None:
            refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresh
        await self._http.aclose()

    @property
    def connected(self) -> bool:
        """True while the websocket is open."""
        return self._connected.is_set()

    async def wait_connected(self, timeout_s: float) -> bool:
        """Waits up to ``timeout_s`` for the websocket; True when it is open."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    def executing_node(self, prompt_id: str) -> str | None:
        """The node ``prompt_id`` runs, as this socket last heard; ``None`` when unknown
        (another client's prompt, or the socket was down)."""
        return self._executing_node if self._executing == prompt_id else None

    # -- websocket -------------------------------------------------------------------

    def subscribe(self, prompt_id: str) -> PromptSubscription:
        """Starts collecting the events of ``prompt_id``; do it before queueing it.

        Args:
            prompt_id: The id the prompt will be (or was) queued with.

        Returns:
            The subscription; pass it to :meth:`unsubscribe` when done.
        """
        subscription = PromptSubscription(prompt_id)
        self._subscriptions[prompt_id] = subscription
        return subscription

    def unsubscribe(self, subscription: PromptSubscription) -> None:
        """Stops collecting events for a prompt."""
        if self._subscriptions.get(subscription.prompt_id) is subscription:
            del self._subscriptions[subscription.prompt_id]

    async def _run_socket(self) -> None:
        pause = 0.1
        url = f"{self._ws_url}?clientId={self.client_id}"
        while not self._closing:
            try:
                async with connect(
                    url,
                    open_timeout=self._connect_timeout_s,
                    max_size=32 * 1024 * 1024,
                    proxy=None,
                    compression=None,
                ) as socket:
                    self._socket = socket
                    # Ask for type-4 previews, which name their prompt_id.
                    await socket.send(
                        json.dumps(
                            {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
                        )
                    )
                    self._on_socket_state(True)
                    pause = 0.1
                    await self._read(socket)
            except asyncio.CancelledError:
                self._on_socket_state(False)
                raise
            except (OSError, WebSocketException, TimeoutError) as e:
                if self.connected:
                    _log.warning(
                        "comfyui websocket lost", extra={"backend": self.url, "error": repr(e)}
                    )
            finally:
                self._socket = None
            self._on_socket_state(False)
            if self._closing:
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, self._reconnect_max_s)

    def _on_socket_state(self, connected: bool) -> None:
        if connected == self.connected:
            return
        if connected:
            self._connected.set()
            self.reconnects += 1
            _log.info("comfyui websocket open", extra={"backend": self.url})
        else:
            self._connected.clear()
            self._executing = self._executing_node = None
        for subscription in list(self._subscriptions.values()):
            subscription.events.put_nowait(SocketState(connected))

    async def _read(self, socket: ClientConnection) -> None:
        async for frame in socket:
            try:
                if isinstance(frame, bytes):
                    self._dispatch_binary(frame)
                else:
                    self._dispatch_text(frame)
            except (ValueError, KeyError, TypeError, struct.error) as e:
                _log.warning(
                    "malformed comfyui websocket frame",
                    extra={"backend": self.url, "error": repr(e)},
                )

    def _dispatch_text(self, frame: str) -> None:
        message = json.loads(frame)
        kind = str(message.get("type", ""))
        data = message.get("data") or {}
        if kind == "status":
            remaining = data.get("status", {}).get("exec_info", {}).get("queue_remaining")
            if isinstance(remaining, int):
                self.queue_remaining = remaining
                COMFYUI_QUEUE_DEPTH.labels(backend=self.url).set(remaining)
            self._queue_moved()
            return
        prompt_id = data.get("prompt_id")
        if kind == "executing" and prompt_id is not None:
            node = data.get("node")
            self._executing = prompt_id if node is not None else None
            self._executing_node = str(node) if node is not None else None
        target = self._subscriptions.get(str(prompt_id)) if prompt_id else None
        if target is not None:
            target.events.put_nowait(WsMessage(kind, data))

    def _queue_moved(self) -> None:
        """A ``status`` message: waiting prompts may have new positions.

        One ``/queue`` read serves every waiting subscription; messages arriving while it
        runs cause one more read afterwards, not one each.
        """
        if self._closing or not any(s.waiting for s in self._subscriptions.values()):
            return
        if self._positions_task is not None and not self._positions_task.done():
            self._positions_stale = True
            return
        self._positions_task = asyncio.create_task(
            self._send_positions(), name=f"comfyui-queue {self.url}"
        )

    async def _send_positions(self) -> None:
        self._positions_stale = True
        while self._positions_stale and not self._closing:
            self._positions_stale = False
            try:
                snapshot = await self.queue_snapshot(since=time.monotonic())
            except ComfyUIError:
                return  # each waiting prompt polls on its own when it hears nothing
            for subscription in list(self._subscriptions.values()):
                if subscription.waiting and snapshot.contains(subscription.prompt_id):
                    subscription.events.put_nowait(snapshot)

    def _dispatch_binary(self, frame: bytes) -> None:
        preview = decode_preview_frame(frame)
        if preview is None:
            return  # text frames and unknown types concern no render
        # Type-1 previews carry no prompt id: they belong to whatever executes.
        prompt_id = preview.prompt_id if preview.prompt_id is not None else self._executing
        subscription = self._subscriptions.get(prompt_id) if prompt_id else None
        if subscription is not None:
            subscription.events.put_nowait(
                PreviewFrame(preview.image, preview.mime_type, preview.node_id, preview.ahead)
            )

    # -- HTTP ------------------------------------------------------------------------

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One HTTP request; connection errors, timeouts and 5xx become unavailability."""
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as e:
            _CALLS_TIMEOUT.inc()
            raise ComfyUIUnavailableError(
                f"{method} {path} timed out ({type(e).__name__})", backend=self.url
            ) from e
        except httpx.TransportError as e:
            _CALLS_ERROR.inc()
            raise ComfyUIUnavailableError(
                f"{method} {path} failed: {type(e).__name__}: {e}", backend=self.url
            ) from e
        if response.status_code >= 500:
            _CALLS_ERROR.inc()
            raise ComfyUIUnavailableError(
                f"{method} {path} answered {response.status_code}: {response.text[:200]}",
                backend=self.url,
            )
        _CALLS_OK.inc()
        return response

    async def _retrying(
        self, call: Callable[[], Awaitable[T]], what: str, deadline: float | None
    ) -> T:
        def on_retry(attempt: int, error: BaseException, pause: float) -> None:
            _log.warning(
                "comfyui call failed, retrying",
                extra={
                    "backend": self.url,
                    "call": what,
                    "attempt": attempt,
                    "error": str(error),
                    "pause_s": round(pause, 3),
                },
            )

        return await retry_async(
            call,
            policy=self._retry,
            retryable=lambda e: isinstance(e, ComfyUIUnavailableError),
            deadline=deadline,
            on_retry=on_retry,
        )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        deadline: float | None = None,
        retry: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """One HTTP call, retried on connection errors, timeouts and 5xx.

        Returns:
            The response (any status below 500).

        Raises:
            ComfyUIUnavailableError: Still failing after the retries.
        """
        if not retry:
            return await self._send(method, path, **kwargs)
        return await self._retrying(
            lambda: self._send(method, path, **kwargs), f"{method} {path}", deadline
        )

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as e:
            raise ComfyUIResponseError(
                f"{what}: not JSON (HTTP {response.status_code})", backend=self.url
            ) from e

    async def system_stats(self, *, deadline: float | None = None) -> dict[str, Any]:
        """``GET /system_stats``: versions, devices and VRAM."""
        response = await self._call("GET", "/system_stats", deadline=deadline, retry=False)
        body = self._json(response, "/system_stats")
        if response.status_code != 200 or not isinstance(body, dict):
            raise ComfyUIResponseError("/system_stats: unexpected answer", backend=self.url)
        return body

    async def object_info(self, *, refresh: bool = False) -> dict[str, Any]:
        """``GET /object_info``, kept for ``catalog_max_age_s``; ``refresh`` fetches it again.

        Model files come and go without a restart of ComfyUI, so the lists are re-read
        periodically. Concurrent callers share one fetch.
        """
        fresh = time.monotonic() - self._object_info_at < self._catalog_max_age_s
        if self._object_info is not None and fresh and not refresh:
            return self._object_info
        if self._object_info_fetch is None or self._object_info_fetch.done():
            self._object_info_fetch = asyncio.create_task(self._fetch_object_info())
        info = await asyncio.shield(self._object_info_fetch)
        self._object_info = info
        self._object_info_at = time.monotonic()
        return info

    async def _fetch_object_info(self) -> dict[str, Any]:
        started = time.monotonic()
        response = await self._call("GET", "/object_info")
        body = self._json(response, "/object_info")
        if not isinstance(body, dict):
            raise ComfyUIResponseError("/object_info: not an object", backend=self.url)
        _log.info(
            "comfyui object_info loaded",
            extra={
                "backend": self.url,
                "nodes": len(body),
                "ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        return body

    async def node_info(self, class_type: str) -> dict[str, Any]:
        """``GET /object_info/{class}``: one node's schema (empty when unknown)."""
        response = await self._call("GET", f"/object_info/{class_type}", retry=False)
        body = self._json(response, "/object_info/{class}")
        info = body.get(class_type) if isinstance(body, dict) else None
        return info if isinstance(info, dict) else {}

    async def queue_load(self, *, deadline: float | None = None) -> int:
        """``GET /prompt``: prompts running or waiting (``queue_remaining``)."""
        response = await self._call("GET", "/prompt", deadline=deadline, retry=False)
        body = self._json(response, "/prompt")
        try:
            remaining = int(body["exec_info"]["queue_remaining"])
        except (KeyError, TypeError, ValueError) as e:
            raise ComfyUIResponseError("/prompt: no queue_remaining", backend=self.url) from e
        self.queue_remaining = remaining
        COMFYUI_QUEUE_DEPTH.labels(backend=self.url).set(remaining)
        return remaining

    async def queue_snapshot(self, *, since: float | None = None) -> QueueSnapshot:
        """``GET /queue``; concurrent callers share one request.

        Args:
            since: A ``time.monotonic()`` instant; a request already in flight is shared
                only if it started at or after it (so a prompt queued just now is seen).
        """
        fetch = self._queue_fetch
        if fetch is None or fetch.done() or (since is not None and self._queue_fetch_at < since):
            self._queue_fetch_at = time.monotonic()
            fetch = self._queue_fetch = asyncio.create_task(self._fetch_queue())
        return await asyncio.shield(fetch)

    async def _fetch_queue(self) -> QueueSnapshot:
        response = await self._call("GET", "/queue")
        body = self._json(response, "/queue")
        try:
            return parse_queue(body)
        except ValueError as e:
            raise ComfyUIResponseError(str(e), backend=self.url) from e

    async def upload_image(
        self, data: bytes, filename: str, *, subfolder: str = "", deadline: float | None = None
    ) -> str:
        """``POST /upload/image`` into input/.

        Args:
            data: The encoded image.
            filename: Name to store it under.
            subfolder: Folder inside input/ (created on demand).
            deadline: Monotonic instant bounding the retries.

        Returns:
            The value for ``LoadImage.image`` (``subfolder/name`` when in a subfolder).
        """
        response = await self._call(
            "POST",
            "/upload/image",
            deadline=deadline,
            files={"image": (filename, data, "application/octet-stream")},
            data={"type": "input", "subfolder": subfolder, "overwrite": "true"},
        )
        if response.status_code != 200:
            raise ComfyUIResponseError(
                f"/upload/image answered {response.status_code}: {response.text[:200]}",
                backend=self.url,
            )
        body = self._json(response, "/upload/image")
        name, folder = str(body.get("name", "")), str(body.get("subfolder", ""))
        if not name:
            raise ComfyUIResponseError("/upload/image: no name in the answer", backend=self.url)
        return f"{folder}/{name}" if folder else name

    async def queue_prompt(
        self,
        graph: Mapping[str, Any],
        prompt_id: str,
        *,
        extra_data: Mapping[str, Any] | None = None,
        deadline: float | None = None,
    ) -> None:
        """``POST /prompt`` under this instance's client id and the given prompt id.

        A retry first looks for the prompt in ``/queue`` and ``/history``: the first
        attempt may have queued it before its answer was lost.

        Raises:
            ComfyUIRefusedError: HTTP 400, or 200 with a non-empty ``node_errors``
                (ComfyUI then runs only the outputs that validated; the caller deletes it).
            ComfyUIUnavailableError: Not reachable after the retries.
        """

        payload: dict[str, Any] = {
            "prompt": graph,
            "client_id": self.client_id,
            "prompt_id": prompt_id,
        }
        if extra_data:
            payload["extra_data"] = dict(extra_data)
        attempts = 0

        async def attempt() -> httpx.Response | None:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and await self._knows(prompt_id):
                return None
            return await self._send("POST", "/prompt", json=payload)

        response = await self._retrying(attempt, "POST /prompt", deadline)
        if response is None:
            return
        body = self._json(response, "/prompt")
        if not isinstance(body, dict):
            raise ComfyUIResponseError("/prompt: not an object", backend=self.url)
        node_errors = body.get("node_errors") or {}
        if response.status_code != 200 or node_errors:
            error = body.get("error") if isinstance(body.get("error"), dict) else None
            raise ComfyUIRefusedError(
                refusal_text(error, node_errors, response.status_code),
                backend=self.url,
                error=error,
                node_errors=node_errors,
            )

    async def _knows(self, prompt_id: str) -> bool:
        try:
            snapshot = await self._fetch_queue()
            return snapshot.contains(prompt_id) or await self.history(prompt_id) is not None
        except ComfyUIError:
            return False

    async def delete_pending(self, prompt_ids: Sequence[str]) -> None:
        """``POST /queue {"delete": ids}``: removes them if still pending (silent otherwise)."""
        if prompt_ids:
            await self._call("POST", "/queue", json={"delete": list(prompt_ids)})

    async def interrupt(self, prompt_id: str) -> None:
        """``POST /interrupt {"prompt_id": id}``: stops it if it is the one running."""
        await self._call("POST", "/interrupt", json={"prompt_id": prompt_id})

    async def has_jobs_api(self) -> bool:
        """Whether the server has the jobs API with per-job cancel (``/api/jobs/{id}``,
        ``POST /api/jobs/{id}/cancel``: ComfyUI 0.26 and later), from the version
        ``/system_stats`` reports; read once."""
        if self._jobs_api is None:
            version = str((await self.system_stats()).get("system", {}).get("comfyui_version"))
            parts = tuple(int(p) if p.isdigit() else 0 for p in version.split(".")[:3])
            self._jobs_api = parts >= _JOBS_API_SINCE
        return self._jobs_api

    async def job(self, prompt_id: str) -> dict[str, Any] | None:
        """``GET /api/jobs/{id}`` (ComfyUI 0.26 and later): the job's status — with
        ``outputs`` and ``execution_status`` once finished — or ``None`` when unknown."""
        response = await self._call("GET", f"/api/jobs/{prompt_id}")
        if response.status_code == 404:
            return None
        body = self._json(response, "/api/jobs/{id}")
        if response.status_code != 200 or not isinstance(body, dict):
            raise ComfyUIResponseError(
                f"/api/jobs/{{id}} answered {response.status_code}", backend=self.url
            )
        return body

    async def stop(self, prompt_id: str) -> None:
        """Stops ``prompt_id`` if it runs (or waits): the atomic per-job cancel where the
        server has it, else a targeted ``/interrupt`` (ComfyUI checks that it runs)."""
        if await self.has_jobs_api():
            await self._call("POST", f"/api/jobs/{prompt_id}/cancel")
        else:
            await self.interrupt(prompt_id)

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """``GET /history/{id}``: the finished prompt's entry, ``None`` while unknown/running."""
        response = await self._call("GET", f"/history/{prompt_id}")
        body = self._json(response, "/history/{id}")
        entry = body.get(prompt_id) if isinstance(body, dict) else None
        return entry if isinstance(entry, dict) else None

    async def forget(self, prompt_ids: Sequence[str]) -> None:
        """``POST /history {"delete": ids}``: drops finished entries from the history."""
        if prompt_ids:
            await self._call("POST", "/history", json={"delete": list(prompt_ids)}, retry=False)

    async def view(self, image: StoredResult) -> bytes:
        """``GET /view``: the bytes of a saved image."""
        response = await self._call(
            "GET",
            "/view",
            params={"filename": image.name, "subfolder": image.folder, "type": image.kind},
        )
        if response.status_code != 200:
            raise ComfyUIResponseError(
                f"/view {image.name} answered {response.status_code}", backend=self.url
            )
        return response.content
