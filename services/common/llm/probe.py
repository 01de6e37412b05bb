"""Whether a service's model can be used: its server answers and has the model.

A service runs :meth:`ModelProbe.check` in the background (``GrpcServer.watch_readiness``)
and reads the last answer on each request, so it can go straight to its fallback while
the server is down instead of spending a round of retries against a dead server::

    probe = ModelProbe(model, "llava", required_capability="vision", label="vision model")
    host.watch_readiness(probe.check, settings.readiness_interval_s)
    ...
    if probe.state is ModelState.BACKEND_DOWN:
        return fallback(probe.reason)
    probe.has_capability("thinking")  # None until known (never, for a server that does not say)

A model without a capability the service relies on is not refused by every server (Ollama
silently drops an image sent to a text model), so such a model is reported as not ready.
A server that does not report capabilities (the OpenAI-compatible API) is taken at its
word: its model is ready when it is listed, and the reason says the capability is unverified.

Calls already waiting on a server when the probe finds it hung (the probe itself timed out)
are abandoned at once (:meth:`ModelProbe.unless_hung`), so a hung server costs them one
probe interval, not their whole timeout. A server that refuses connections is down but not
hung: calls on it fail at once by themselves and are retried, so a restart of the server
costs no fallback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TypeVar

from services.common.llm.chat import ChatModel, ModelInfo
from services.common.llm.errors import (
    ModelError,
    ModelNotFoundError,
    ModelServerHungError,
    ModelTimeoutError,
)
from services.common.logs import get_logger

__all__ = ["PROBE_TIMEOUT_S", "ModelProbe", "ModelState"]

_log = get_logger(__name__)

T = TypeVar("T")

PROBE_TIMEOUT_S = 5.0
"""Budget of each call of a probe: a live server answers at once."""


class ModelState(StrEnum):
    """What the last probe found."""

    UNKNOWN = "unknown"
    """Not probed yet: requests try the model."""
    READY = "ready"
    """The server answers, has the model, and the model has the required capability."""
    BACKEND_DOWN = "backend_down"
    """The server did not answer: requests go to the service's fallback."""
    MODEL_MISSING = "model_missing"
    """The server answers but lacks the model: requests fail FAILED_PRECONDITION."""
    LACKS_CAPABILITY = "lacks_capability"
    """The model exists but lacks the capability the service requires."""


class ModelProbe:
    """Probes a server for one model and remembers the answer.

    Args:
        client: The model's adapter.
        model: The model's name.
        required_capability: A capability the model must have ("vision", …) to count as
            ready; None when any model the server has will do.
        label: What the model is to the service, e.g. "vision model"; starts each log
            line about a change of state.
        consequence: What using the model without the required capability would do,
            appended to :attr:`reason` (which reaches callers in fallback warnings).
        timeout_s: Budget of each call of a probe.

    Attributes:
        model: The model's name.
        state: What the last probe found.
        reason: Why, in words (logged on every change of state).
        server_version: The server's version, read once the model is first found ready
            (empty when its API does not tell).
    """

    def __init__(
        self,
        client: ChatModel,
        model: str,
        required_capability: str | None = None,
        *,
        label: str = "model",
        consequence: str = "",
        timeout_s: float = PROBE_TIMEOUT_S,
    ) -> None:
        self._client = client
        self._timeout_s = timeout_s
        # Set while the last probe timed out: what in-flight calls watch.
        self._hung = asyncio.Event()
        self._required = required_capability
        self._label = label
        self._consequence = consequence
        # Kept across failed probes: capabilities do not change while the server is down.
        self._info: ModelInfo | None = None
        self._version_read = False
        self.model = model
        self.state = ModelState.UNKNOWN
        self.reason = "not probed yet"
        self.server_version = ""

    def has_capability(self, capability: str) -> bool | None:
        """Whether the model has ``capability``, as the last answered probe read it.

        Args:
            capability: A capability name, e.g. "thinking".

        Returns:
            None until a probe has read the model's capabilities, or when the server does
            not report them; then whether the model has it.
        """
        return None if self._info is None else self._info.has_capability(capability)

    async def check(self) -> bool:
        """Probes once; True when the model is usable. Logs each change of state."""
        try:
            info = await self._client.inspect(self.model, timeout_s=self._timeout_s)
        except ModelNotFoundError as exc:
            self._set(ModelState.MODEL_MISSING, exc.message)
        except ModelError as exc:
            self._set(
                ModelState.BACKEND_DOWN,
                f"{self._client.name} does not answer: {exc.message}",
                hung=isinstance(exc, ModelTimeoutError),
            )
        else:
            self._info = info
            has = None if self._required is None else info.has_capability(self._required)
            if has is False:
                reason = (
                    f"model {self.model!r} lacks the {self._required} capability "
                    f"(capabilities: {self._listed()})"
                )
                if self._consequence:
                    reason += f"; {self._consequence}"
                self._set(ModelState.LACKS_CAPABILITY, reason)
            else:
                if not self._version_read:
                    await self._log_version()
                reason = f"{self.model} is available ({self._listed()})"
                if has is None and self._required is not None:
                    reason += (
                        f"; {self._client.name} does not report whether it has {self._required}"
                    )
                self._set(ModelState.READY, reason)
        return self.state is ModelState.READY

    async def unless_hung(self, call: Callable[[], Awaitable[T]]) -> T:
        """Makes ``call()`` and awaits it unless a probe finds the server hung first.

        Args:
            call: Starts a call to the model's server (a chat); not made while the last
                probe timed out, cancelled when a probe times out before it ends.

        Returns:
            What ``call`` returned.

        Raises:
            ModelServerHungError: The server was, or was found, hung before ``call``
                finished.
        """
        if self._hung.is_set():
            raise ModelServerHungError(f"not asked: {self.reason}")
        attempt = asyncio.ensure_future(call())
        hung = asyncio.ensure_future(self._hung.wait())
        try:
            await asyncio.wait({attempt, hung}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hung.cancel()
            if not attempt.done():
                attempt.cancel()
        if attempt.done() and not attempt.cancelled():
            return attempt.result()
        # Abandoned: let the cancelled call finish unwinding (closing its connection).
        await asyncio.wait({attempt})
        raise ModelServerHungError(f"abandoned: {self.reason}")

    def _listed(self) -> str:
        capabilities = None if self._info is None else self._info.capabilities
        if capabilities is None:
            return "capabilities not reported"
        return ", ".join(capabilities) or "none listed"

    async def _log_version(self) -> None:
        try:
            self.server_version = await self._client.server_version(timeout_s=self._timeout_s)
        except ModelError:
            return
        self._version_read = True
        _log.info(
            "model server",
            extra={
                "backend": self._client.backend,
                "url": self._client.base_url,
                "version": self.server_version,
            },
        )

    def _set(self, state: ModelState, reason: str, *, hung: bool = False) -> None:
        if state is not self.state:
            capabilities = (
                None
                if self._info is None or self._info.capabilities is None
                else list(self._info.capabilities)
            )
            _log.log(
                logging.INFO if state is ModelState.READY else logging.WARNING,
                "%s %s",
                self._label,
                state.value,
                extra={"model": self.model, "reason": reason, "capabilities": capabilities},
            )
        self.state, self.reason = state, reason
        if hung:
            self._hung.set()
        else:
            self._hung.clear()
