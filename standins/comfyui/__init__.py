"""A protocol-faithful stand-in for a ComfyUI 0.3.64 server, no models, no GPU (the README)."""

from standins.comfyui.routes import create_app
from standins.comfyui.server import Counters, FakeComfyUI, RunningFakeComfyUI, run_fake_comfyui
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
