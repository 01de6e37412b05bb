"""What both stand-ins share: an aiohttp application on a port kept across restarts, and the
command line that serves one until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any

from aiohttp import web

__all__ = ["AppServer", "parse_args", "serve"]


class AppServer:
    """An aiohttp app (:meth:`make_app`) on ``host``:``port``; port 0 picks one, kept after."""

    shutdown_timeout_s = 0.25  # for in-flight requests when the server stops

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:11434``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def make_app(self) -> web.Application:
        """The application to serve (built at every start)."""
        raise NotImplementedError  # pragma: no cover

    def banner(self) -> str:
        """What the command line logs once the stand-in listens: loudly, that it is one."""
        raise NotImplementedError  # pragma: no cover

    async def start(self) -> None:
        """Serve (again); nothing happens while serving."""
        if self._runner is not None:
            return
        self._runner = web.AppRunner(
            self.make_app(),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=self.shutdown_timeout_s,
        )
        await self._runner.setup()
        try:
            await self.listen()
        except BaseException:
            await self.stop()
            raise

    async def listen(self) -> None:
        """Open the listening socket again after :meth:`unlisten`."""
        if self._site is None and self._runner is not None:
            site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
            await site.start()
            self._site = site
            self.port = int(self._runner.addresses[0][1])

    async def unlisten(self) -> None:
        """Close the listening socket: new connections are refused, open ones stay."""
        site, self._site = self._site, None
        if site is not None:
            await site.stop()

    async def stop(self) -> None:
        """Stop serving and close every connection (in-flight requests are cut short)."""
        runner, self._runner, self._site = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background (cancelled by :meth:`close`)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settled(self) -> None:
        """Wait until the background work started so far (and what it starts) is done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop for good: cancel the background work, stop serving."""
        for task in self._tasks:
            task.cancel()
        await self.settled()
        await self.stop()


def parse_args(prog: str, port: int, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``--host`` (loopback), ``--port`` (``port``; 0: any) and ``--log-level``."""
    parser = argparse.ArgumentParser(
        f"python -m {prog}", description="A protocol-faithful stand-in."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=port, help="port to bind (0: any)")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def serve(
    args: argparse.Namespace, run: Callable[[str, int], AbstractAsyncContextManager[AppServer]]
) -> None:
    """Serve ``run(host, port)`` until SIGINT or SIGTERM, logging its banner once it listens."""
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def until_signalled() -> None:
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        async with run(args.host, args.port) as running:
            logging.getLogger("standins").warning("%s", running.banner())
            await stop.wait()

    asyncio.run(until_signalled())
