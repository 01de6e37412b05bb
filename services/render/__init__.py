"""The render service: drives ComfyUI (Flux1-dev-fp8) to turn prompts into images.

Entry point ``python -m services.render``; assembly in :mod:`services.render.app`.
"""
