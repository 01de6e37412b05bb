"""The grpcurl call sequence of docs/jobs.md, run as printed against the system in-process.

The block is read from the page, so the page cannot show a command that does not work;
only the gateway's address (``localhost:50051`` → this test's port) and ``.venv/bin/``
(→ the running interpreter's directory) differ from a reader's terminal.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.docs.markdown import ROOT
from tests.gateway.system import System

pytestmark = pytest.mark.e2e

PAGE = ROOT / "docs" / "jobs.md"


def _call_sequence() -> str:
    text = PAGE.read_text()
    section = text.split("## The call sequence with grpcurl", 1)[1]
    match = re.search(r"^```bash\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    assert match is not None, "docs/jobs.md lost its grpcurl block"
    return match.group(1)


def _json_objects(text: str) -> list[dict[str, Any]]:
    decoder, objects, index = json.JSONDecoder(), [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        value, index = decoder.raw_decode(text, index)
        objects.append(value)
    return objects


async def test_the_pages_grpcurl_sequence_runs_as_printed(system: System) -> None:
    script = _call_sequence().replace("localhost:50051", system.gateway.address)
    script = script.replace(".venv/bin/", f"{Path(sys.executable).parent}/")
    process = await asyncio.create_subprocess_exec(
        "bash", "-euxo", "pipefail", "-c", script,  # -x: a failure shows its command
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(60):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    out = stdout.decode()
    listing, objects = out[: out.index("{")].split(), _json_objects(out[out.index("{") :])
    assert "google.longrunning.Operations" in listing
    assert "imagegen.gateway.v1.GatewayService" in listing

    events = [o for o in objects if set(o) & {"plan", "queued", "progress", "result", "completed"}]
    assert "completed" in events[-1] and sum("result" in e for e in events) == 2
    operations = [o for o in objects if str(o.get("name", "")).startswith("operations/")]
    done = next(o for o in operations if "response" in o)
    assert done["response"]["@type"] == (
        "type.googleapis.com/imagegen.gateway.v1.SubmitGenerateResponse"
    )
    assert [r["seed"] for r in done["response"]["results"]] == ["42", "43"]
    assert done["metadata"]["@type"].endswith("imagegen.gateway.v1.SubmitGenerateMetadata")
    assert {o["name"] for o in operations} == {done["name"]}, "the resubmit is the same job"
    assert system.comfyui.fake.counters.prompts_submitted == 2
