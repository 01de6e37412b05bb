"""A protocol-faithful stand-in for the Ollama HTTP API (no models, no GPU).

Serves ``/api/chat``, ``/api/tags``, ``/api/ps``, ``/api/show``, ``/api/version``, ``GET /``
and the OpenAI-compatible ``/v1/chat/completions`` and ``/v1/models`` as Ollama does, with
answers tests script (else the request's JSON schema filled with placeholders), one-GPU
model residency, and faults that tests switch on.
"""

from standins.ollama.faults import Fault, FaultBook, FaultKind
from standins.ollama.server import (
    FakeOllama,
    RecordedRequest,
    RunningFakeOllama,
    run_fake_ollama,
)
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
