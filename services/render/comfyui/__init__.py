"""ComfyUI as a render backend: transport, message tracker, errors and node catalog."""

from services.render.comfyui.backend import ComfyUIBackend
from services.render.comfyui.client import ComfyUIClient

__all__ = ["ComfyUIBackend", "ComfyUIClient"]
