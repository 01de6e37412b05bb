"""One question to an Ollama model, retried with backoff inside the caller's deadline.

The vision and planner services ask their model the same way: each attempt gets what is
left of the deadline (at most one call's budget), is logged as request, reply or failure,
and its answer is parsed by the service; failures worth another attempt (connect errors,
timeouts, 5xx, unusable answers) are retried, and a model that is not pulled ends the
request as FAILED_PRECONDITION at once::

    plan = await call_model_with_retries(
        client,
        settings.chat_request(messages, format=PLAN_SCHEMA),  # an OllamaModelSettings
        lambda reply: parse_plan(reply.content),  # raises OllamaResponseError when unusable
        policy=settings.retry_policy(),
        deadline=deadline - reserve_s,  # what the fallback needs is kept back
        call_timeout_s=settings.call_timeout_s,
        logger=_log,
        label="planner model",
    )
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from services.common.errors import FailedPreconditionError, PreconditionViolation
from services.common.ollama import (
    ChatRequest,
    ChatResponse,
    OllamaClient,
    OllamaError,
    OllamaModelNotFoundError,
    OllamaResponseError,
    is_retryable,
)
from services.common.retry import RetryPolicy, remaining, retry_async

__all__ = ["RequestLog", "call_model_with_retries", "model_not_found"]

T = TypeVar("T")

RequestLog = Callable[[ChatRequest], Mapping[str, Any]]
"""What to log of an attempt's request: log fields made from the request."""


def _whole_request(request: ChatRequest) -> Mapping[str, Any]:
    return {"request": request.for_log()}


async def call_model_with_retries(
    client: OllamaClient,
    request: ChatRequest,
    parse: Callable[[ChatResponse], T],
    *,
    policy: RetryPolicy,
    deadline: float,
    call_timeout_s: float,
    logger: logging.Logger,
    label: str,
    log_fields: Mapping[str, Any] | None = None,
    request_log: RequestLog = _whole_request,
) -> T:
    """Asks the model until ``parse`` accepts an answer, the attempts run out or time does.

    After an unusable answer (:class:`OllamaResponseError`) the next attempt uses the
    following ``seed``: the same seed would give the same answer again. Other retries
    keep the seed, so a request is answered the same way however often Ollama was down.

    Args:
        client: The Ollama adapter.
        request: The question; its ``options["seed"]``, when set, is the first attempt's.
        parse: Makes the result of a reply; raises :class:`OllamaResponseError` (retryable
            unless it says otherwise) for an answer that cannot be used.
        policy: Attempts and pauses.
        deadline: ``time.monotonic()`` instant after which no attempt or pause runs.
        call_timeout_s: Budget of one attempt; less when the deadline is nearer.
        logger: Where the attempts are logged (the calling module's logger).
        label: What the model is to the caller, e.g. "vision model"; starts each line.
        log_fields: Fields added to each line (the phase, the prompt version …); the
            attempt number and the model are always there.
        request_log: The fields that describe an attempt's request; the whole request
            (images as sizes) by default.

    Returns:
        What ``parse`` made of the first usable reply.

    Raises:
        FailedPreconditionError: The model is not pulled on the Ollama server (no retry).
        OllamaError: The last attempt's error, when it is not retryable, the attempts
            are used up, or the next pause would pass the deadline.
    """
    attempt = 0
    unusable = 0
    seed = request.options.get("seed")

    async def once() -> T:
        nonlocal attempt, unusable
        attempt += 1
        chat = request
        if isinstance(seed, int) and unusable:
            chat = request.model_copy(
                update={"options": {**request.options, "seed": seed + unusable}}
            )
        timeout_s = min(call_timeout_s, remaining(deadline, 0.0))
        log = {**(log_fields or {}), "attempt": attempt, "model": request.model}
        logger.info(
            "%s request",
            label,
            extra={**log, "timeout_s": round(timeout_s, 3), **request_log(chat)},
        )
        started = time.perf_counter()
        try:
            reply = await client.chat(chat, timeout_s=timeout_s)
            logger.info(
                "%s reply",
                label,
                extra={
                    **log,
                    "elapsed_ms": _ms_since(started),
                    "content": reply.content,
                    "thinking_chars": len(reply.thinking),
                    **reply.metrics_for_log(),
                },
            )
            return parse(reply)
        except OllamaError as exc:
            if isinstance(exc, OllamaResponseError):
                unusable += 1
            logger.warning(
                "%s attempt failed",
                label,
                extra={
                    **log,
                    "elapsed_ms": _ms_since(started),
                    "error": exc.message,
                    "error_type": type(exc).__name__,
                    "retryable": is_retryable(exc),
                },
            )
            raise

    try:
        return await retry_async(once, policy=policy, retryable=is_retryable, deadline=deadline)
    except OllamaModelNotFoundError as exc:
        raise model_not_found(exc) from exc


def model_not_found(exc: OllamaModelNotFoundError) -> FailedPreconditionError:
    """The FAILED_PRECONDITION a missing model ends a request with, naming what to pull.

    Args:
        exc: The adapter's error for the model's 404.

    Returns:
        The error to raise; its violation tells the operator to ``ollama pull`` the model.
    """
    return FailedPreconditionError(
        exc.message,
        reason="MODEL_NOT_FOUND",
        metadata={"backend": "ollama", "model": exc.model},
        violations=[
            PreconditionViolation(
                type="OLLAMA_MODEL",
                subject=exc.model,
                description=f"run `ollama pull {exc.model}` on the Ollama host",
            )
        ],
    )


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
