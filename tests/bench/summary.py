"""The closing table of ``make bench``: each figure the benchmarks hold the system to, its
target, and whether this run met it.

``python tests/bench/summary.py`` reads ``tests/bench/results/*.json`` (whatever the
benchmarks of this run wrote; a missing file shows as "not run") and prints one table.
Targets are judged on the deployed shape (each service its own process) where a benchmark
measured it. Exit status 0: the table is a report, each benchmark's own exit status says
whether it failed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path[:0] = [str(ROOT), str(ROOT / "protos")]

from tests.bench.reporting import RESULTS_DIR, print_table  # noqa: E402

__all__ = ["Figure", "figures", "main"]

GROUPING_LOADS = 2
"""Model loads for a burst of concurrent img2img calls on a one-slot Ollama: one per phase."""
GROUPING_WALL_SLACK = 1.10
"""Wall time of that burst against the ideal (two loads plus the calls)."""


@dataclass(frozen=True)
class Figure:
    """One row: what was measured, the value, the target, and the verdict."""

    name: str
    value: float | None
    target: str
    met: bool | None
    load: str = ""

    def row(self) -> tuple[str, str, str, str, str]:
        """The table's cells."""
        value = "not run" if self.value is None else f"{self.value:g}"
        verdict = "—" if self.met is None else ("met" if self.met else "MISSED")
        return self.name, value, self.target, verdict, self.load


def _read(name: str, results: Path) -> dict[str, Any] | None:
    path = results / f"{name}.json"
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded


def _load(span: dict[str, float] | None) -> str:
    return "" if not span else f"{span['min']:.2f}–{span['max']:.2f}"


def _at_most(name: str, value: float | None, limit: float, unit: str, load: str) -> Figure:
    met = None if value is None else value <= limit
    return Figure(name, value, f"≤ {limit:g}{unit}", met, load)


def _overhead(results: Path) -> Iterator[Figure]:
    data = _read("overhead", results)
    modes = (data or {}).get("modes", {})
    rows = {r["size"]: r for r in modes.get("processes", {}).get("sizes", [])}
    one, four = rows.get("1MP"), rows.get("4MP")
    load = _load(one["load_1min"]) if one else ""
    for label, row, limit in (("1 MP", one, 30), ("4 MP", four, 120)):
        yield _at_most(
            f"orchestration {label} p50 (overhead − stand-in model time)",
            row["orchestration_ms"]["p50"] if row else None, limit, " ms", load,
        )  # fmt: skip
        yield Figure(
            f"overhead {label} p50 (gateway − floor)",
            row["overhead_ms"]["p50"] if row else None, "—", None, load,
        )  # fmt: skip
    yield _at_most(
        "gateway / floor 1 MP p50",
        one["ratio_gateway_over_floor_p50"] if one else None, 1.2, "×", load,
    )  # fmt: skip
    yield _at_most(
        "gateway CPU per request 1 MP p50",
        one["cpu_ms_per_request_p50"].get("gateway") if one else None, 3, " ms", load,
    )  # fmt: skip


def _relay_floor(results: Path) -> Iterator[Figure]:
    data = _read("relay_floor", results)
    cpu = (data or {}).get("relay_cpu_ms_per_request")
    yield Figure(
        "bare grpc.aio relay CPU per request, the same calls (floor under the gateway's)",
        cpu["p50"] if cpu else None,
        "—",
        None,
        _load(data["load_1min"]) if data else "",
    )


def _first_event(results: Path) -> Iterator[Figure]:
    data = _read("first_event", results)
    measured = (data or {}).get("modes", {}).get("processes")
    yield _at_most(
        "first event p50",
        measured["first_event_ms"]["p50"] if measured else None,
        20,
        " ms",
        _load(measured["load_1min"]) if measured else "",
    )


def _scenarios(node: Any, name: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object holding ``model_loads``, named by its ``name`` field or its key."""
    if isinstance(node, dict):
        if "model_loads" in node:
            yield str(node.get("name") or node.get("scenario") or name or "scenario"), node
            return
        for key, value in node.items():
            yield from _scenarios(value, str(key))
    elif isinstance(node, list):
        for item in node:
            yield from _scenarios(item, name)


_GROUPING_BASELINES = ("naive", "baseline", "ungrouped", "grouping_off", "own_phases")
"""Scenario names that show what grouping saves (no grouping; replicas that do not share
phases): listed, not judged."""


def _grouping(results: Path) -> Iterator[Figure]:
    data = _read("model_grouping", results)
    found = list(_scenarios(data)) if data is not None else []
    if not found:
        yield Figure("model grouping: loads, wall time", None, "see model_grouping", None)
        return
    for name, scenario in found:
        judged = not any(word in name.lower() for word in _GROUPING_BASELINES)
        loads = scenario.get("model_loads")
        yield Figure(
            f"model loads ({name})",
            loads,
            f"= {GROUPING_LOADS}" if judged else "—",
            (loads == GROUPING_LOADS) if judged and loads is not None else None,
        )
        wall, ideal = scenario.get("wall_s"), scenario.get("ideal_wall_s")
        if wall is not None and ideal:
            ratio = round(wall / ideal, 3)
            yield Figure(
                f"wall / ideal ({name})",
                ratio,
                f"≤ {GROUPING_WALL_SLACK:g}×" if judged else "—",
                ratio <= GROUPING_WALL_SLACK if judged else None,
            )


SOURCES: tuple[Callable[[Path], Iterator[Figure]], ...] = (
    _overhead,
    _relay_floor,
    _first_event,
    _grouping,
)


def figures(results: Path = RESULTS_DIR) -> list[Figure]:
    """Every figure with its verdict, from the JSON files in ``results``."""
    return [figure for source in SOURCES for figure in source(results)]


def main(argv: list[str] | None = None) -> int:
    """Prints the summary table."""
    results = Path(argv[0]) if argv else RESULTS_DIR
    rows = figures(results)
    print_table(
        "summary (processes as deployed; load = 1-minute load average during the run)",
        ["figure", "value", "target", "verdict", "load"],
        [figure.row() for figure in rows],
    )
    judged = [f for f in rows if f.met is not None]
    print(f"{sum(f.met is True for f in judged)} of {len(judged)} targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
