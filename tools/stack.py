"""``make run``: the whole system on one machine, one generation, then everything stopped.

``python -m tools.stack [--out DIR]``:

1. Backends: the real Ollama and ComfyUI when ``OLLAMA_URL`` and ``COMFYUI_URL`` (or
   ``COMFYUI_URLS``, comma-separated) are set; otherwise the stand-ins, with a notice
   that the images are synthetic.
2. Starts each stand-in and each service (vision, planner, render, gateway) as its own
   subprocess on a free port, configured through its environment settings, and waits
   until every service's gRPC health says SERVING.
3. Generates two variants of the example photograph (a coffee cup on a saucer) with a
   Russian instruction through the ``imagegen`` client, writing ``DIR/<seed>.png``.
4. Stops every process it started, also on Ctrl-C or a failure. Each child is told to
   die with its parent (Linux), so not even a killed driver leaves processes behind.

``python -m tools.stack --serve`` skips the generation and keeps the stack up until
Ctrl-C, each service on its default port (gateway 50051, vision 50052, planner 50053,
render 50054), so grpcurl and the ``imagegen`` client can be pointed at it; ``--free-ports``
puts every service on a free port instead, to run beside another stack.

Children's logs go to ``DIR/logs/<name>.log``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import NoReturn, TextIO

import grpc

from clients import cli
from gateway.downstream import SERVICE_NAMES
from gateway.service import SERVICE_NAME as GATEWAY_SERVICE
from gateway.settings import GatewaySettings
from services.common.healthcheck import check_health
from services.common.settings import ServerSettings
from services.planner.settings import PlannerSettings
from services.render.settings import RenderSettings
from services.vision.settings import VisionSettings

__all__ = [
    "DEFAULT_INSTRUCTION",
    "DEFAULT_PORTS",
    "EXAMPLE_IMAGE",
    "Backends",
    "Stack",
    "StackError",
    "StartedStack",
    "check_ports_free",
    "free_port",
    "main",
    "start_services",
    "wait_serving",
]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_IMAGE = ROOT / "tools" / "demo" / "coffee.jpg"
DEMO_ANSWERS = ROOT / "tools" / "demo" / "answers.json"
"""What the Ollama stand-in's models answer (an analysis of the demo image, a plan for the
demo instruction): scripted, so the stand-in run shows a plausible analysis and plan."""
"""A coffee cup on a saucer on a wooden table, 600×400, CC0."""
DEFAULT_INSTRUCTION = "Перекрась чашку в тёмно-зелёный цвет, сохрани блюдце и стол"

_SETTINGS: dict[str, type[ServerSettings]] = {
    "vision": VisionSettings,
    "planner": PlannerSettings,
    "render": RenderSettings,
    "gateway": GatewaySettings,
}
DEFAULT_PORTS: dict[str, int] = {
    name: int(model.model_fields["port"].default) for name, model in _SETTINGS.items()
}
"""Each service's default port, as its settings model declares it (``--serve``)."""

_STOP_GRACE_S = 8.0
_SERVE_POLL_S = 0.5
_PR_SET_PDEATHSIG = 1
_EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_PORT_POOL = 12000


class StackError(Exception):
    """The stack could not be started; the message says which process and why."""


