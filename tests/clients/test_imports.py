"""The command-line client loads no server code, and ``--help`` loads not even grpc."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fresh_python import fresh_python

ROOT = Path(__file__).resolve().parents[2]
_LOADED = (
    "import json, sys; {imports}; "
    "print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
)


def _top_level_modules_after(*modules: str) -> set[str]:
    imports = "; ".join(f"import {module}" for module in modules)
    return set(fresh_python(_LOADED.format(imports=imports)))


def test_the_client_imports_no_server_module() -> None:
    loaded = _top_level_modules_after(
        "clients.cli", "clients.generate", "clients.health", "clients.models", "clients.rpc"
    )
    assert "grpc" in loaded and "imagegen" in loaded
    assert not loaded & {"services", "gateway", "standins", "tools"}


def test_the_entry_module_defers_grpc_until_a_command_runs() -> None:
    loaded = _top_level_modules_after("clients.cli")
    assert "grpc" not in loaded
    assert not loaded & {"services", "gateway"}


def test_help_answers_without_a_server() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "clients.cli", "--help"],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT}:{ROOT / 'protos'}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert "generate" in completed.stdout and "health" in completed.stdout
