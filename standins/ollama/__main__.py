"""``python -m standins.ollama --port 11434``: run the Ollama stand-in until SIGINT or SIGTERM
(settings from ``FAKE_OLLAMA_*`` environment variables)."""

from __future__ import annotations

from standins._server import parse_args, serve
from standins.ollama.server import run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args("standins.ollama", 11434, argv)
    serve(args, lambda host, port: run_fake_ollama(FakeOllamaSettings(), host=host, port=port))


if __name__ == "__main__":
    main()
