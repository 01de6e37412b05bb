"""The chat-model protocol: what a service asks a language model, whatever serves it.

A request is messages (images attached as base64), an optional JSON schema the answer must
follow, and sampling choices as plain fields; each adapter turns them into its server's
wire form (Ollama's ``/api/chat``, the OpenAI-compatible ``/v1/chat/completions``)::

    request = ChatRequest(
        model="llava",
        messages=(
            ChatMessage("system", "Answer in JSON."),
            ChatMessage("user", "Describe it.", images=(ChatImage(b64),)),
        ),
        json_schema=Reply.model_json_schema(),
        temperature=0.1,
        seed=42,
        max_tokens=1024,
    )
    reply = await model.chat(request, timeout_s=30.0)
    reply.content  # the JSON text the schema asked for

| field | Ollama | OpenAI-compatible |
|---|---|---|
| ``json_schema`` | ``format`` | ``response_format: json_schema`` |
| ``max_tokens`` | ``options.num_predict`` | ``max_tokens`` |
| ``context_tokens`` | ``options.num_ctx`` | not sent (fixed when the server starts) |
| ``keep_alive`` | ``keep_alive`` | not sent (the server keeps its model loaded) |
| ``think`` | ``think`` | ``reasoning_effort`` |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

__all__ = [
    "ChatImage",
    "ChatMessage",
    "ChatModel",
    "ChatRequest",
    "ChatResponse",
    "ModelInfo",
    "Release",
    "Role",
    "ThinkLevel",
]

Role = Literal["system", "user", "assistant"]

ThinkLevel = Literal["low", "medium", "high"]
"""How much a reasoning model thinks before it answers."""


@dataclass(frozen=True)
class ChatImage:
    """An image attached to a message.

    Attributes:
        base64: Standard base64 of the encoded image, without a ``data:`` prefix.
        media_type: Its MIME type, e.g. ``image/jpeg``.
    """

    base64: str
    media_type: str = "image/jpeg"

    def __post_init__(self) -> None:
        if self.base64.startswith("data:"):
            raise ValueError("ChatImage.base64 must be plain base64 without a data: URI prefix")


@dataclass(frozen=True)
class ChatMessage:
    """One message of a chat.

    | usage | example |
    |---|---|
    | instructions | ``ChatMessage("system", "Answer in JSON.")`` |
    | a question about an image | ``ChatMessage("user", "…", images=(ChatImage(b64),))`` |
    | an earlier answer (re-ask) | ``ChatMessage("assistant", reply_text)`` |
    """

    role: Role
    content: str = ""
    images: tuple[ChatImage, ...] = ()


@dataclass(frozen=True)
class ChatRequest:
    """One question to a model.

    Attributes:
        model: The model's name on its server.
        messages: The chat so far, the question last.
        json_schema: The JSON Schema the answer must follow; None for free text.
        schema_name: A name for the schema (OpenAI-compatible servers require one).
        temperature: Sampling temperature; None for the server's default.
        seed: Sampling seed; None for a random one.
        max_tokens: Most tokens generated, thinking included.
        context_tokens: Context window, where the server takes it per request (Ollama).
        keep_alive: How long the server keeps the model loaded after the call, where it
            takes that per request (Ollama: ``"10m"``, ``0``, ``-1``).
        think: Thinking level for a reasoning model; None leaves the choice to the server.
        cut: What was cut from the messages to fit the context window, one note per
            message (see :mod:`services.common.llm.context`); callers pass them on as
            warnings.
    """

    model: str
    messages: tuple[ChatMessage, ...]
    json_schema: Mapping[str, Any] | None = None
    schema_name: str = "answer"
    temperature: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    context_tokens: int | None = None
    keep_alive: str | int | None = None
    think: ThinkLevel | None = None
    cut: tuple[str, ...] = ()

    def with_seed(self, seed: int) -> ChatRequest:
        """The same request with another seed."""
        return replace(self, seed=seed)

    def for_log(self) -> dict[str, Any]:
        """The request as log fields, each image replaced by its size."""
        return {
            "model": self.model,
            "messages": [_message_for_log(m) for m in self.messages],
            "json_schema": self.json_schema is not None,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "context_tokens": self.context_tokens,
            "keep_alive": self.keep_alive,
            "think": self.think,
        }


def _message_for_log(message: ChatMessage) -> dict[str, Any]:
    logged: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.images:
        logged["images"] = [f"<{len(image.base64)} base64 chars>" for image in message.images]
    return logged


@dataclass(frozen=True)
class ChatResponse:
    """A model's whole answer.

    Attributes:
        content: The answer text (the JSON a schema asked for).
        reasoning: The thinking trace of a reasoning model; empty otherwise.
        model: The model that answered, as the server names it.
        finish_reason: Why generation stopped (``stop``, ``length``…), when the server says.
        prompt_tokens: Tokens read, when the server counts them.
        completion_tokens: Tokens generated, when the server counts them.
        timings: The server's own timings in milliseconds (``load_ms``…), for logs.
    """

    content: str
    reasoning: str = ""
    model: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    timings: Mapping[str, float | None] = field(default_factory=dict)

    def metrics_for_log(self) -> dict[str, Any]:
        """Finish reason, token counts and timings, for logs."""
        return {
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            **self.timings,
        }


@dataclass(frozen=True)
class ModelInfo:
    """What a server tells about one of its models.

    Attributes:
        model: The model's name as asked.
        capabilities: What the model can do (``vision``, ``thinking``…) in the server's
            order; None when the server does not say (OpenAI-compatible servers list names only).
    """

    model: str
    capabilities: tuple[str, ...] | None = None

    def has_capability(self, capability: str) -> bool | None:
        """Whether the model has ``capability``; None when the server does not say."""
        return None if self.capabilities is None else capability in self.capabilities


@dataclass(frozen=True)
class Release:
    """What asking a server to free a model's GPU memory did.

    Attributes:
        released: Models that were loaded and have left memory.
        still_loaded: Models asked to leave that were still loaded when the wait ended.
        unsupported: Why the server cannot unload on request; empty when it can.
    """

    released: tuple[str, ...] = ()
    still_loaded: tuple[str, ...] = ()
    unsupported: str = ""


class ChatModel(Protocol):
    """A language-model server as the services use it; one per process, pooled.

    Every method raises only the errors of :mod:`services.common.llm.errors`.
    """

    @property
    def backend(self) -> str:
        """Short name of the kind of server (``ollama``, ``openai``), for logs and errors."""
        ...

    @property
    def name(self) -> str:
        """The server as a person calls it (``Ollama``), for messages."""
        ...

    @property
    def base_url(self) -> str:
        """Where the server is."""
        ...

    async def chat(self, request: ChatRequest, *, timeout_s: float | None = None) -> ChatResponse:
        """Asks once and returns the whole answer; ``timeout_s`` bounds the call."""
        ...

    async def inspect(self, model: str, *, timeout_s: float) -> ModelInfo:
        """Whether the server has ``model`` and what it can do.

        Raises:
            ModelNotFoundError: The server does not have it.
            ModelUnavailableError: The server does not answer.
        """
        ...

    async def server_version(self, *, timeout_s: float) -> str:
        """The server's version; empty when its API does not tell."""
        ...

    async def release(self, model: str, *, timeout_s: float) -> Release:
        """Frees the GPU memory ``model`` holds, waiting until it is free (or the timeout)."""
        ...

    async def aclose(self) -> None:
        """Closes the pooled connections."""
        ...
