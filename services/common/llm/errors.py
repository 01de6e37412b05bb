"""The errors every language-model adapter raises, whatever its server.

::

    ModelError                  base: .message, .status_code
     ├─ ModelUnavailableError   connect error, timeout, 5xx/408/429, cut stream (retryable)
     │   ├─ ModelTimeoutError     no answer within the budget (retryable)
     │   └─ ModelServerHungError  the readiness probe found the server not answering while
     │                            the call waited: abandoned at once, not retried
     ├─ ModelNotFoundError      the server does not have the model; .model, .backend, .remedy
     ├─ ModelRequestError       the server refused the request (400, 401, another 4xx)
     └─ UnusableAnswerError     a 200 whose answer cannot be used: an error inside the
                                stream, nothing generated, not the JSON asked for;
                                retryable unless it says otherwise

:func:`is_retryable` tells which of them are worth another attempt. The services map
them to statuses: a missing model is FAILED_PRECONDITION (:func:`services.common.llm.
calls.model_not_found`), the others lead to the service's fallback.
"""

from __future__ import annotations

__all__ = [
    "ModelError",
    "ModelNotFoundError",
    "ModelRequestError",
    "ModelServerHungError",
    "ModelTimeoutError",
    "ModelUnavailableError",
    "UnusableAnswerError",
    "is_retryable",
]


class ModelError(Exception):
    """Base of every error a language-model adapter raises.

    Attributes:
        message: What went wrong, for logs and status messages.
        status_code: The HTTP status the server answered with, when there was one.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class ModelUnavailableError(ModelError):
    """The server could not be reached or did not finish. Always worth a retry."""


class ModelTimeoutError(ModelUnavailableError):
    """The server did not answer within the call's budget. Worth a retry."""


class ModelServerHungError(ModelUnavailableError):
    """The readiness probe found the server not answering while a call waited for it.

    A hung server holds each call for its whole timeout; once the probe has timed out on
    it too, waiting longer (or retrying) only delays the fallback. Not retryable. (A server
    that refuses connections is not hung: calls on it fail at once and are retried, so a
    restart costs no fallback.)
    """


class ModelNotFoundError(ModelError):
    """The server does not have the model. Not retryable.

    Attributes:
        model: The model name as it was requested.
        backend: The kind of server (``ollama``, ``openai``).
        server: The server as a person calls it, e.g. "Ollama".
        remedy: What the operator does about it, e.g. "run `ollama pull llava` on the
            Ollama host".
    """

    def __init__(
        self,
        model: str,
        *,
        backend: str,
        server: str,
        remedy: str,
        detail: str = "",
        status_code: int | None = 404,
    ) -> None:
        text = f"{server} has no model {model!r}: {remedy}"
        if detail:
            text += f" (server said: {detail})"
        super().__init__(text, status_code=status_code)
        self.model = model
        self.backend = backend
        self.server = server
        self.remedy = remedy


class ModelRequestError(ModelError):
    """The server refused the request itself (400, 401, another 4xx). Not retryable."""


class UnusableAnswerError(ModelError):
    """The server answered, but the answer cannot be used.

    Attributes:
        retryable: Whether asking again may help (true unless the cause is deterministic).
    """

    def __init__(
        self, message: str, *, retryable: bool = True, status_code: int | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retryable = retryable


def is_retryable(exc: BaseException) -> bool:
    """Whether another attempt at the same call may succeed.

    Args:
        exc: Any exception raised around a model call.

    Returns:
        True for :class:`ModelUnavailableError` (unless the probe saw the server down)
        and a retryable :class:`UnusableAnswerError`; false for everything else,
        including a missing model, a refused request and cancellation.
    """
    if isinstance(exc, ModelServerHungError):
        return False
    if isinstance(exc, ModelUnavailableError):
        return True
    if isinstance(exc, UnusableAnswerError):
        return exc.retryable
    return False
