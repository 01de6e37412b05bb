"""The OpenAI-compatible adapter: the chat-model protocol over ``/v1/chat/completions``.

Serves vision and planner from vLLM, llama.cpp's ``llama-server``, LM Studio or Ollama's
own ``/v1``: a thin typed client over one pooled ``httpx.AsyncClient`` (the ``openai``
package is a test peer, never a runtime dependency)::

    client = OpenAICompatibleClient("http://vllm:8000/v1", api_key="…", timeout_s=120.0)
    reply = await client.chat(request)  # a services.common.llm.ChatRequest
    await client.inspect("qwen2.5-vl-7b", timeout_s=5.0)  # GET /v1/models lists it?

| protocol | wire |
|---|---|
| ``json_schema`` | ``response_format``: ``json_schema`` with ``name``, ``schema``, ``strict`` |
| images | ``image_url`` parts, ``data:<type>;base64,…`` (the one form every server takes) |
| ``max_tokens`` | ``max_tokens`` (Ollama ignores ``max_completion_tokens``) |
| ``think`` | ``reasoning_effort`` (LM Studio ignores it: its UI setting wins) |
| ``context_tokens``, ``keep_alive`` | not sent: fixed when the server starts |
| reply reasoning | ``message.reasoning`` or ``message.reasoning_content`` |

Statuses: 404 with an error object is a missing model (vLLM, Ollama, LM Studio); a 404
without one means the URL is not an API root. 401/403 are refused credentials. 408, 409,
429 and 5xx (llama.cpp's 503 "Loading model", Ollama's 503 "server busy") are
unavailability, retried by the caller. The API cannot unload a model, so :meth:`release`
reports that instead of freeing memory.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import ValidationError

from services.common.llm.chat import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    ModelInfo,
    Release,
)
from services.common.llm.errors import (
    ModelError,
    ModelNotFoundError,
    ModelRequestError,
    ModelUnavailableError,
    UnusableAnswerError,
)
from services.common.llm.openai.wire import Completion, ModelCard, ModelList
from services.common.llm.transport import HttpBackend, timeouts

__all__ = ["RELEASE_UNSUPPORTED", "OpenAICompatibleClient", "to_openai"]

RELEASE_UNSUPPORTED = (
    "the OpenAI-compatible API has no call to unload a model: the server keeps it in GPU memory"
)
"""What :meth:`OpenAICompatibleClient.release` reports."""

_NAME = "the OpenAI-compatible server"


class OpenAICompatibleClient(HttpBackend):
    """Typed async client of one OpenAI-compatible server; implements :class:`ChatModel`.

    Args:
        base_url: The API root, ``/v1`` included, e.g. ``http://vllm:8000/v1``.
        api_key: Sent as ``Authorization: Bearer …``; None sends no header.
        timeout_s: Default budget of one call, connection to last byte.
        client: An ``httpx.AsyncClient`` to use instead of the adapter's own (tests);
            never closed by the adapter.
        max_connections: Pool size; requests beyond it wait for a free connection.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        client: httpx.AsyncClient | None = None,
        max_connections: int = 16,
    ) -> None:
        super().__init__(
            base_url,
            backend="openai",
            name=_NAME,
            timeout_s=timeout_s,
            client=client,
            max_connections=max_connections,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else None,
        )

    async def chat(self, request: ChatRequest, *, timeout_s: float | None = None) -> ChatResponse:
        """``POST /chat/completions`` (not streamed) and the first choice's answer.

        Raises:
            ModelUnavailableError: Unreachable, timed out, 408/409/429 or 5xx.
            ModelNotFoundError: The server does not serve the model (404 with an error).
            ModelRequestError: The server refused the request or the credentials.
            UnusableAnswerError: Not a completion, no content (``length``: the token
                limit), or a refusal.
        """
        budget = self._budget(timeout_s)
        async with self._call("chat completion", budget):
            response = await self._client.post(
                f"{self.base_url}/chat/completions",
                json=to_openai(request),
                headers=self._headers,
                timeout=timeouts(budget),
            )
            if response.status_code != 200:
                raise self._status_error(response, model=request.model)
            completion = _parse_completion(response)
        return _answer(request.model, completion)

    async def inspect(self, model: str, *, timeout_s: float) -> ModelInfo:
        """``GET /models`` lists ``model``; capabilities are not reported by this API.

        Raises:
            ModelNotFoundError: The list does not hold the model.
            ModelUnavailableError: The server does not answer.
            ModelRequestError: The URL is not an API root, or the credentials are refused.
        """
        cards = await self.models(timeout_s=timeout_s)
        if not any(_serves(card, model, alone=len(cards) == 1) for card in cards):
            listed = ", ".join(card.id for card in cards) or "none"
            raise ModelNotFoundError(
                model,
                backend=self.backend,
                server=f"{_NAME} at {self.base_url}",
                remedy=f"it serves {listed}; configure one of those names",
                status_code=None,
            )
        return ModelInfo(model=model, capabilities=None)

    async def server_version(self, *, timeout_s: float) -> str:
        """Empty: the OpenAI-compatible API has no version call."""
        return ""

    async def release(self, model: str, *, timeout_s: float) -> Release:
        """Reports that the API cannot unload a model; frees nothing."""
        return Release(unsupported=RELEASE_UNSUPPORTED)

    async def models(self, *, timeout_s: float | None = None) -> list[ModelCard]:
        """``GET /models``: the models the server serves."""
        budget = self._budget(timeout_s)
        async with self._call("model list", budget):
            response = await self._client.get(
                f"{self.base_url}/models", headers=self._headers, timeout=timeouts(budget)
            )
            if response.status_code != 200:
                raise self._status_error(response, model=None)
            try:
                return ModelList.model_validate_json(response.content).data
            except ValidationError as exc:
                raise UnusableAnswerError(
                    f"{_NAME} answered GET /models with an unexpected shape: {exc}"
                ) from exc

    def _status_error(self, response: httpx.Response, *, model: str | None) -> ModelError:
        """Map a non-200 answer to its error class (on the status, never on the text)."""
        status = response.status_code
        detail, structured = _error_text(response)
        where = f"{_NAME} at {self.base_url}"
        if status == 404 and not structured:
            return ModelRequestError(
                f"{where} has no {response.request.url.path} (404): is the URL the API root, "
                f"ending in /v1?",
                status_code=status,
            )
        if status == 404 and model is not None:
            return ModelNotFoundError(
                model,
                backend=self.backend,
                server=where,
                remedy="serve it there, or configure a name GET /v1/models lists",
                detail=detail,
                status_code=status,
            )
        if status in (401, 403):
            return ModelRequestError(
                f"{where} refused the credentials ({status}): {detail}; check the API key",
                status_code=status,
            )
        if status >= 500 or status in (408, 409, 429):
            return ModelUnavailableError(f"{where} answered {status}: {detail}", status_code=status)
        return ModelRequestError(
            f"{where} refused the request ({status}): {detail}", status_code=status
        )


