"""What the HTTP adapters share: one pooled client, call budgets, transport errors mapped once.

Each adapter subclasses :class:`HttpBackend` and wraps every call in :meth:`HttpBackend._call`,
which bounds it by its budget, turns httpx's failures into :class:`ModelUnavailableError`
and counts the outcome in ``imagegen_backend_calls_total{backend=…}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx

from services.common.backend_tls import backend_tls_context
from services.common.llm.errors import ModelError, ModelTimeoutError, ModelUnavailableError
from services.common.metrics import BACKEND_CALLS_TOTAL

__all__ = ["HttpBackend", "timeouts"]

# A model load can take minutes before the first byte; connecting to a live server never
# should. Separate budgets let a dead host fail in seconds without cutting off a slow load.
_CONNECT_TIMEOUT_S = 5.0
_POOL_TIMEOUT_S = 10.0
_WRITE_TIMEOUT_S = 30.0


def timeouts(budget: float) -> httpx.Timeout:
    """httpx timeouts for a call of ``budget`` seconds (read = gap between two chunks)."""
    return httpx.Timeout(
        budget,
        connect=min(_CONNECT_TIMEOUT_S, budget),
        pool=min(_POOL_TIMEOUT_S, budget),
        write=min(_WRITE_TIMEOUT_S, budget),
    )


class HttpBackend:
    """Base of an adapter that speaks HTTP to one language-model server.

    Args:
        base_url: The server's URL, as the adapter's API roots it.
        backend: The adapter's short name, the ``backend`` label of its metrics.
        name: The server as a person calls it, for messages.
        timeout_s: Default budget of one call, connection to last byte; a call may pass
            its own (e.g. what is left of the gRPC deadline).
        client: An ``httpx.AsyncClient`` to use instead of the adapter's own (tests pass
            one with ``httpx.MockTransport``); the adapter never closes a client it was given.
        max_connections: Pool size; requests beyond it wait for a free connection.
        headers: Headers sent with every request (e.g. ``Authorization``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        backend: str,
        name: str,
        timeout_s: float = 120.0,
        client: httpx.AsyncClient | None = None,
        max_connections: int = 16,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._base_url = base_url.rstrip("/")
        self._backend = backend
        self._name = name
        self.timeout_s = timeout_s
        self._headers = dict(headers or {})
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=timeouts(timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            # The model server sits on the same host or network; a proxy taken from the
            # environment would carry image bytes through it (and break loopback in tests).
            trust_env=False,
            verify=backend_tls_context(),
        )
        self._ok = BACKEND_CALLS_TOTAL.labels(backend=backend, outcome="ok")
        self._error = BACKEND_CALLS_TOTAL.labels(backend=backend, outcome="error")
        self._timeout = BACKEND_CALLS_TOTAL.labels(backend=backend, outcome="timeout")

    @property
    def backend(self) -> str:
        """The adapter's short name (``ollama``, ``openai``)."""
        return self._backend

    @property
    def name(self) -> str:
        """The server as a person calls it."""
        return self._name

    @property
    def base_url(self) -> str:
        """The server's URL, without a trailing slash."""
        return self._base_url

    async def aclose(self) -> None:
        """Close the pooled connections (only those of a client the adapter created)."""
        if self._owns_client:
            await self._client.aclose()

    def _budget(self, timeout_s: float | None) -> float:
        budget = self.timeout_s if timeout_s is None else timeout_s
        if budget <= 0:
            raise ModelUnavailableError(f"no time left for the {self._name} call")
        return budget

    @asynccontextmanager
    async def _call(self, what: str, budget: float) -> AsyncIterator[None]:
        """Bound the call by ``budget``, map transport failures, count the outcome."""
        where = f"{self._name} {what} at {self._base_url}"
        try:
            async with asyncio.timeout(budget):
                yield
        except TimeoutError as exc:
            self._timeout.inc()
            raise ModelTimeoutError(f"{where} timed out after {budget:.1f} s") from exc
        except httpx.TimeoutException as exc:
            self._timeout.inc()
            raise ModelTimeoutError(f"{where} timed out ({type(exc).__name__})") from exc
        except httpx.ConnectError as exc:
            self._error.inc()
            raise ModelUnavailableError(
                f"cannot connect to {self._name} at {self._base_url}: {exc}"
            ) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            self._error.inc()
            raise ModelUnavailableError(f"{where} broke off mid-reply: {exc}") from exc
        except httpx.TransportError as exc:
            self._error.inc()
            raise ModelUnavailableError(f"{where} failed: {type(exc).__name__}: {exc}") from exc
        except ModelError:
            self._error.inc()
            raise
        else:
            self._ok.inc()
