"""The vision service: describes source images with LLaVA on Ollama.

Run it with ``python -m services.vision``.
"""
