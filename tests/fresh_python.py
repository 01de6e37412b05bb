"""What a snippet prints, run in a fresh interpreter with the repository importable.

For what only a new process shows: which modules an import loads, or how the C library
serves memory before anything else has run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["ROOT", "fresh_python"]

ROOT = Path(__file__).resolve().parents[1]


def fresh_python(code: str) -> Any:
    """Runs ``code`` with ``python -c`` (the repository and its generated code on the path)
    and returns what it printed, read as JSON."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT}:{ROOT / 'protos'}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(result.stdout)
