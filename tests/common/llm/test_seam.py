"""The seam holds: vision, planner and the gateway import no model adapter.

Vision and planner speak only the chat-model protocol of ``services.common.llm``; the
adapter is chosen by a setting and imported by ``services.common.llm.connect`` alone.
The gateway speaks to no model server at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.fresh_python import fresh_python

ROOT = Path(__file__).parents[3]
ADAPTERS = ("services.common.llm.ollama", "services.common.llm.openai")


def _imports(path: Path) -> set[str]:
    """Every module a file imports (``from a.b import c`` counts as ``a.b`` and ``a.b.c``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("package", ["services/vision", "services/planner", "gateway"])
def test_no_module_of_the_package_imports_an_adapter_or_ollama(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    offending = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in files
        for module in _imports(path)
        if module.startswith(ADAPTERS) or "ollama" in module.split(".")[-1]
    }
    assert offending == set()


def test_importing_the_services_loads_no_adapter_and_no_redis_client() -> None:
    # One process for both checks: the gateway loads the Redis client only when a store
    # or the phase grouping is configured to use Redis (not at import).
    unwanted = (*ADAPTERS, "redis")
    code = (
        "import json, sys, services.vision.app, services.planner.app, gateway.app\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({unwanted!r}))))"
    )
    assert fresh_python(code) == []
