"""A protocol-faithful fake of a ComfyUI 0.3.64 server (no models, no GPU).

Public API: ``FakeComfyUISettings``, ``FaultSettings``, ``FakeComfyUI``, ``create_app``,
``run_fake_comfyui`` and ``RunningFakeComfyUI``. See ``standins/comfyui/README.md``.
"""

from standins.comfyui.server import (
    Counters,
    FakeComfyUI,
    RunningFakeComfyUI,
    create_app,
    run_fake_comfyui,
)
from standins.comfyui.settings import FakeComfyUISettings, FaultSettings

__all__ = [
    "Counters",
    "FakeComfyUI",
    "FakeComfyUISettings",
    "FaultSettings",
    "RunningFakeComfyUI",
    "create_app",
    "run_fake_comfyui",
]