def _ephemeral_ports() -> range:
    """The ports the kernel hands out for port 0 and outgoing connections."""
    try:
        low, high = map(int, _EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    return range(low, high + 1)


def _bind_error(port: int) -> OSError | None:
    """Why ``port`` cannot be bound on 127.0.0.1 now; None when it can."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as e:
            return e
        return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and unlikely to be taken before a child
    binds it.

    The port is picked at random below the kernel's ephemeral range: a port from inside
    it (what binding port 0 returns) can be taken by any outgoing connection or any other
    port-0 server on the host in the moment between choosing it and the child binding it.
    """
    ephemeral = _ephemeral_ports()
    pool = range(max(1024, ephemeral.start - _PORT_POOL), ephemeral.start)
    if len(pool) < _PORT_POOL // 4:  # the ephemeral range starts low: use the ports above it
        pool = range(ephemeral.stop, min(65536, ephemeral.stop + _PORT_POOL))
    for _ in range(64):
        port = random.choice(pool)
        if _bind_error(port) is None:
            return port
    raise StackError(f"no free port among {pool.start}-{pool.stop - 1}")


def check_ports_free(ports: Mapping[str, int]) -> None:
    """Checks that every port can be bound on 127.0.0.1.

    Raises:
        StackError: A port is taken, naming the port and the service meant for it.
    """
    for name, port in ports.items():
        if (error := _bind_error(port)) is not None:
            raise StackError(
                f"port {port} (for {name}) is in use ({error.strerror}): stop what holds it, "
                "or pass --free-ports"
            )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # Linux only: the kernel sends SIGTERM to the child when the driver dies, however it
    # dies (even SIGKILL), so no service outlives a killed `make run`.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class Stack:
    """The processes started by the driver, stopped together.

    Args:
        log_dir: Where each child's output goes.
        stream: Where progress notes are printed.
    """

    log_dir: Path
    stream: TextIO
    children: list[_Child] = field(default_factory=list)

    def start(
        self, name: str, module: str, *, args: Sequence[str] = (), env: Mapping[str, str]
    ) -> None:
        """Starts ``python -m module`` as a child with ``env`` added to the environment."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=ROOT,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        self.children.append(_Child(name, process, log_path))
        print(f"started {name} (pid {process.pid})", file=self.stream, flush=True)

    def check_alive(self) -> None:
        """Raises StackError naming any child that has exited."""
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise StackError(
                    f"{child.name} exited with status {code}; its log ({child.log_path}) ends:\n"
                    + _tail(child.log_path)
                )

    def stop(self) -> None:
        """Stops every child: SIGTERM in reverse start order, SIGKILL after a grace period."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_S
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        if self.children:
            print(f"stopped {len(self.children)} processes", file=self.stream, flush=True)
        self.children.clear()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass(frozen=True)
class Backends:
    """Where Ollama and ComfyUI are: real ones from the environment, or None for stand-ins."""

    ollama_url: str | None
    comfyui_urls: str | None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Backends:
        """Reads ``OLLAMA_URL`` and ``COMFYUI_URLS`` / ``COMFYUI_URL``."""
        comfy = environ.get("COMFYUI_URLS") or environ.get("COMFYUI_URL") or None
        return cls(ollama_url=environ.get("OLLAMA_URL") or None, comfyui_urls=comfy)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM to the driver unwinds like Ctrl-C, so the children are stopped; and SIGINT
    stops it even when it was started with SIGINT ignored (as a background job of a
    non-interactive shell is, e.g. under a CI runner), where Python leaves it ignored."""

    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {number: signal.signal(number, raise_interrupt) for number in signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@dataclass(frozen=True)
class StartedStack:
    """Where a started stack listens.

    Attributes:
        services: Short service name → ``127.0.0.1:port``, the gateway included.
        backends: The Ollama and ComfyUI the services use (stand-ins' URLs filled in).
    """

    services: dict[str, str]
    backends: Backends


def start_services(
    stack: Stack,
    backends: Backends,
    ports: Mapping[str, int] | None = None,
    *,
    env: Mapping[str, Mapping[str, str]] | None = None,
) -> StartedStack:
    """Starts the backends' stand-ins (when needed) and the four services.

    Args:
        stack: Receives the started processes.
        backends: Real backends, or None for the stand-ins.
        ports: Service name → port; None puts every service on a free port.
        env: Process name (``fake_ollama``, ``fake_comfyui``, ``vision``, ``planner``,
            ``render``, ``gateway``) → environment variables added to (or replacing)
            the driver's own for that process, e.g. a stand-in's delays.

    Returns:
        Where the services and the backends listen.
    """
    extra = env or {}
    ollama_url = backends.ollama_url
    if ollama_url is None:
        port = free_port()
        stack.start(
            "fake_ollama",
            "standins.ollama",
            args=["--port", str(port)],
            env={"FAKE_OLLAMA_ANSWERS": DEMO_ANSWERS.read_text()}
            | dict(extra.get("fake_ollama", {})),
        )
        ollama_url = f"http://127.0.0.1:{port}"
    comfyui_urls = backends.comfyui_urls
    if comfyui_urls is None:
        port = free_port()
        stack.start(
            "fake_comfyui",
            "standins.comfyui",
            args=["--port", str(port)],
            env=dict(extra.get("fake_comfyui", {})),
        )
        comfyui_urls = f"http://127.0.0.1:{port}"

    chosen = {name: (ports or {}).get(name) or free_port() for name in _SETTINGS}
    addresses = {name: f"127.0.0.1:{chosen[name]}" for name in ("vision", "planner", "render")}
    common = {"IMAGEGEN_LOG_FORMAT": "text"}
    stack.start(
        "vision",
        "services.vision",
        env=common
        | {
            "VISION_PORT": addresses["vision"].rsplit(":", 1)[1],
            "VISION_OLLAMA_URL": ollama_url,
            "VISION_LOG_FORMAT": "text",
            "VISION_READINESS_INTERVAL_S": "1",
        }
        | dict(extra.get("vision", {})),
    )
    stack.start(
        "planner",
        "services.planner",
        env=common
        | {
            "PLANNER_PORT": addresses["planner"].rsplit(":", 1)[1],
            "PLANNER_OLLAMA_URL": ollama_url,
            "PLANNER_LOG_FORMAT": "text",
            "PLANNER_READINESS_INTERVAL_S": "1",
        }
        | dict(extra.get("planner", {})),
    )
    stack.start(
        "render",
        "services.render",
        env=common
        | {
            "RENDER_PORT": addresses["render"].rsplit(":", 1)[1],
            "RENDER_COMFYUI_URLS": comfyui_urls,
            "RENDER_LOG_FORMAT": "text",
            "RENDER_READINESS_INTERVAL_S": "1",
        }
        | dict(extra.get("render", {})),
    )
    gateway = f"127.0.0.1:{chosen['gateway']}"
    stack.start(
        "gateway",
        "gateway",
        env=common
        | {
            "GATEWAY_PORT": gateway.rsplit(":", 1)[1],
            "GATEWAY_VISION_ADDRESS": addresses["vision"],
            "GATEWAY_PLANNER_ADDRESS": addresses["planner"],
            "GATEWAY_RENDER_ADDRESS": addresses["render"],
            "GATEWAY_LOG_FORMAT": "text",
            "GATEWAY_HEALTH_POLL_INTERVAL_S": "0.5",
        }
        | dict(extra.get("gateway", {})),
    )
    return StartedStack(
        services=addresses | {"gateway": gateway},
        backends=Backends(ollama_url=ollama_url, comfyui_urls=comfyui_urls),
    )


def wait_serving(stack: Stack, addresses: Mapping[str, str], timeout_s: float) -> None:
    """Polls every service's health until all say SERVING.

    Raises:
        StackError: A child exited, or the timeout passed (naming who was not ready).
    """
    services = {name: SERVICE_NAMES.get(name, GATEWAY_SERVICE) for name in addresses}
    channels = {name: grpc.insecure_channel(address) for name, address in addresses.items()}
    deadline = time.monotonic() + timeout_s
    statuses: dict[str, str] = {}
    try:
        while True:
            stack.check_alive()
            statuses = {
                name: check_health(channels[name], service=services[name], timeout=1.0)
                for name in addresses
            }
            if all(status == "SERVING" for status in statuses.values()):
                return
            if time.monotonic() > deadline:
                waiting = ", ".join(f"{n} {s}" for n, s in statuses.items() if s != "SERVING")
                raise StackError(f"not ready after {timeout_s:.0f} s: {waiting}")
            time.sleep(0.2)
    finally:
        for channel in channels.values():
            channel.close()


def build_parser() -> argparse.ArgumentParser:
    """The driver's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.stack",
        description="Start the stack, generate two variants of the example photo, stop "
        "(or, with --serve, keep the stack up until Ctrl-C).",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="keep the stack up until Ctrl-C instead of generating; each service on its "
        "default port (gateway 50051)",
    )
    parser.add_argument(
        "--free-ports",
        action="store_true",
        help="with --serve: every service on a free port (to run beside another stack)",
    )
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder")
    parser.add_argument("--image", type=Path, default=EXAMPLE_IMAGE, help="source image")
    parser.add_argument("--instruction", default=DEFAULT_INSTRUCTION, help="the instruction")
    parser.add_argument("--variants", type=int, default=2, help="how many variants (default 2)")
    parser.add_argument(
        "--startup-timeout", type=float, default=120.0, help="seconds to wait for health"
    )
    return parser


def _generate(args: argparse.Namespace, gateway: str, out: TextIO, *, synthetic: bool) -> int:
    """Generates the demo's variants through the ``imagegen`` client; its exit code."""
    code, outcome = cli.execute(
        [
            "generate",
            "--target", gateway,
            "--image", str(args.image),
            "--instruction", args.instruction,
            "--variants", str(args.variants),
            "--out", str(args.out),
        ],
        stdout=out,
    )  # fmt: skip
    if code == cli.EXIT_OK and outcome is not None:
        print(f"images written under {args.out.resolve()}:", file=out)
        for path in outcome.written:
            print(f"  {path.resolve()}", file=out)
        if synthetic:
            print(
                "NOTICE: these images come from the ComfyUI STAND-IN (synthetic, not Flux); "
                "set OLLAMA_URL and COMFYUI_URL for real ones.",
                file=out,
            )
    out.flush()
    return code


def _serve(stack: Stack, addresses: Mapping[str, str], log_dir: Path, out: TextIO) -> NoReturn:
    """Keeps the stack up until Ctrl-C (KeyboardInterrupt) or a child's exit (StackError)."""
    others = " · ".join(f"{name} {address}" for name, address in addresses.items())
    print(
        f"serving: {others}\n"
        f"try: grpcurl -plaintext {addresses['gateway']} list\n"
        f"logs in {log_dir.resolve()}; Ctrl-C stops everything",
        file=out,
        flush=True,
    )
    while True:
        stack.check_alive()
        time.sleep(_SERVE_POLL_S)


def main(argv: Sequence[str] | None = None, *, stream: TextIO | None = None) -> int:
    """Runs the demo, or with ``--serve`` keeps the stack up until Ctrl-C.

    Returns:
        0 when the variants were written (or, with ``--serve``, the stack was stopped by
        Ctrl-C); 1 when the stack failed to start, a process exited or the generation
        failed; 130 on Ctrl-C during the demo.
    """
    out = stream if stream is not None else sys.stdout
    args = build_parser().parse_args(argv)
    backends = Backends.from_environment(os.environ)
    if backends.ollama_url is None or backends.comfyui_urls is None:
        missing = [
            name
            for name, value in (
                ("OLLAMA_URL", backends.ollama_url),
                ("COMFYUI_URL", backends.comfyui_urls),
            )
            if value is None
        ]
        print(
            "=" * 72
            + f"\nNOTICE: {' and '.join(missing)} not set: using the STAND-INS for "
            + ("Ollama and ComfyUI" if len(missing) == 2 else missing[0].split("_")[0])
            + ".\nNo model runs: the analysis and plan are scripted answers "
            + f"({DEMO_ANSWERS.relative_to(ROOT)}) and the images are synthetic.\n"
            + "Set OLLAMA_URL and COMFYUI_URL to use real backends.\n"
            + "=" * 72,
            file=out,
            flush=True,
        )
    log_dir = args.out / "logs"
    stack = Stack(log_dir=log_dir, stream=out)
    ports = DEFAULT_PORTS if args.serve and not args.free_ports else None
    try:
        with _terminate_as_interrupt():
            if ports is not None:
                check_ports_free(ports)
            addresses = start_services(stack, backends, ports).services
            wait_serving(stack, addresses, args.startup_timeout)
            print(f"all services SERVING; gateway at {addresses['gateway']}", file=out, flush=True)
            if not args.serve:
                return _generate(
                    args, addresses["gateway"], out, synthetic=backends.comfyui_urls is None
                )
            try:
                _serve(stack, addresses, log_dir, out)
            except KeyboardInterrupt:
                print("stopping", file=out, flush=True)
                return cli.EXIT_OK
    except StackError as e:
        print(f"error: {e}", file=out, flush=True)
        return cli.EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=out, flush=True)
        return 130
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
