"""The ``imagegen`` command-line client of the gateway.

::

    imagegen generate --image in.jpg --instruction "Перекрась чашку в зелёный" \\
        [--variants N] [--seed S] [--lora name:0.8] [--controlnet canny:0.6] \\
        [--width W --height H] [--description "..."] [--out DIR] [--target host:port] \\
        [--steps N --cfg X --guidance X --denoise X --sampler S --scheduler S] \\
        [--plan plan.json] [--previews DIR] [--format png|jpeg|webp --quality N] \\
        [--mask mask.png] [--mode auto|img2img|kontext|inpaint]
    imagegen plan --image in.jpg --instruction "..." [--out plan.json]
    imagegen models [--refresh]
    imagegen health [--target host:port] [--vision A] [--planner A] [--render A]
    imagegen submit | watch | get | cancel | list ...   jobs (see clients.operations)

All take ``--token`` (default ``$IMAGEGEN_TOKEN``), sent as ``authorization: Bearer``
when the gateway checks callers, ``--tls-ca`` for a gateway serving TLS, and
``--tls-cert``/``--tls-key`` for a client certificate (mutual TLS).

``plan`` writes the plan as JSON; edit it and send it back with ``generate --plan``,
which renders exactly that plan (no model is asked).

``generate`` shows the analysis and the plan, a live progress bar per variant, writes
each variant to ``DIR/<seed>.png`` as it arrives and prints the stage timings. A failed
call prints its status code, message and the fields at fault, and exits with 1 (2 for a
usage error such as an unreadable image file).

The client is synchronous (a plain ``grpc`` channel) and loads only grpc, the generated
code and the standard library, never server code. The commands live in
:mod:`clients.generate` and :mod:`clients.health` and take the channel, so tests drive
them through ``grpc_testing``; they (and grpc itself) are loaded only once the arguments
are parsed, so ``imagegen --help`` and usage errors answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from clients.operations import JOB_COMMANDS, add_job_commands
from imagegen.common.v1 import common_pb2

if TYPE_CHECKING:
    from clients.generate import GenerateOutcome
    from imagegen.gateway.v1 import gateway_pb2

__all__ = [
    "DEFAULT_TARGET",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "build_plan_request",
    "build_request",
    "execute",
    "main",
    "parse_controlnet",
    "parse_lora",
    "sampler_overrides",
]

DEFAULT_TARGET = "127.0.0.1:50051"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_FORMATS = {
    "png": common_pb2.OUTPUT_FORMAT_PNG,
    "jpeg": common_pb2.OUTPUT_FORMAT_JPEG,
    "webp": common_pb2.OUTPUT_FORMAT_WEBP,
}
_EDIT_MODES = {
    "auto": common_pb2.EDIT_MODE_AUTO,
    "img2img": common_pb2.EDIT_MODE_IMG2IMG,
    "kontext": common_pb2.EDIT_MODE_KONTEXT,
    "inpaint": common_pb2.EDIT_MODE_INPAINT,
}

_CONTROL_TYPES = {
    "canny": common_pb2.CONTROL_TYPE_CANNY,
    "depth": common_pb2.CONTROL_TYPE_DEPTH,
    "pose": common_pb2.CONTROL_TYPE_POSE,
    "tile": common_pb2.CONTROL_TYPE_TILE,
}


# --------------------------------------------------------------------------- arguments


def parse_lora(text: str) -> common_pb2.LoraSpec:
    """``name`` or ``name:strength`` → a LoRA spec.

    Raises:
        argparse.ArgumentTypeError: The strength is not a number.
    """
    name, sep, strength = text.rpartition(":")
    if not sep:
        return common_pb2.LoraSpec(name=text)
    try:
        return common_pb2.LoraSpec(name=name, strength=float(strength))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: expected name:strength") from e


def parse_controlnet(text: str) -> common_pb2.ControlNetSpec:
    """``type[:strength[:start[:end]]]`` (e.g. ``canny:0.6``) → a ControlNet spec.

    Raises:
        argparse.ArgumentTypeError: An unknown type or a value that is not a number.
    """
    kind, *numbers = text.split(":")
    if kind.lower() not in _CONTROL_TYPES or len(numbers) > 3:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected TYPE[:STRENGTH[:START[:END]]], TYPE one of "
            + ", ".join(_CONTROL_TYPES)
        )
    spec = common_pb2.ControlNetSpec(type=_CONTROL_TYPES[kind.lower()])
    try:
        for name, value in zip(("strength", "start_percent", "end_percent"), numbers, strict=False):
            setattr(spec, name, float(value))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: strength, start and end are numbers") from e
    return spec


def build_parser() -> argparse.ArgumentParser:
    """The ``imagegen`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="imagegen", description="Generate images through the imagegen gateway."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="generate images from an instruction")
    _add_inputs(generate)
    generate.add_argument("--variants", type=int, default=1, help="how many images (default 1)")
    generate.add_argument("--seed", type=int, help="seed of the first variant; random if unset")
    generate.add_argument(
        "--lora", type=parse_lora, action="append", default=[], help="NAME[:STRENGTH], repeatable"
    )
    generate.add_argument(
        "--controlnet", type=parse_controlnet, help="TYPE[:STRENGTH[:START[:END]]], e.g. canny:0.6"
    )
    generate.add_argument("--width", type=int, default=0, help="text-to-image width")
    generate.add_argument("--height", type=int, default=0, help="text-to-image height")
    generate.add_argument("--workflow", default="", help="workflow template name")
    generate.add_argument(
        "--plan", type=Path, help="render this plan (JSON written by `imagegen plan`) as it is"
    )
    generate.add_argument(
        "--previews", type=Path, metavar="DIR", help="stream previews into DIR as JPEG files"
    )
    generate.add_argument("--format", choices=sorted(_FORMATS), help="result encoding (png)")
    generate.add_argument("--quality", type=int, default=0, help="JPEG/WEBP quality 1-100")
    generate.add_argument("--mask", type=Path, help="inpainting mask: white = change")
    generate.add_argument("--mode", choices=list(_EDIT_MODES), help="how the edit is rendered")
    generate.add_argument(
        "--out", type=Path, default=Path("out"), help="output folder (default out)"
    )
    generate.add_argument(
        "--timeout", type=float, help="deadline in seconds (default: the server's)"
    )
    _add_target(generate)

    plan = commands.add_parser("plan", help="analyse and plan without rendering; write the plan")
    _add_inputs(plan)
    plan.add_argument(
        "--out", type=Path, default=Path("plan.json"), help="plan file (default plan.json)"
    )
    plan.add_argument("--timeout", type=float, help="deadline in seconds (default: the server's)")
    _add_target(plan)

    health = commands.add_parser("health", help="check the gateway and the services behind it")
    health.add_argument("--vision", help="also ask the vision service at this address directly")
    health.add_argument("--planner", help="also ask the planner service at this address directly")
    health.add_argument("--render", help="also ask the render service at this address directly")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds per check (default 3)")
    _add_target(health)
    add_job_commands(commands, generate, _add_target)

    models = commands.add_parser(
        "models", help="list workflows, LoRAs, ControlNets, samplers, limits and language models"
    )
    models.add_argument(
        "--refresh", action="store_true", help="have the gateway ask the services again"
    )
    models.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    _add_target(models)
    return parser


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    """What ``generate`` and ``plan`` share: the source, the instruction, the overrides."""
    parser.add_argument("--image", type=Path, help="source image; omit for text-to-image")
    parser.add_argument("--instruction", required=True, help="what to do, in any language")
    parser.add_argument("--description", help="your own description of the image (skips vision)")
    parser.add_argument("--steps", type=int, help="sampling steps (overrides the plan)")
    parser.add_argument("--cfg", type=float, help="CFG scale (overrides the plan)")
    parser.add_argument("--guidance", type=float, help="Flux guidance (overrides the plan)")
    parser.add_argument("--denoise", type=float, help="denoise 0-1 (overrides the plan)")
    parser.add_argument("--sampler", help="sampler name, e.g. euler (overrides the plan)")
    parser.add_argument("--scheduler", help="scheduler name, e.g. simple (overrides the plan)")


def sampler_overrides(args: argparse.Namespace) -> common_pb2.SamplerSettings:
    """The sampler settings the arguments fix; the rest is left to the plan."""
    settings = common_pb2.SamplerSettings()
    for arg, field in (
        ("steps", "steps"),
        ("cfg", "cfg"),
        ("guidance", "guidance"),
        ("denoise", "denoise"),
        ("sampler", "sampler_name"),
        ("scheduler", "scheduler"),
    ):
        value = getattr(args, arg)
        if value is not None:
            setattr(settings, field, value)
    return settings


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        default=os.environ.get("IMAGEGEN_GATEWAY", DEFAULT_TARGET),
        help=f"gateway host:port (default $IMAGEGEN_GATEWAY or {DEFAULT_TARGET})",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("IMAGEGEN_TOKEN"),
        help="caller token sent as 'authorization: Bearer' (default $IMAGEGEN_TOKEN)",
    )
    parser.add_argument(
        "--tls-ca", type=Path, help="CA bundle of the gateway's certificate; turns TLS on"
    )
    parser.add_argument(
        "--tls-cert", type=Path, help="client certificate (PEM) for a gateway requiring mTLS"
    )
    parser.add_argument("--tls-key", type=Path, help="key of the client certificate (PEM)")


def build_request(args: argparse.Namespace) -> gateway_pb2.GenerateRequest:
    """The ``GenerateRequest`` the ``generate`` arguments describe.

    Raises:
        OSError: The image, mask or plan file cannot be read.
        ValueError: The plan file is not a plan.
    """
    from google.protobuf import json_format

    from imagegen.gateway.v1 import gateway_pb2  # loads grpc: only when a command runs

    request = gateway_pb2.GenerateRequest(
        instruction=args.instruction,
        variants=args.variants,
        width=args.width,
        height=args.height,
        loras=args.lora,
        workflow=args.workflow,
        sampler=sampler_overrides(args),
        previews=args.previews is not None,
        output_quality=args.quality,
    )
    if args.image is not None:
        request.source_image.data = args.image.read_bytes()
    if args.mask is not None:
        request.mask.data = args.mask.read_bytes()
    if args.seed is not None:
        request.seed = args.seed
    if args.controlnet is not None:
        request.controlnet.CopyFrom(args.controlnet)
    if args.description is not None:
        request.description = args.description
    if args.format is not None:
        request.output_format = _FORMATS[args.format]
    if args.mode is not None:
        request.edit_mode = _EDIT_MODES[args.mode]
    if args.plan is not None:
        try:
            json_format.Parse(args.plan.read_text(encoding="utf-8"), request.plan)
        except json_format.ParseError as e:
            raise ValueError(f"{args.plan} is not a plan: {e}") from e
    return request


def build_plan_request(args: argparse.Namespace) -> gateway_pb2.PlanRequest:
    """The ``PlanRequest`` the ``plan`` arguments describe.

    Raises:
        OSError: The image file cannot be read.
    """
    from imagegen.gateway.v1 import gateway_pb2  # loads grpc: only when a command runs

    request = gateway_pb2.PlanRequest(instruction=args.instruction, sampler=sampler_overrides(args))
    if args.image is not None:
        request.source_image.data = args.image.read_bytes()
    if args.description is not None:
        request.description = args.description
    return request


# --------------------------------------------------------------------------- main


def execute(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None
) -> tuple[int, GenerateOutcome | None]:
    """Runs an ``imagegen`` command and returns what it produced.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.
        stdout: Where to print; standard output when None.

    Returns:
        The exit status (0 on success, 1 when a call failed or a service is unhealthy,
        2 for a usage error) and, for ``generate``, the outcome of the call.
    """
    out = stdout if stdout is not None else sys.stdout
    args = build_parser().parse_args(argv)
    # Loaded only now: grpc alone takes longer to import than --help takes to answer.
    import grpc

    from clients.generate import run_generate, run_plan
    from clients.health import SERVICE_NAMES, run_health
    from clients.models import run_models
    from clients.rpc import ChannelTLS, call_metadata, open_channel, print_rpc_error

    try:
        tls = ChannelTLS.of(args.tls_ca, args.tls_cert, args.tls_key)
        request = build_request(args) if args.command == "generate" else None
        plan_request = build_plan_request(args) if args.command == "plan" else None
    except OSError as e:
        print(f"error: cannot read {e.filename}: {e.strerror or e}", file=out)
        return EXIT_USAGE, None
    except ValueError as e:
        print(f"error: {e}", file=out)
        return EXIT_USAGE, None

    metadata = call_metadata(args.token)
    if args.command == "health":
        direct = [(n, open_channel(a)) for n in SERVICE_NAMES if (a := getattr(args, n))]
        try:
            with open_channel(args.target, tls) as channel:
                healthy = run_health(
                    channel, out, timeout=args.timeout, direct=direct, metadata=metadata
                )
        finally:
            for _, ch in direct:
                ch.close()
        return (EXIT_OK if healthy else EXIT_FAILED), None
    if args.command in JOB_COMMANDS:
        from clients.operations import run_job_command

        with open_channel(args.target, args.tls_ca) as channel:
            try:
                status = run_job_command(
                    args,
                    channel,
                    stream=out,
                    metadata=call_metadata(args.token),
                    generate_request=build_request,
                )
            except grpc.RpcError as e:
                print_rpc_error(e, out)
                return EXIT_FAILED, None
            except OSError as e:
                print(f"error: cannot read {e.filename}: {e.strerror or e}", file=out)
                return EXIT_USAGE, None
        return status, None

    with open_channel(args.target, tls) as channel:
        try:
            if args.command == "models":
                run_models(
                    channel, out, timeout=args.timeout, refresh=args.refresh, metadata=metadata
                )
                return EXIT_OK, None
            if plan_request is not None:
                run_plan(
                    channel,
                    plan_request,
                    out_file=args.out,
                    stream=out,
                    timeout=args.timeout,
                    metadata=metadata,
                )
                return EXIT_OK, None
            assert request is not None
            outcome = run_generate(
                channel,
                request,
                out_dir=args.out,
                previews_dir=args.previews,
                stream=out,
                timeout=args.timeout,
                live=out.isatty() and os.environ.get("TERM") != "dumb",
                metadata=metadata,
            )
        except grpc.RpcError as e:
            print_rpc_error(e, out)
            return EXIT_FAILED, None
    return (EXIT_OK if outcome.completed else EXIT_FAILED), outcome


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    """The console script ``imagegen``: runs a command and returns its exit status."""
    return execute(argv, stdout=stdout)[0]


if __name__ == "__main__":
    sys.exit(main())
