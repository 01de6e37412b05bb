"""ANALYSIS_INCOMPLETE through the real gateway: a model's gaps told from a fallback's."""

from __future__ import annotations

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from standins.ollama.faults import FaultKind
from tests.gateway.images import jpeg_bytes
from tests.gateway.system import ANALYSIS_ANSWER, System

SOURCE = common_pb2.Image(data=jpeg_bytes(120, 80))


async def _warnings(system: System) -> dict[str, str]:
    request = gateway_pb2.GenerateRequest(source_image=SOURCE, instruction="make the cup green")
    events = [e async for e in system.stub.Generate(request, timeout=30)]
    return {e.warning.code: e.warning.message for e in events if e.HasField("warning")}


async def test_fields_the_model_leaves_empty_are_named_as_the_models(system: System) -> None:
    system.ollama.fake.script.always(
        {**ANALYSIS_ANSWER, "lighting": "", "composition": "unknown"}, model="llava"
    )
    warnings = await _warnings(system)
    assert warnings["ANALYSIS_INCOMPLETE"] == (
        "the vision model left lighting, composition empty, even when asked again for them"
    )
    assert "ANALYSIS_FALLBACK" not in warnings


async def test_a_fallback_analysis_says_what_it_could_not_see(system: System) -> None:
    system.ollama.fake.faults.add(kind=FaultKind.ERROR, model="llava")
    warnings = await _warnings(system)
    assert "ANALYSIS_FALLBACK" in warnings
    assert warnings["ANALYSIS_INCOMPLETE"].startswith(
        "the metadata fallback cannot see subjects, materials, style"
    )
