"""The ``imagegen`` commands a caller needs besides ``generate``, against a real gateway:
plan → edit → ``generate --plan``, previews, sampler overrides, client certificates."""

from __future__ import annotations

import asyncio
import io
import json
from contextlib import AsyncExitStack
from pathlib import Path

import trustme

from clients import cli
from clients.generate import GenerateOutcome
from imagegen.common.v1 import common_pb2
from standins.comfyui.settings import FakeComfyUISettings
from tests.gateway.conftest import StartGateway
from tests.gateway.system import System, start_system
from tools.stack import EXAMPLE_IMAGE

INSTRUCTION = "Перекрась чашку в тёмно-зелёный цвет"


async def _run(argv: list[str]) -> tuple[int, str, GenerateOutcome | None]:
    out = io.StringIO()
    code, outcome = await asyncio.to_thread(cli.execute, argv, stdout=out)
    return code, out.getvalue(), outcome


async def test_plan_then_edited_plan_is_rendered_as_written(system: System, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    code, text, _ = await _run(
        ["plan", "--target", system.gateway.address, "--image", str(EXAMPLE_IMAGE),
         "--instruction", INSTRUCTION, "--steps", "3", "--out", str(plan_file)]
    )  # fmt: skip
    assert code == cli.EXIT_OK, text
    assert f"wrote {plan_file}" in text
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    assert plan["positive_prompt"] and plan["settings"]["steps"] == 3
    plan["positive_prompt"] = "an emerald green cup on a white saucer"
    plan_file.write_text(json.dumps(plan), encoding="utf-8")
    planner_calls = system.ollama_chats("gpt-oss")

    code, text, outcome = await _run(
        ["generate", "--target", system.gateway.address, "--image", str(EXAMPLE_IMAGE),
         "--instruction", INSTRUCTION, "--plan", str(plan_file), "--seed", "5",
         "--out", str(tmp_path / "out")]
    )  # fmt: skip
    assert code == cli.EXIT_OK, text
    assert outcome is not None and outcome.plan is not None
    assert outcome.plan.positive_prompt == "an emerald green cup on a white saucer"
    assert outcome.plan.source == common_pb2.PLAN_SOURCE_USER
    assert system.ollama_chats("gpt-oss") == planner_calls
    assert [p.name for p in outcome.written] == ["5.png"]


async def test_a_file_that_is_no_plan_is_a_usage_error(system: System, tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text('{"positive_prompt": 3, "nonsense": true}', encoding="utf-8")
    code, text, _ = await _run(
        ["generate", "--target", system.gateway.address, "--instruction", "x",
         "--plan", str(bad)]
    )  # fmt: skip
    assert code == cli.EXIT_USAGE
    assert f"error: {bad} is not a plan" in text


async def test_sampler_overrides_reach_the_plan(system: System, tmp_path: Path) -> None:
    code, text, outcome = await _run(
        ["generate", "--target", system.gateway.address, "--image", str(EXAMPLE_IMAGE),
         "--instruction", INSTRUCTION, "--steps", "3", "--cfg", "1.5", "--guidance", "4",
         "--denoise", "0.5", "--sampler", "euler", "--scheduler", "simple",
         "--out", str(tmp_path)]
    )  # fmt: skip
    assert code == cli.EXIT_OK, text
    assert outcome is not None and outcome.plan is not None
    s = outcome.plan.settings
    assert (s.steps, s.cfg, s.guidance, s.sampler_name, s.scheduler) == (
        3, 1.5, 4.0, "euler", "simple"
    )  # fmt: skip
    assert abs(s.denoise - 0.5) < 1e-6


async def test_unknown_sampler_is_refused_with_what_exists(system: System, tmp_path: Path) -> None:
    code, text, _ = await _run(
        ["generate", "--target", system.gateway.address, "--instruction", "a fox",
         "--sampler", "warp", "--out", str(tmp_path)]
    )  # fmt: skip
    assert code == cli.EXIT_FAILED
    assert "INVALID_ARGUMENT" in text and "unknown sampler 'warp'" in text and "euler" in text
    assert "field sampler.sampler_name:" in text


async def test_previews_are_written_into_their_folder(
    exit_stack: AsyncExitStack, tmp_path: Path
) -> None:
    system = await start_system(
        exit_stack, comfyui=FakeComfyUISettings(step_delay_s=0.05, previews_enabled=True)
    )
    previews = tmp_path / "previews"
    code, text, outcome = await _run(
        ["generate", "--target", system.gateway.address, "--image", str(EXAMPLE_IMAGE),
         "--instruction", INSTRUCTION, "--steps", "8", "--previews", str(previews),
         "--out", str(tmp_path / "out")]
    )  # fmt: skip
    assert code == cli.EXIT_OK, text
    assert outcome is not None and outcome.previews
    assert all(p.parent == previews and p.suffix == ".jpg" for p in outcome.previews)
    assert all(p.read_bytes()[:2] == b"\xff\xd8" for p in outcome.previews)


def test_format_quality_mask_and_mode_are_sent(tmp_path: Path) -> None:
    mask = tmp_path / "mask.png"
    mask.write_bytes(b"mask bytes")
    args = cli.build_parser().parse_args(
        ["generate", "--instruction", "x", "--format", "webp", "--quality", "80",
         "--mask", str(mask), "--mode", "inpaint"]
    )  # fmt: skip
    request = cli.build_request(args)
    assert request.output_format == common_pb2.OUTPUT_FORMAT_WEBP
    assert request.output_quality == 80
    assert request.mask.data == b"mask bytes"
    assert request.edit_mode == common_pb2.EDIT_MODE_INPAINT
    default = cli.build_request(cli.build_parser().parse_args(["generate", "--instruction", "x"]))
    assert not default.HasField("mask") and default.output_format == 0 and default.edit_mode == 0


async def test_client_certificate_reaches_a_gateway_that_requires_one(
    system: System, start_gateway: StartGateway, tmp_path: Path
) -> None:
    ca = trustme.CA()
    server, client = ca.issue_cert("127.0.0.1", "localhost"), ca.issue_cert("imagegen-cli")
    files = {
        "ca": ca.cert_pem, "server": server.cert_chain_pems[0],
        "server.key": server.private_key_pem, "client": client.cert_chain_pems[0],
        "client.key": client.private_key_pem,
    }  # fmt: skip
    for name, blob in files.items():
        blob.write_to_path(str(tmp_path / f"{name}.pem"))
    gateway = await start_gateway(
        tls_cert_file=tmp_path / "server.pem",
        tls_key_file=tmp_path / "server.key.pem",
        tls_ca_file=tmp_path / "ca.pem",
        tls_require_client_cert=True,
    )
    target = f"localhost:{gateway.address.rsplit(':', 1)[1]}"
    tls = ["--tls-ca", str(tmp_path / "ca.pem")]
    cert = [
        "--tls-cert",
        str(tmp_path / "client.pem"),
        "--tls-key",
        str(tmp_path / "client.key.pem"),
    ]
    code, text, _ = await _run(["models", "--target", target, "--timeout", "5", *tls, *cert])
    assert code == cli.EXIT_OK, text
    assert "flux-img2img" in text
    code, text, _ = await _run(["models", "--target", target, "--timeout", "5", *tls])
    assert code == cli.EXIT_FAILED and "UNAVAILABLE" in text
    code, text, _ = await _run(["models", "--target", target, *tls, "--tls-cert", "x.pem"])
    assert (code, text.strip()) == (cli.EXIT_USAGE, "error: --tls-cert and --tls-key go together")


async def test_format_jpeg_writes_jpg_files(system: System, tmp_path: Path) -> None:
    code, text, outcome = await _run(
        ["generate", "--target", system.gateway.address, "--image", str(EXAMPLE_IMAGE),
         "--instruction", INSTRUCTION, "--seed", "3", "--format", "jpeg", "--quality", "80",
         "--out", str(tmp_path)]
    )  # fmt: skip
    assert code == cli.EXIT_OK, text
    assert outcome is not None
    assert [p.name for p in outcome.written] == ["3.jpg"]
    assert outcome.written[0].read_bytes()[:2] == b"\xff\xd8"
