"""The vision service: describes source images with a vision model (LLaVA on Ollama,
or any model an OpenAI-compatible server serves).

Run it with ``python -m services.vision``.
"""
