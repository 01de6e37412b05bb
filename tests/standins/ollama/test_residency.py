"""One simulated GPU: loads, evictions, reloads, keep-alive and /api/ps."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from standins.ollama.server import RunningFakeOllama, run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings


def _ask(model: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": False,
        **extra,
    }


@pytest.fixture
async def two_slots() -> AsyncIterator[RunningFakeOllama]:
    async with run_fake_ollama(FakeOllamaSettings(max_loaded_models=2)) as server:
        yield server


async def _ps_names(http: httpx.AsyncClient) -> list[str]:
    return [m["name"] for m in (await http.get("/api/ps")).json()["models"]]


async def test_alternating_models_on_one_slot_reload_every_time(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    for model in ("llava", "gpt-oss:20b", "llava", "gpt-oss:20b"):
        assert (await http.post("/api/chat", json=_ask(model))).status_code == 200
    assert running.fake.load_count == 4
    assert running.fake.loads_by_model == {"llava:latest": 2, "gpt-oss:20b": 2}
    assert await _ps_names(http) == ["gpt-oss:20b"]


async def test_two_slots_keep_both_models_resident(two_slots: RunningFakeOllama) -> None:
    async with httpx.AsyncClient(base_url=two_slots.url) as http:
        for model in ("llava", "gpt-oss:20b", "llava", "gpt-oss:20b"):
            await http.post("/api/chat", json=_ask(model))
        assert two_slots.fake.load_count == 2
        assert sorted(await _ps_names(http)) == ["gpt-oss:20b", "llava:latest"]


async def test_warm_request_reuses_the_loaded_model(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    await http.post("/api/chat", json=_ask("llava"))
    await http.post("/api/chat", json=_ask("llava:latest"))
    assert running.fake.load_count == 1


async def test_preload_loads_without_generating(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    body = (await http.post("/api/chat", json={"model": "gpt-oss:20b", "messages": []})).json()
    assert (body["done"], body["done_reason"], body["message"]["content"]) == (True, "load", "")
    assert "eval_count" not in body
    assert running.fake.load_count == 1
    assert await _ps_names(http) == ["gpt-oss:20b"]


async def test_unload_answers_at_once_and_the_model_leaves_ps_afterwards() -> None:
    async with (
        run_fake_ollama(FakeOllamaSettings(unload_delay_s=0.5)) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        await http.post("/api/chat", json={"model": "llava", "messages": []})
        body = (
            await http.post("/api/chat", json={"model": "llava", "messages": [], "keep_alive": 0})
        ).json()
        assert body["done_reason"] == "unload"
        assert await _ps_names(http) == ["llava:latest"]  # the real unload is asynchronous
        await server.fake.wait_unloaded("llava")
        assert await _ps_names(http) == []
        assert server.fake.stats()["unload_count"] == 1


async def test_keep_alive_zero_on_a_request_unloads_after_it(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    await http.post("/api/chat", json=_ask("llava", keep_alive=0))
    await running.fake.wait_unloaded("llava")
    assert await _ps_names(http) == []


async def test_idle_model_leaves_when_keep_alive_runs_out(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    await http.post("/api/chat", json={"model": "llava", "messages": [], "keep_alive": "20ms"})
    await running.fake.wait_unloaded("llava")
    assert await _ps_names(http) == []


async def test_negative_keep_alive_keeps_the_model_for_centuries(http: httpx.AsyncClient) -> None:
    await http.post("/api/chat", json={"model": "llava", "messages": [], "keep_alive": -1})
    expires = (await http.get("/api/ps")).json()["models"][0]["expires_at"]
    assert dt.datetime.fromisoformat(expires.replace("Z", "+00:00")).year > 2200


async def test_keep_alive_sets_expires_at(http: httpx.AsyncClient) -> None:
    await http.post("/api/chat", json={"model": "llava", "messages": [], "keep_alive": "1h"})
    expires = (await http.get("/api/ps")).json()["models"][0]["expires_at"]
    remaining = dt.datetime.fromisoformat(expires.replace("Z", "+00:00")) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=55) < remaining <= dt.timedelta(hours=1)


async def test_ps_lists_the_latest_expiry_first(two_slots: RunningFakeOllama) -> None:
    async with httpx.AsyncClient(base_url=two_slots.url) as http:
        await http.post(
            "/api/chat", json={"model": "gpt-oss:20b", "messages": [], "keep_alive": "5m"}
        )
        await http.post("/api/chat", json={"model": "llava", "messages": [], "keep_alive": "2h"})
        assert await _ps_names(http) == ["llava:latest", "gpt-oss:20b"]


async def test_eviction_picks_the_idle_model_with_the_shortest_keep_alive() -> None:
    async with (
        run_fake_ollama(
            FakeOllamaSettings(models=["llava", "gpt-oss:20b", "llama3.2"], max_loaded_models=2)
        ) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        await http.post("/api/chat", json={"model": "llava", "messages": [], "keep_alive": "1h"})
        await http.post(
            "/api/chat", json={"model": "gpt-oss:20b", "messages": [], "keep_alive": "1m"}
        )
        await http.post("/api/chat", json={"model": "llama3.2", "messages": []})
        assert sorted(server.fake.resident_models()) == ["llama3.2:latest", "llava:latest"]


async def test_changed_num_ctx_forces_a_reload(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    await http.post("/api/chat", json=_ask("llava", options={"num_ctx": 8192}))
    await http.post("/api/chat", json=_ask("llava", options={"num_ctx": 8192, "temperature": 0}))
    assert running.fake.load_count == 1  # sampling options never reload
    await http.post("/api/chat", json=_ask("llava"))  # no num_ctx: the 4096 default differs
    assert running.fake.load_count == 2
    assert running.fake.stats()["reload_count"] == 1
    assert (await http.get("/api/ps")).json()["models"][0]["context_length"] == 4096


async def test_num_gpu_minus_one_never_forces_a_reload(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    await http.post("/api/chat", json=_ask("llava", options={"num_gpu": 99}))
    await http.post("/api/chat", json=_ask("llava", options={"num_gpu": -1}))
    assert running.fake.load_count == 1


async def test_ps_size_grows_with_the_context(http: httpx.AsyncClient) -> None:
    await http.post("/api/chat", json={"model": "llava", "messages": []})
    small = (await http.get("/api/ps")).json()["models"][0]["size"]
    await http.post(
        "/api/chat", json={"model": "llava", "messages": [], "options": {"num_ctx": 16384}}
    )
    large = (await http.get("/api/ps")).json()["models"][0]
    assert large["size"] > small and large["size_vram"] == large["size"]


async def test_concurrent_requests_for_two_models_share_one_slot(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    replies = await asyncio.gather(
        *(http.post("/api/chat", json=_ask(m)) for m in ("llava", "gpt-oss:20b", "llava"))
    )
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert len(running.fake.resident_models()) == 1
    assert running.fake.load_count in (2, 3)  # order of arrival decides one reload


async def test_full_queue_answers_503() -> None:
    # While the first request loads the model, one more may wait; the next is turned away.
    settings = FakeOllamaSettings(max_queue=1, load_delay_s=0.5)
    async with run_fake_ollama(settings) as server, httpx.AsyncClient(base_url=server.url) as http:
        first = asyncio.create_task(http.post("/api/chat", json=_ask("llava")))
        await server.fake.residency.load_started.wait()
        waiting, refused = await asyncio.gather(
            http.post("/api/chat", json=_ask("llava")), http.post("/api/chat", json=_ask("llava"))
        )
        await first
        statuses = sorted([waiting.status_code, refused.status_code])
        assert statuses == [200, 503]
        rejected = waiting if waiting.status_code == 503 else refused
        assert rejected.json() == {
            "error": "server busy, please try again.  maximum pending requests exceeded"
        }


async def test_restart_forgets_resident_models_and_keeps_counters(
    running: RunningFakeOllama,
) -> None:
    url = running.url
    async with httpx.AsyncClient(base_url=url) as http:
        await http.post("/api/chat", json={"model": "llava", "messages": []})
    await running.restart()
    assert running.url == url
    async with httpx.AsyncClient(base_url=url) as http:
        assert await _ps_names(http) == []
    assert running.fake.load_count == 1


async def test_stats_expose_the_load_counters(
    running: RunningFakeOllama, http: httpx.AsyncClient
) -> None:
    await http.post("/api/chat", json=_ask("llava"))
    await http.post("/api/chat", json=_ask("gpt-oss:20b"))
    stats = running.fake.stats()
    assert stats["load_count"] == 2
    assert stats["eviction_count"] == 1
    assert stats["resident"] == ["gpt-oss:20b"]
