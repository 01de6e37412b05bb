"""The system as it is deployed, for the benchmarks: each stand-in and each service its own
process, started by :mod:`tools.stack` (what ``make run`` uses), plus the readings a benchmark
takes from those processes (CPU time, the machine's load).

Not a benchmark itself (``make bench`` runs only ``bench_*.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.stack import Backends, Stack, StackError, start_services, wait_serving

__all__ = [
    "SERVICES",
    "Deployed",
    "add_mode_argument",
    "chosen_modes",
    "cpu_s",
    "deployed_stack",
    "load_average",
]

SERVICES = ("gateway", "vision", "planner", "render")
_TICKS = os.sysconf("SC_CLK_TCK")
_ATTEMPTS = 3


def cpu_s(pid: int) -> float:
    """CPU seconds a process has used so far, all its threads together.

    Each thread's ``/proc/<pid>/task/<tid>/schedstat`` counts nanoseconds (the process's
    own ``schedstat`` is its main thread only). A thread that ended between two readings
    is missed; the services' worker threads live as long as the process.
    ``/proc/<pid>/stat`` (clock ticks, 10 ms, every thread) is the fallback where the
    kernel keeps no scheduler statistics.
    """
    try:
        return (
            sum(
                int((task / "schedstat").read_text().split()[0])
                for task in Path(f"/proc/{pid}/task").iterdir()
            )
            / 1e9
        )
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS


def load_average() -> tuple[float, float, float]:
    """The machine's 1, 5 and 15 minute load averages (what ``uptime`` prints)."""
    return os.getloadavg()


def add_mode_argument(parser: argparse.ArgumentParser, modes: Sequence[str]) -> None:
    """``--mode``: one of ``modes`` (e.g. ``processes``, ``in-process``) or ``both``."""
    parser.add_argument(
        "--mode", choices=[*modes, "both"], default="both", help="which shape to measure"
    )


def chosen_modes(args: argparse.Namespace, modes: Sequence[str]) -> list[str]:
    """The modes ``--mode`` asks for, in ``modes``' order."""
    return list(modes) if args.mode == "both" else [args.mode]


@dataclass(frozen=True)
class Deployed:
    """A started stack.

    Attributes:
        addresses: Service name → ``127.0.0.1:port``.
        comfyui_url: The ComfyUI stand-in's base URL.
        ollama_url: The Ollama stand-in's base URL.
        pids: Process name (services and ``fake_ollama``, ``fake_comfyui``) → pid.
    """

    addresses: dict[str, str]
    comfyui_url: str
    ollama_url: str
    pids: dict[str, int]


@contextlib.contextmanager
def deployed_stack(env: Mapping[str, Mapping[str, str]] | None = None) -> Iterator[Deployed]:
    """Starts both stand-ins and the four services as processes; stops them on exit.

    Args:
        env: Process name → extra environment (see :func:`tools.stack.start_services`).
    """
    with (
        tempfile.TemporaryDirectory(prefix="imagegen-bench-") as logs,
        open(os.devnull, "w") as quiet,
    ):
        stack = Stack(log_dir=Path(logs), stream=quiet)
        try:
            for attempt in range(_ATTEMPTS):
                try:
                    started = start_services(stack, Backends(None, None), env=env)
                    wait_serving(stack, started.services, timeout_s=120.0)
                    break
                except StackError:
                    # A free port can be taken by another program before its child binds it
                    # (the machine is shared): start again on new ports.
                    stack.stop()
                    if attempt == _ATTEMPTS - 1:
                        raise
            yield Deployed(
                addresses=started.services,
                comfyui_url=str(started.backends.comfyui_urls),
                ollama_url=str(started.backends.ollama_url),
                pids={child.name: child.process.pid for child in stack.children},
            )
        finally:
            stack.stop()
