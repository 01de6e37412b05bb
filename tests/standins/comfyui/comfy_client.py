"""A minimal ComfyUI client for the tests: HTTP calls and a recording websocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

__all__ = ["ComfyHttp", "Frame", "RecordingSocket"]


@dataclass(frozen=True)
class Frame:
    """A websocket frame received from the server."""

    msg: dict[str, Any] | None = None
    data: bytes | None = None

    @property
    def type(self) -> str:
        return self.msg["type"] if self.msg is not None else "<binary>"

    @property
    def payload(self) -> dict[str, Any]:
        assert self.msg is not None
        data: dict[str, Any] = self.msg["data"]
        return data


class ComfyHttp:
    """HTTP calls against one ComfyUI base URL."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def upload(
        self, data: bytes, filename: str, **fields: str
    ) -> tuple[int, dict[str, Any] | None]:
        form = aiohttp.FormData()
        form.add_field("image", data, filename=filename, content_type="image/png")
        for key, value in fields.items():
            form.add_field(key, value)
        async with self.session.post(self.base_url + "/upload/image", data=form) as resp:
            body = await resp.json() if resp.status == 200 else None
            return resp.status, body

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        async with self.session.post(self.base_url + path, json=body) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text else None)

    async def queue(self, prompt: dict[str, Any], **fields: Any) -> tuple[int, dict[str, Any]]:
        status, body = await self.post("/prompt", {"prompt": prompt, **fields})
        return status, body

    async def get(self, path: str, **params: Any) -> Any:
        async with self.session.get(self.base_url + path, params=params) as resp:
            assert resp.status == 200, f"GET {path}: {resp.status}"
            return await resp.json()

    async def view(self, image: dict[str, str]) -> bytes:
        async with self.session.get(self.base_url + "/view", params=image) as resp:
            assert resp.status == 200
            return await resp.read()


class RecordingSocket:
    """A websocket that records every frame; tests wait for frames by predicate."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        client_id: str | None = None,
        *,
        feature_flags: bool = False,
    ) -> None:
        self.session = session
        self.url = base_url + "/ws" + (f"?clientId={client_id}" if client_id else "")
        self.feature_flags = feature_flags
        self.frames: list[Frame] = []
        self.closed = asyncio.Event()
        self._changed = asyncio.Condition()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RecordingSocket:
        self._ws = await self.session.ws_connect(self.url)
        if self.feature_flags:
            await self._ws.send_json(
                {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
            )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                frame = Frame(msg=json.loads(msg.data))
            elif msg.type == aiohttp.WSMsgType.BINARY:
                frame = Frame(data=msg.data)
            else:
                break
            async with self._changed:
                self.frames.append(frame)
                self._changed.notify_all()
        self.closed.set()
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[Frame], bool], *, start: int = 0, timeout_s: float = 15.0
    ) -> int:
        """Index of the first frame at or after ``start`` matching ``predicate``."""

        def found() -> int | None:
            for index in range(start, len(self.frames)):
                if predicate(self.frames[index]):
                    return index
            return None

        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: found() is not None or self.closed.is_set())
        index = found()
        assert index is not None, "socket closed before the expected frame"
        return index

    async def wait_done(self, prompt_id: str, *, start: int = 0) -> int:
        """Index of ``executing {node: null}`` for the prompt (its end on the owner socket)."""
        return await self.wait_for(
            lambda f: (
                f.type == "executing"
                and f.payload.get("node") is None
                and f.payload.get("prompt_id") == prompt_id
            ),
            start=start,
        )

    def texts(self, start: int = 0, end: int | None = None) -> list[dict[str, Any]]:
        return [f.msg for f in self.frames[start:end] if f.msg is not None]
