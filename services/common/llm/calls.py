"""One question to a language model, retried with backoff inside the caller's deadline.

The vision and planner services ask their model the same way: each attempt gets what is
left of the deadline (at most one call's budget), is logged as request, reply or failure,
and its answer is parsed by the service; failures worth another attempt (connect errors,
timeouts, 5xx, unusable answers) are retried, and a model that is not pulled ends the
request as FAILED_PRECONDITION at once::

    plan = await call_model_with_retries(
        model,  # any ChatModel
        settings.chat_request(messages, json_schema=PLAN_SCHEMA),  # a ChatModelSettings
        lambda reply: parse_plan(reply.content),  # raises UnusableAnswerError when unusable
        policy=settings.retry_policy(),
        deadline=deadline - reserve_s,  # what the fallback needs is kept back
        call_timeout_s=settings.call_timeout_s,
        logger=_log,
        label="planner model",
        probe=probe,  # a call in flight when the probe finds the server hung ends at once
    )
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from services.common.errors import (
    BackendUnavailableError,
    FailedPreconditionError,
    PreconditionViolation,
)
from services.common.llm.chat import ChatModel, ChatRequest, ChatResponse, Release
from services.common.llm.errors import (
    ModelError,
    ModelNotFoundError,
    UnusableAnswerError,
    is_retryable,
)
from services.common.llm.probe import ModelProbe
from services.common.retry import RetryPolicy, remaining, retry_async

__all__ = ["RequestLog", "call_model_with_retries", "model_not_found", "release_model"]

T = TypeVar("T")

RequestLog = Callable[[ChatRequest], Mapping[str, Any]]
"""What to log of an attempt's request: log fields made from the request."""


def _whole_request(request: ChatRequest) -> Mapping[str, Any]:
    return {"request": request.for_log()}


async def call_model_with_retries(
    client: ChatModel,
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
    probe: ModelProbe | None = None,
) -> T:
    """Asks the model until ``parse`` accepts an answer, the attempts run out or time does.

    After an unusable answer (:class:`UnusableAnswerError`) the next attempt uses the
    following ``seed``: the same seed would give the same answer again. Other retries
    keep the seed, so a request is answered the same way however often the server was down.

    Args:
        client: The model's adapter.
        request: The question; its ``seed``, when set, is the first attempt's.
        parse: Makes the result of a reply; raises :class:`UnusableAnswerError` (retryable
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
        probe: The model's readiness probe: when it finds the server hung, the attempt in
            flight is abandoned and no other is made.

    Returns:
        What ``parse`` made of the first usable reply.

    Raises:
        FailedPreconditionError: The server does not have the model (no retry).
        ModelError: The last attempt's error, when it is not retryable, the attempts
            are used up, or the next pause would pass the deadline;
            :class:`ModelServerHungError` as soon as the probe finds the server hung.
    """
    attempt = 0
    unusable = 0
    seed = request.seed

    async def once() -> T:
        nonlocal attempt, unusable
        attempt += 1
        chat = request
        if seed is not None and unusable:
            chat = request.with_seed(seed + unusable)
        timeout_s = min(call_timeout_s, remaining(deadline, 0.0))
        log = {**(log_fields or {}), "attempt": attempt, "model": request.model}
        logger.info(
            "%s request",
            label,
            extra={**log, "timeout_s": round(timeout_s, 3), **request_log(chat)},
        )
        started = time.perf_counter()
        try:
            if probe is None:
                reply = await client.chat(chat, timeout_s=timeout_s)
            else:
                reply = await probe.unless_hung(lambda: client.chat(chat, timeout_s=timeout_s))
            logger.info(
                "%s reply",
                label,
                extra={
                    **log,
                    "elapsed_ms": _ms_since(started),
                    "content": reply.content,
                    "reasoning_chars": len(reply.reasoning),
                    **reply.metrics_for_log(),
                },
            )
            return parse(reply)
        except ModelError as exc:
            if isinstance(exc, UnusableAnswerError):
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
    except ModelNotFoundError as exc:
        raise model_not_found(exc) from exc


def model_not_found(exc: ModelNotFoundError) -> FailedPreconditionError:
    """The FAILED_PRECONDITION a missing model ends a request with, naming the remedy.

    Args:
        exc: The adapter's error for the missing model.

    Returns:
        The error to raise; its violation (type ``OLLAMA_MODEL``, ``OPENAI_MODEL``…)
        tells the operator what to do, e.g. to ``ollama pull`` the model.
    """
    return FailedPreconditionError(
        exc.message,
        reason="MODEL_NOT_FOUND",
        metadata={"backend": exc.backend, "model": exc.model},
        violations=[
            PreconditionViolation(
                type=f"{exc.backend.upper()}_MODEL", subject=exc.model, description=exc.remedy
            )
        ],
    )


async def release_model(client: ChatModel, model: str, *, timeout_s: float) -> Release:
    """Asks the server to free the GPU memory ``model`` holds, for a service's RPC.

    Args:
        client: The model's adapter.
        model: The service's model.
        timeout_s: Longest wait for the memory to be free.

    Returns:
        What the server did (released, still loaded, or that it cannot unload).

    Raises:
        BackendUnavailableError: The server could not be asked (UNAVAILABLE).
    """
    try:
        return await client.release(model, timeout_s=timeout_s)
    except ModelError as exc:
        raise BackendUnavailableError(
            f"could not release {model!r}: {exc.message}", backend=client.backend
        ) from exc


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
