"""Fixtures of the planner tests: the Ollama stand-in, a scripted Ollama, servers on port 0.

A test that takes ``ollama`` runs once per language-model backend (see
``tests/common/llm/backends.py``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc.aio
import httpx
import pytest

from imagegen.common.v1 import common_pb2
from imagegen.planner.v1 import planner_pb2, planner_pb2_grpc
from services.common.llm import Backend, ChatModel, ModelProbe
from services.common.llm.ollama import OllamaClient
from services.common.llm.openai import OpenAICompatibleClient
from services.common.server import GrpcServer
from services.planner.app import create_server
from services.planner.planner import Planner
from services.planner.plans import SourceAnalysis
from services.planner.readiness import text_model_probe
from services.planner.settings import PlannerSettings
from standins.ollama.server import RunningFakeOllama
from tests.common.llm.backends import (
    chat_bodies as backend_chat_bodies,
)
from tests.common.llm.backends import (
    model_settings,
    parametrize_backends,
    serve_stand_in,
)

SOFA = "Перекрась диван в тёмно-зелёный бархат"

LIVING_ROOM = SourceAnalysis(
    description="A bright living room with a light grey fabric sofa under a large window.",
    subjects=("sofa", "window", "coffee table"),
    colors=("light grey", "white", "beige"),
    materials=("fabric", "wood"),
    style="photograph",
    lighting="soft daylight from the left",
    composition="eye-level wide shot, sofa centred",
)


def living_room_proto() -> common_pb2.ImageAnalysis:
    """:data:`LIVING_ROOM` as the vision service sends it."""
    return common_pb2.ImageAnalysis(
        description=LIVING_ROOM.description,
        subjects=LIVING_ROOM.subjects,
        colors=LIVING_ROOM.colors,
        materials=LIVING_ROOM.materials,
        style=LIVING_ROOM.style,
        lighting=LIVING_ROOM.lighting,
        composition=LIVING_ROOM.composition,
        source=common_pb2.ANALYSIS_SOURCE_MODEL,
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_backends(metafunc)


def planner_settings(url: str, **overrides: Any) -> PlannerSettings:
    """Settings for tests: the model server at ``url``, port 0, tiny backoffs, a slow
    readiness watch."""
    values: dict[str, Any] = {
        **model_settings(url),
        "port": 0,
        "retry_initial_backoff_s": 0.01,
        "retry_max_backoff_s": 0.02,
        "readiness_interval_s": 3600.0,
        "grace_period_s": 0.0,
        **overrides,
    }
    return PlannerSettings(**values)


@pytest.fixture
async def ollama(llm_backend: Backend) -> AsyncIterator[RunningFakeOllama]:
    """The Ollama stand-in with llava and gpt-oss installed, reached through the backend."""
    async with serve_stand_in(llm_backend) as running:
        yield running


def chat_bodies(running: RunningFakeOllama) -> list[dict[str, Any]]:
    """The chat request bodies the stand-in received, oldest first."""
    return backend_chat_bodies(running)


@asynccontextmanager
async def planner_server(
    settings: PlannerSettings,
) -> AsyncIterator[tuple[GrpcServer, planner_pb2_grpc.PlannerServiceStub]]:
    """A started planner server and a stub on a real channel to it."""
    host = await create_server(settings)
    port = await host.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield host, planner_pb2_grpc.PlannerServiceStub(channel)  # type: ignore[no-untyped-call]
    finally:
        await channel.close()
        await host.stop(0)


def plan_request(
    instruction: str = SOFA,
    *,
    analysis: common_pb2.ImageAnalysis | None = None,
    mode: common_pb2.GenerationMode = common_pb2.GENERATION_MODE_UNSPECIFIED,
    **overrides: Any,
) -> planner_pb2.PlanPromptRequest:
    """A PlanPrompt request; keyword arguments become sampler overrides."""
    return planner_pb2.PlanPromptRequest(
        instruction=instruction,
        analysis=analysis,
        mode=mode,
        overrides=common_pb2.SamplerSettings(**overrides),
    )


# --------------------------------------------------------------------------- scripted model server

URL = "http://ollama.test:11434"


def plan_json(**fields: Any) -> str:
    """A plan answer as the model writes it; fields override a good colour-change plan."""
    answer: dict[str, Any] = {
        "intent": "color_change",
        "positive_prompt": (
            "A dark green velvet sofa in a bright living room under a large window. "
            "Photograph, soft daylight from the left."
        ),
        "negative_prompt": "grey sofa, blurry, low quality",
        "denoise": 0.85,
        "steps": 28,
        "guidance": 3.5,
        **fields,
    }
    return json.dumps(answer, ensure_ascii=False)


def chat_stream(content: str, *, done_reason: str = "stop", thinking: str = "ok") -> httpx.Response:
    """A 200 NDJSON chat stream: thinking, then the content, then the done line."""
    lines = [
        {"message": {"role": "assistant", "content": "", "thinking": thinking}, "done": False},
        {"message": {"role": "assistant", "content": content}, "done": False},
        {"message": {"role": "assistant", "content": ""}, "done": True, "done_reason": done_reason},
    ]
    body = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    return httpx.Response(200, text=body, headers={"content-type": "application/x-ndjson"})


def as_completion(reply: httpx.Response) -> httpx.Response:
    """What Ollama's ``/v1/chat/completions`` answers where ``/api/chat`` answers ``reply``.

    Its middleware's translation: the streamed pieces joined into one ``chat.completion``
    (thinking as ``reasoning``, ``done_reason`` as ``finish_reason``); an error status, or
    an error line in the stream (a runner failure, then 500), as an OpenAI error object.
    """
    if reply.status_code != 200:
        return _openai_error(reply.status_code, str(reply.json().get("error", reply.text)))
    lines = [json.loads(line) for line in reply.text.splitlines() if line.strip()]
    failure = next((line["error"] for line in lines if "error" in line), None)
    if failure is not None:
        return _openai_error(500, str(failure))
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(line["message"]["content"] for line in lines),
    }
    thinking = "".join(line["message"].get("thinking") or "" for line in lines)
    if thinking:
        message["reasoning"] = thinking
    choice = {"index": 0, "message": message, "finish_reason": lines[-1].get("done_reason")}
    return httpx.Response(
        200, json={"id": "chatcmpl-1", "object": "chat.completion", "choices": [choice]}
    )


def _openai_error(status: int, message: str) -> httpx.Response:
    error = {"message": message, "type": "api_error", "param": None, "code": None}
    return httpx.Response(status, json={"error": error})


@dataclass
class ScriptedOllama:
    """An Ollama at the HTTP layer that answers chats from a script.

    Each chat request takes the next response of ``replies`` (the last one repeats):
    on ``/api/chat`` as written, on ``/v1/chat/completions`` as Ollama's OpenAI-compatible
    route translates it (:func:`as_completion`). ``show`` answers for the model with the
    given capabilities; ``/v1/models`` lists the model.
    """

    replies: list[Callable[[], httpx.Response]]
    capabilities: list[str] = field(default_factory=lambda: ["completion", "thinking"])
    chats: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seeds(self) -> list[Any]:
        """The seed of each chat, whichever API carried it."""
        return [chat.get("options", chat).get("seed") for chat in self.chats]

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/show":
            return httpx.Response(200, json={"capabilities": self.capabilities})
        if request.url.path == "/api/version":
            return httpx.Response(200, json={"version": "0.12.6"})
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": "gpt-oss:20b"}]})
        self.chats.append(json.loads(request.content))
        reply = self.replies[min(len(self.chats), len(self.replies)) - 1]()
        return as_completion(reply) if request.url.path.startswith("/v1/") else reply


def scripted_planner(
    backend: Backend, *replies: Callable[[], httpx.Response], **overrides: Any
) -> tuple[Planner, ScriptedOllama, ModelProbe]:
    """A planner whose model server answers from ``replies``, through the backend's API."""
    script = ScriptedOllama(list(replies))
    url = f"{URL}/v1" if backend == "openai" else URL
    settings = planner_settings(url, **overrides)
    http = httpx.AsyncClient(transport=httpx.MockTransport(script.handle))
    client: ChatModel = (
        OpenAICompatibleClient(url, client=http)
        if backend == "openai"
        else OllamaClient(url, client=http)
    )
    probe = text_model_probe(client, settings.model)
    return Planner(settings, client, probe), script, probe
