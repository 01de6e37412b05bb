"""The bootstrap every imagegen gRPC server runs on.

:class:`GrpcServer` builds a ``grpc.aio`` server from :class:`ServerSettings` with the
shared interceptor, message-size limits, keepalive and TLS; registers health
(``grpc.health.v1``) and reflection; reports readiness; and shuts down gracefully::

    server = GrpcServer(settings, service_names=["imagegen.vision.v1.VisionService"])
    vision_pb2_grpc.add_VisionServiceServicer_to_server(servicer, server.server)
    server.on_stop(ollama.aclose)
    await server.start()
    server.watch_readiness(ollama.is_up)
    await server.run_until_signal()

Health answers NOT_SERVING for the whole server ("") and for each service until the
service declares itself ready, and again from the moment shutdown begins, so probes and
load balancers move away before calls are refused. One more name,
:data:`LIVENESS_SERVICE_NAME`, answers SERVING from start to shutdown whatever the
backend does: a liveness probe asks it, so a pod whose backend is down is taken out of
rotation (readiness) but not restarted. A third, :data:`READINESS_SERVICE_NAME`, is
SERVING while the server is ready *and* takes more work (:meth:`GrpcServer.set_admitting`;
render stops admitting while its queue is at a cap): a readiness probe asks it, so a
replica with a full queue leaves rotation while its service names, which its clients
ask, stay SERVING.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from services.common.interceptors import ServerInterceptor
from services.common.logs import get_logger
from services.common.metrics import start_metrics_server
from services.common.reflection import enable_documented_reflection
from services.common.settings import ServerSettings

__all__ = [
    "HEALTH_SERVICE_NAME",
    "LIVENESS_SERVICE_NAME",
    "READINESS_SERVICE_NAME",
    "GrpcServer",
    "server_options",
]

HEALTH_SERVICE_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name

LIVENESS_SERVICE_NAME = "liveness"
"""Health name that is SERVING while the process serves, ready or not (the name the
Kubernetes documentation suggests for a gRPC liveness probe)."""

READINESS_SERVICE_NAME = "readiness"
"""Health name that is SERVING while the server is ready and admits more work (the name a
Kubernetes readiness probe asks)."""

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

_log = get_logger(__name__)


def _log_change(state: bool, what: str, reason: str) -> None:
    """Logs a health change: ``what`` at INFO when it holds, ``not what`` at WARNING."""
    _log.log(
        logging.INFO if state else logging.WARNING,
        what if state else f"not {what}",
        extra={"reason": reason} if reason else None,
    )


def server_options(settings: ServerSettings) -> list[tuple[str, Any]]:
    """The channel arguments of a server: message sizes and keepalive.

    Args:
        settings: The server's settings.

    Returns:
        ``options=`` for ``grpc.aio.server``.
    """
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", _ms(settings.keepalive_time_s)),
        ("grpc.keepalive_timeout_ms", _ms(settings.keepalive_timeout_s)),
        ("grpc.keepalive_permit_without_calls", 1),
        (
            "grpc.http2.min_ping_interval_without_data_ms",
            _ms(settings.keepalive_min_ping_interval_s),
        ),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    if settings.max_connection_age_s > 0:
        options += [
            ("grpc.max_connection_age_ms", _ms(settings.max_connection_age_s)),
            ("grpc.max_connection_age_grace_ms", _ms(settings.max_connection_age_grace_s)),
        ]
    return options


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class GrpcServer:
    """A ``grpc.aio`` server with health, reflection, interceptors and graceful stop.

    Args:
        settings: Address, limits, keepalive, TLS, metrics port and grace period.
        service_names: Fully qualified names of the services the caller will register,
            e.g. ``"imagegen.vision.v1.VisionService"``; each gets a health status and
            is listed by reflection.
        interceptors: More server interceptors, run after the shared one.

    Attributes:
        server: The underlying ``grpc.aio.Server``; register servicers on it before
            :meth:`start`.
        health: The health servicer (``grpc.health.v1.Health``).
    """

    def __init__(
        self,
        settings: ServerSettings,
        *,
        service_names: Sequence[str],
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    ) -> None:
        self.settings = settings
        self.service_names = tuple(service_names)
        self.server: grpc.aio.Server = grpc.aio.server(
            interceptors=[ServerInterceptor(), *interceptors],
            options=server_options(settings),
        )
        self.health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        # Reflection answers with the contract's comments (``grpcurl describe`` shows them).
        enable_documented_reflection(
            (*self.service_names, HEALTH_SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port: int | None = None
        self._ready: bool | None = None
        self._admitting = True
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self._stopped = asyncio.Event()
        self._watchers: list[asyncio.Task[None]] = []
        self._cleanups: list[Callable[[], Awaitable[None]]] = []

    async def start(self) -> int:
        """Binds ``host:port`` and starts serving, with every service NOT_SERVING.

        Returns:
            The bound port (the chosen one when the settings say 0).

        Raises:
            RuntimeError: The address could not be bound.
        """
        for name in ("", READINESS_SERVICE_NAME, *self.service_names):
            await self.health.set(name, _NOT_SERVING)
        address = f"{self.settings.host}:{self.settings.port}"
        credentials = self._server_credentials()
        port: int
        if credentials is None:
            port = self.server.add_insecure_port(address)
        else:
            port = self.server.add_secure_port(address, credentials)
        if not port:
            raise RuntimeError(f"could not bind {address}")
        await self.server.start()
        self.port = port
        await self.health.set(LIVENESS_SERVICE_NAME, _SERVING)
        if self.settings.metrics_port > 0:
            start_metrics_server(self.settings.metrics_port, addr=self.settings.host)
        _log.info(
            "serving",
            extra={
                "address": f"{self.settings.host}:{port}",
                "services": list(self.service_names),
                "tls": credentials is not None,
                "metrics_port": self.settings.metrics_port,
            },
        )
        return port

    def _server_credentials(self) -> grpc.ServerCredentials | None:
        settings = self.settings
        if settings.tls_cert_file is None or settings.tls_key_file is None:
            return None
        ca = settings.tls_ca_file.read_bytes() if settings.tls_ca_file is not None else None
        return grpc.ssl_server_credentials(
            [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())],
            root_certificates=ca,
            require_client_auth=settings.tls_require_client_cert,
        )

    @property
    def ready(self) -> bool | None:
        """The latest readiness set; ``None`` until the first readiness check answered."""
        return self._ready

    async def set_ready(self, ready: bool, reason: str = "") -> None:
        """Sets SERVING or NOT_SERVING for the whole server and every service.

        Ignored once shutdown has begun (health stays NOT_SERVING).

        Args:
            ready: Whether the server can do useful work (its backend answers).
            reason: Why, logged when the state changes.
        """
        if self._stopping:
            return
        status = _SERVING if ready else _NOT_SERVING
        for name in ("", *self.service_names):
            await self.health.set(name, status)
        await self.health.set(
            READINESS_SERVICE_NAME, _SERVING if ready and self._admitting else _NOT_SERVING
        )
        if ready != self._ready:
            self._ready = ready
            _log_change(ready, "ready", reason)

    async def set_admitting(self, admitting: bool, reason: str = "") -> None:
        """Sets whether the server takes more work, shown by :data:`READINESS_SERVICE_NAME`
        only (the server-wide and service names keep the backend's readiness).

        Ignored once shutdown has begun.

        Args:
            admitting: False while the server is saturated (e.g. its queue is at a cap).
            reason: Why, logged when the state changes.
        """
        if self._stopping:
            return
        if admitting != self._admitting:
            self._admitting = admitting
            _log_change(admitting, "admitting work", reason)
        await self.health.set(
            READINESS_SERVICE_NAME, _SERVING if self._ready and admitting else _NOT_SERVING
        )

    def watch_readiness(
        self,
        check: Callable[[], Awaitable[bool]],
        interval_s: float = 5.0,
        *,
        timeout_s: float | None = None,
    ) -> asyncio.Task[None]:
        """Runs ``check`` now and every ``interval_s`` seconds, setting readiness from it.

        A check that raises or answers false counts as not ready at once. One that takes
        longer than ``timeout_s`` does too, unless the service was ready and the check
        before answered in time: a single late answer of a busy backend is not an outage,
        two in a row are. The task is cancelled by :meth:`stop`.

        Args:
            check: Probe of the backend, e.g. "does Ollama answer /api/tags".
            interval_s: Seconds between probes.
            timeout_s: Longest a probe may take; ``interval_s`` when ``None``.

        Returns:
            The background task.
        """

        timeout = interval_s if timeout_s is None else timeout_s

        async def watch() -> None:
            late_before = False
            while True:
                reason = ""
                late = False
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                    # cancellation that lands as check() finishes, and stop() would then
                    # wait out the whole sleep below.
                    async with asyncio.timeout(timeout):
                        ready = await check()
                    if not ready:
                        reason = "readiness check answered false"
                except TimeoutError:
                    late = True
                    ready, reason = False, f"readiness check took over {timeout} s"
                    if self._ready and not late_before:
                        ready, reason = True, ""
                except Exception as e:
                    ready, reason = False, f"readiness check failed: {type(e).__name__}: {e}"
                late_before = late
                await self.set_ready(ready, reason)
                await asyncio.sleep(interval_s)

        task = asyncio.create_task(watch(), name="readiness-watch")
        self._watchers.append(task)
        return task

    def on_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Registers a cleanup run after the server stopped, in reverse order of registration.

        Args:
            callback: E.g. ``http_client.aclose`` or ``channel.close``.
        """
        self._cleanups.append(callback)

    async def stop(self, grace: float | None = None) -> None:
        """Stops gracefully: health NOT_SERVING, in-flight calls finish, then cleanups.

        New calls are refused at once; calls in flight get ``grace`` seconds before they
        are cancelled. Calling it again waits for the first stop to finish.

        Args:
            grace: Seconds in-flight calls may still run; ``None`` takes the settings'
                ``grace_period_s``; 0 cancels them at once.
        """
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        self._stop_requested.set()
        grace = self.settings.grace_period_s if grace is None else grace
        _log.info("stopping", extra={"grace_s": grace})
        await self.health.enter_graceful_shutdown()
        for task in self._watchers:
            # Cancel until it is really done: a cancellation landing just as a probe
            # finishes can be absorbed, and one cancel() would then leave stop() waiting.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.server.stop(grace)
        for cleanup in reversed(self._cleanups):
            try:
                await cleanup()
            except Exception:
                _log.exception("cleanup %r failed", cleanup)
        _log.info("stopped")
        self._stopped.set()

    async def run_until_signal(self) -> None:
        """Serves until SIGTERM or SIGINT, then stops with the settings' grace period.

        Also returns, after the stop completes, when :meth:`stop` is called elsewhere.
        """
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)

        def on_signal(sig: signal.Signals) -> None:
            _log.info("received %s", sig.name)
            self._stop_requested.set()

        for sig in signals:
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            await self._stop_requested.wait()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
        await self.stop(self.settings.grace_period_s)