def to_openai(request: ChatRequest) -> dict[str, Any]:
    """The ``/v1/chat/completions`` body of a protocol request (unset fields left out).

    Args:
        request: The backend-neutral request.

    Returns:
        The JSON body, not streamed.
    """
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m) for m in request.messages],
        "stream": False,
    }
    if request.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": request.schema_name,
                "schema": dict(request.json_schema),
                "strict": True,
            },
        }
    for key, value in (
        ("temperature", request.temperature),
        ("seed", request.seed),
        ("max_tokens", request.max_tokens),
        ("reasoning_effort", request.think),
    ):
        if value is not None:
            body[key] = value
    return body


def _message(message: ChatMessage) -> dict[str, Any]:
    if not message.images:
        return {"role": message.role, "content": message.content}
    parts: list[dict[str, Any]] = []
    if message.content:
        parts.append({"type": "text", "text": message.content})
    parts += [
        {"type": "image_url", "image_url": {"url": f"data:{i.media_type};base64,{i.base64}"}}
        for i in message.images
    ]
    return {"role": message.role, "content": parts}


def _serves(card: ModelCard, model: str, *, alone: bool) -> bool:
    names = {card.id, *card.aliases}
    if model in names or f"{model}:latest" in names:  # Ollama's /v1 lists "llava:latest"
        return True
    # llama-server with one model ignores the requested name and answers with its own.
    return alone and card.owned_by == "llamacpp"


def _error_text(response: httpx.Response) -> tuple[str, bool]:
    """The error message of a body, and whether it was an error object at all.

    Handles ``{"error": {"message": …}}`` (vLLM ≥ 0.10.1, llama.cpp, Ollama),
    ``{"error": "…"}`` (LM Studio, vLLM's 401) and the flat ``{"object": "error",
    "message": …}`` of older vLLM.
    """
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:500], False
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"]), True
        if isinstance(error, str):
            return error, True
        if isinstance(data.get("message"), str):
            return str(data["message"]), True
    return response.text.strip()[:500], False


def _parse_completion(response: httpx.Response) -> Completion:
    try:
        data = response.json()
    except ValueError as exc:
        raise UnusableAnswerError(
            f"{_NAME} answered with invalid JSON: {response.text[:200]!r}"
        ) from exc
    if isinstance(data, dict) and "error" in data:
        raise UnusableAnswerError(f"{_NAME} failed: {_error_text(response)[0]}", status_code=200)
    try:
        return Completion.model_validate(data)
    except ValidationError as exc:
        raise UnusableAnswerError(f"{_NAME} answered an unexpected shape: {exc}") from exc


def _answer(model: str, completion: Completion) -> ChatResponse:
    """The protocol's answer of a completion; refuses one that cannot be used."""
    if not completion.choices:
        raise UnusableAnswerError(f"{model} answered without a choice")
    choice = completion.choices[0]
    message = choice.message
    content = message.content or ""
    if message.refusal:
        raise UnusableAnswerError(f"{model} refused: {message.refusal}", retryable=False)
    if not content.strip():
        why = (
            "hit the token limit before answering (max_tokens too small)"
            if choice.finish_reason == "length"
            else f"answered nothing (finish_reason {choice.finish_reason!r})"
        )
        raise UnusableAnswerError(f"{model} {why}")
    usage = completion.usage
    return ChatResponse(
        content=content,
        reasoning=message.reasoning_text,
        model=completion.model,
        finish_reason=choice.finish_reason,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
    )
