"""A model server that hangs mid-call: the analysis falls back once the probe sees it down."""

from __future__ import annotations

import asyncio
import contextlib
import time

from services.common.llm import ModelProbe, ModelState, connect
from services.vision.analysis import AnalysisSource
from services.vision.analyzer import Analyzer
from standins.ollama import FaultKind
from standins.ollama.server import RunningFakeOllama
from tests.reliability.invariants import eventually
from tests.vision.conftest import chat_requests, two_colour_png, vision_settings

PROBE_INTERVAL_S = 0.3
PROBE_TIMEOUT_S = 0.3


async def test_an_analysis_waiting_on_a_hung_model_falls_back_once_the_probe_sees_it_down(
    ollama: RunningFakeOllama,
) -> None:
    settings = vision_settings(ollama.url, call_timeout_s=120.0, request_timeout_s=120.0)
    client = connect(settings)
    probe = ModelProbe(client, settings.model, "vision", timeout_s=PROBE_TIMEOUT_S)
    analyzer = Analyzer(settings, client, probe)

    async def watch() -> None:
        while True:
            await probe.check()
            await asyncio.sleep(PROBE_INTERVAL_S)

    watcher = asyncio.create_task(watch())
    try:
        await eventually(lambda: probe.state is ModelState.READY, timeout_s=5, what="ready")
        ollama.fake.faults.add(
            kind=FaultKind.DELAY, delay_s=600.0, routes=("chat", "show", "tags", "version")
        )
        started = time.monotonic()
        analysis = await analyzer.analyze(two_colour_png())
        elapsed = time.monotonic() - started
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await client.aclose()
    assert analysis.source is AnalysisSource.METADATA_FALLBACK
    assert "not by the vision model: abandoned: " in analysis.warnings[0]
    assert "does not answer" in analysis.warnings[0]
    # One probe interval and one probe timeout, plus a margin; not the 120 s call timeout.
    assert elapsed < PROBE_INTERVAL_S + PROBE_TIMEOUT_S + 1.0
    assert len(chat_requests(ollama)) == 1
