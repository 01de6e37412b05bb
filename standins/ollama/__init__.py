"""A protocol-faithful stand-in for the Ollama HTTP API and its OpenAI-compatible routes: no
models, no GPU; scripted answers, one-GPU model residency, faults (the README)."""

from standins.ollama.faults import Fault, FaultBook, FaultKind
from standins.ollama.server import FakeOllama, RecordedRequest, RunningFakeOllama, run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings

__all__ = [
    "FakeOllama",
    "FakeOllamaSettings",
    "Fault",
    "FaultBook",
    "FaultKind",
    "RecordedRequest",
    "RunningFakeOllama",
    "run_fake_ollama",
]
