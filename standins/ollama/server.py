"""The Ollama stand-in: its state, and a runner that serves it (usage: the README)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from standins._server import AppServer
from standins.ollama.answers import Script
from standins.ollama.faults import FaultBook, FaultKind
from standins.ollama.models import Catalogue, Residency, canonical_name
from standins.ollama.openai_compat import OpenAIRoutes
from standins.ollama.routes import OllamaRoutes
from standins.ollama.settings import FakeOllamaSettings

__all__ = ["FakeOllama", "RecordedRequest", "RunningFakeOllama", "run_fake_ollama"]


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


class RunningFakeOllama(AppServer):
    """A stand-in listening on a port (see :func:`run_fake_ollama`); stop it, restart it,
    or make it refuse connections (:meth:`settled` waits until a refusal took effect)."""

    def __init__(self, fake: FakeOllama, host: str, port: int) -> None:
        super().__init__(host, port)
        self.fake = fake
        fake.faults.on_refuse = lambda fault: self.spawn(self.refuse_connections(fault.duration_s))

    def banner(self) -> str:
        """What ``python -m standins.ollama`` logs."""
        settings = self.fake.settings
        return (
            f"fake_ollama: STAND-IN for the Ollama API (no real models, no GPU; answers are "
            f"scripted or schema placeholders) listening on {self.url}; models "
            f"{', '.join(settings.models)}, {settings.max_loaded_models} resident at once"
        )

    def make_app(self) -> web.Application:
        """Ollama's routes and its OpenAI-compatible ones."""
        app = web.Application(client_max_size=256 * 1024 * 1024)  # images travel inline
        routes = OllamaRoutes(self.fake)
        routes.register(app)
        OpenAIRoutes(routes).register(app)
        return app

    async def restart(self) -> None:
        """Stop and start again on the same port, like a restarted Ollama: nothing is
        resident afterwards; counters, request log and faults survive."""
        await self.stop()
        self.fake.residency.reset()
        await self.start()

    async def refuse_connections(self, duration_s: float | None = None) -> None:
        """Stop listening ("connection refused") for ``duration_s`` (None: until reopened)."""
        await self.stop()
        if duration_s is not None:
            self.spawn(self._reopen_after(duration_s))

    async def accept_connections(self) -> None:
        """Listen again after :meth:`refuse_connections`."""
        await self.start()

    async def _reopen_after(self, duration_s: float) -> None:
        await asyncio.sleep(duration_s)
        await self.start()

    async def close(self) -> None:
        """Stop for good: cancel pending reopenings, stop listening, stop timers."""
        await super().close()
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
