"""What the stand-in was sent can be inspected, in code and over HTTP."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from standins.ollama.server import RunningFakeOllama, run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings

from .samples import ANALYSIS_SCHEMA, b64, square_image


async def test_log_keeps_the_whole_body_with_schema_and_image(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    image = square_image(32, 24)
    request = {
        "model": "llava",
        "stream": False,
        "format": ANALYSIS_SCHEMA,
        "messages": [{"role": "user", "content": "Describe.", "images": [b64(image)]}],
    }
    await http.post("/api/chat", json=request)
    [logged] = running.fake.requests_to("/api/chat")
    assert logged.body == request and logged.model == "llava"
    assert logged.body["format"] == ANALYSIS_SCHEMA
    [received] = logged.images()
    assert Image.open(io.BytesIO(received)).size == (32, 24)


async def test_log_keeps_rejected_bodies_as_text(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    await http.post("/api/chat", content=b"{not json")
    assert running.fake.requests[-1].body == "{not json"


async def test_requests_to_filters_by_path(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    await http.get("/api/tags")
    await http.post("/api/show", json={"model": "llava"})
    assert [r.path for r in running.fake.requests] == ["/api/tags", "/api/show"]
    assert [r.body for r in running.fake.requests_to("/api/show")] == [{"model": "llava"}]


async def test_log_keeps_only_the_newest_requests() -> None:
    settings = FakeOllamaSettings(request_log_limit=2)
    async with run_fake_ollama(settings) as server, httpx.AsyncClient(base_url=server.url) as http:
        for path in ("/", "/api/tags", "/api/version"):
            await http.get(path)
        assert [r.path for r in server.fake.requests] == ["/api/tags", "/api/version"]


async def test_reset_clears_log_counters_and_faults(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    await http.post("/api/chat", json={"model": "llava", "messages": []})
    running.fake.faults.add(kind="error")
    running.fake.reset()
    stats = running.fake.stats()
    assert (stats["load_count"], stats["request_count"]) == (0, 0)
    assert running.fake.faults.active == []
    assert stats["resident"] == ["llava:latest"]
