"""The Ollama stand-in: its state, and a runner that serves it (usage: the README)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from standins.ollama.answers import Script
from standins.ollama.faults import FaultBook, FaultKind
from standins.ollama.models import Catalogue, Residency, canonical_name
from standins.ollama.openai_compat import OpenAIRoutes
from standins.ollama.routes import OllamaRoutes
from standins.ollama.settings import FakeOllamaSettings

__all__ = [
    "FakeOllama",
    "RecordedRequest",
    "RunningFakeOllama",
    "run_fake_ollama",
]


# In-flight requests get this long to finish when the server stops or restarts.
_SHUTDOWN_GRACE_S = 0.25
_COUNTS = ("load_count", "reload_count", "eviction_count", "unload_count")


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stand-in received, body included (images and all)."""

    method: str
    path: str
    body: Any
    """The parsed JSON body; the raw text when it is not JSON; None when empty."""

    @property
    def model(self) -> str | None:
        """The ``model`` (or ``name``) field of the body, if any."""
        if isinstance(self.body, dict):
            value = self.body.get("model") or self.body.get("name")
            return value if isinstance(value, str) else None
        return None

    def images(self) -> list[bytes]:
        """Every image of the request decoded (``messages[].images`` and ``/v1``
        ``image_url`` data URLs), in order; entries that are not base64 are skipped."""
        messages = self.body.get("messages") if isinstance(self.body, dict) else None
        encoded: list[Any] = []
        for message in messages if isinstance(messages, list) else []:
            parts = message.get("content") if isinstance(message, dict) else None
            encoded += message.get("images") or [] if isinstance(message, dict) else []
            for part in parts if isinstance(parts, list) else []:  # OpenAI content parts
                url = part.get("image_url") if isinstance(part, dict) else None
                url = url.get("url") if isinstance(url, dict) else url
                encoded += [url.partition(",")[2]] if isinstance(url, str) else []
        decoded: list[bytes] = []
        for item in (i for i in encoded if isinstance(i, str)):
            with contextlib.suppress(binascii.Error, ValueError):
                decoded.append(base64.b64decode(item, validate=True))
        return decoded


class FakeOllama:
    """State of the stand-in: installed models, residency, faults, counters, request log;
    ``settings`` default to ``FakeOllamaSettings()`` (the environment)."""

    def __init__(self, settings: FakeOllamaSettings | None = None) -> None:
        self.settings = settings if settings is not None else FakeOllamaSettings()
        self.catalogue = Catalogue(self.settings.models)
        self.residency = Residency(self.settings)
        self.faults = FaultBook()
        self.script = Script(self.settings.answers)
        self.faults.extend(f for f in self.settings.faults if f.kind is not FaultKind.REFUSE)
        self.requests: list[RecordedRequest] = []

    @property
    def load_count(self) -> int:
        """Model loads so far (first loads, reloads after eviction or option changes)."""
        return self.residency.counts["load_count"]

    @property
    def loads_by_model(self) -> dict[str, int]:
        """Loads per canonical model name."""
        return dict(self.residency.loads_by_model)

    def resident_models(self) -> list[str]:
        """Canonical names of the models in memory (as ``/api/ps`` lists them)."""
        return [runner.model.name for runner in self.residency.loaded.values()]

    async def wait_unloaded(self, model: str) -> None:
        """Return once ``model`` (any alias) has left memory."""
        await self.residency.wait_unloaded(canonical_name(model))

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The logged requests for one path, e.g. ``"/api/chat"``."""
        return [r for r in self.requests if r.path == path]

    def record(self, method: str, path: str, body: bytes) -> None:
        """Log a received request (the oldest entries go past the configured limit)."""
        parsed: Any = None
        try:
            parsed = json.loads(body) if body.strip() else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            parsed = body.decode("utf-8", errors="replace")
        entry = RecordedRequest(method=method, path=path, body=parsed)
        self.requests.append(entry)
        del self.requests[: max(0, len(self.requests) - self.settings.request_log_limit)]

    def stats(self) -> dict[str, Any]:
        """Counters for tests and benchmarks."""
        counts = dict.fromkeys(_COUNTS, 0) | self.residency.counts
        return counts | {
            "loads_by_model": self.loads_by_model,
            "resident": self.resident_models(),
            "request_count": len(self.requests),
        }

    def reset(self) -> None:
        """Clear the request log, the counters and the faults (residency is kept)."""
        self.requests.clear()
        self.faults.clear()
        self.residency.counts.clear()
        self.residency.loads_by_model.clear()


class RunningFakeOllama:
    """A stand-in listening on a port (see :func:`run_fake_ollama`); stop it, restart it,
    or make it refuse connections."""

    def __init__(self, fake: FakeOllama, host: str, port: int) -> None:
        self.fake = fake
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        fake.faults.on_refuse = lambda fault: self._spawn(self.refuse_connections(fault.duration_s))

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:11434``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Listen (again) on the port; the first start picks a port when it is 0."""
        if self._runner is not None:
            return
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        app = web.Application(client_max_size=self.fake.settings.max_body_bytes)
        routes = OllamaRoutes(self.fake)
        routes.register(app)
        OpenAIRoutes(routes).register(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_GRACE_S)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def stop(self) -> None:
        """Stop listening and close every connection (in-flight requests are cut short)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def restart(self) -> None:
        """Stop and start again on the same port, like a restarted Ollama: nothing is
        resident afterwards; counters, request log and faults survive."""
        await self.stop()
        self.fake.residency.reset()
        await self.start()

    async def refuse_connections(self, duration_s: float | None = None) -> None:
        """Close the listening socket ("connection refused") for ``duration_s`` seconds, or
        until :meth:`accept_connections` when None."""
        await self.stop()
        if duration_s is not None:
            self._spawn(self._reopen_after(duration_s))

    async def accept_connections(self) -> None:
        """Listen again after :meth:`refuse_connections`."""
        await self.start()

    async def _reopen_after(self, duration_s: float) -> None:
        await asyncio.sleep(duration_s)
        await self.start()

    async def settled(self) -> None:
        """Wait until runtime changes have taken effect: a ``refuse`` fault added with
        ``fake.faults.add`` (the socket is closed) and a timed refusal (it is open again)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop for good: cancel pending reopenings, stop listening, stop timers."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.stop()
        await self.fake.residency.close()


@contextlib.asynccontextmanager
async def run_fake_ollama(
    settings: FakeOllamaSettings | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningFakeOllama]:
    """Run a stand-in (``settings`` default to the environment's) on ``host`` and ``port``
    (0: a free one, see ``.url``) for an ``async with`` block; ``refuse`` faults in the
    settings take effect at once."""
    running = RunningFakeOllama(FakeOllama(settings), host, port)
    await running.start()
    try:
        for fault in running.fake.settings.faults:
            if fault.kind is FaultKind.REFUSE:
                await running.refuse_connections(fault.duration_s)
        yield running
    finally:
        await running.close()
