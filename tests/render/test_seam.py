"""The renderer speaks only the backend protocol: importing it loads no ComfyUI code.

Run by hand: ``python -c "import services.render.renderer, sys; print(sorted(sys.modules))"``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fresh_python import fresh_python

ROOT = Path(__file__).parents[2]

WIRE = ("services.render.comfyui", "httpx", "websockets")
"""Module prefixes of the ComfyUI adapter and its transports."""


def _modules_after_import(module: str) -> list[str]:
    modules: list[str] = fresh_python(
        f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    )
    return modules


@pytest.mark.parametrize(
    "module",
    ["services.render.renderer", "services.render.backend", "services.render.backends"],
)
def test_the_domain_modules_pull_in_no_comfyui_wire_code(module: str) -> None:
    modules = _modules_after_import(module)
    assert module in modules
    wire = [m for m in modules if m.startswith(WIRE)]
    assert wire == []


def test_the_app_does_load_the_comfyui_adapter() -> None:
    """The check above can fail: the service's wiring module loads the adapter."""
    modules = _modules_after_import("services.render.app")
    assert "services.render.comfyui.tracker" in modules and "httpx" in modules
