"""``python -m standins.ollama --port 11434``: run the Ollama stand-in until SIGINT or SIGTERM
(settings from ``FAKE_OLLAMA_*`` environment variables)."""

from __future__ import annotations

from standins._server import parse_args, serve
from standins.ollama.server import RunningFakeOllama, run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    settings = FakeOllamaSettings()

    def banner(running: RunningFakeOllama) -> str:
        return (
            f"fake_ollama: STAND-IN for the Ollama API (no real models, no GPU; answers are "
            f"scripted or schema placeholders) listening on {running.url}; models "
            f"{', '.join(settings.models)}, {settings.max_loaded_models} resident at once"
        )

    serve(
        parse_args("standins.ollama", 11434, argv),
        lambda host, port: run_fake_ollama(settings, host=host, port=port),
        banner,
    )


if __name__ == "__main__":
    main()
