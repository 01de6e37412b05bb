"""A protocol-faithful fake of a ComfyUI 0.3.64 server (no models, no GPU).

Public API: ``FakeComfyUISettings``, ``FaultSettings``, ``FakeComfyUI``, ``create_app``,
``run_fake_comfyui`` and ``RunningFakeComfyUI``. See ``services/fake_comfyui/README.md``.
"""

from services.fake_comfyui.server import (
    Counters,
    FakeComfyUI,
    RunningFakeComfyUI,
    create_app,
    run_fake_comfyui,
)
from services.fake_comfyui.settings import FakeComfyUISettings, FaultSettings

__all__ = [
    "Counters",
    "FakeComfyUI",
    "FakeComfyUISettings",
    "FaultSettings",
    "RunningFakeComfyUI",
    "create_app",
    "run_fake_comfyui",
]
