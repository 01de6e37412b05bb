"""The ``imagegen`` command-line client of the gateway.

::

    imagegen generate --image in.jpg --instruction "Перекрась чашку в зелёный" \\
        [--variants N] [--seed S] [--lora name:0.8] [--controlnet canny:0.6] \\
        [--width W --height H] [--description "..."] [--out DIR] [--target host:port]
    imagegen health [--target host:port] [--vision A] [--planner A] [--render A]

Both take ``--token`` (default ``$IMAGEGEN_TOKEN``), sent as ``authorization: Bearer``
when the gateway checks callers, and ``--tls-ca`` for a gateway serving TLS.

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

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2

if TYPE_CHECKING:
    from clients.generate import GenerateOutcome

__all__ = [
    "DEFAULT_TARGET",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "build_request",
    "execute",
    "main",
    "parse_controlnet",
    "parse_lora",
]

DEFAULT_TARGET = "127.0.0.1:50051"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

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
    generate.add_argument("--image", type=Path, help="source image; omit for text-to-image")
    generate.add_argument("--instruction", required=True, help="what to do, in any language")
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
    generate.add_argument("--description", help="your own description of the image (skips vision)")
    generate.add_argument("--workflow", default="", help="workflow template name")
    generate.add_argument(
        "--out", type=Path, default=Path("out"), help="output folder (default out)"
    )
    generate.add_argument(
        "--timeout", type=float, help="deadline in seconds (default: the server's)"
    )
    _add_target(generate)

    health = commands.add_parser("health", help="check the gateway and the services behind it")
    health.add_argument("--vision", help="also ask the vision service at this address directly")
    health.add_argument("--planner", help="also ask the planner service at this address directly")
    health.add_argument("--render", help="also ask the render service at this address directly")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds per check (default 3)")
    _add_target(health)

    models = commands.add_parser(
        "models", help="list workflows, LoRAs, ControlNets, samplers, limits and language models"
    )
    models.add_argument(
        "--refresh", action="store_true", help="have the gateway ask the services again"
    )
    models.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    _add_target(models)
    return parser


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


def build_request(args: argparse.Namespace) -> gateway_pb2.GenerateRequest:
    """The ``GenerateRequest`` the ``generate`` arguments describe.

    Raises:
        OSError: The image file cannot be read.
    """
    request = gateway_pb2.GenerateRequest(
        instruction=args.instruction,
        variants=args.variants,
        width=args.width,
        height=args.height,
        loras=args.lora,
        workflow=args.workflow,
    )
    if args.image is not None:
        request.source_image.data = args.image.read_bytes()
    if args.seed is not None:
        request.seed = args.seed
    if args.controlnet is not None:
        request.controlnet.CopyFrom(args.controlnet)
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

    from clients.generate import run_generate
    from clients.health import SERVICE_NAMES, run_health
    from clients.models import run_models
    from clients.rpc import call_metadata, open_channel, print_rpc_error

    if args.command == "health":
        direct = [(n, open_channel(a)) for n in SERVICE_NAMES if (a := getattr(args, n))]
        try:
            with open_channel(args.target, args.tls_ca) as channel:
                healthy = run_health(
                    channel,
                    out,
                    timeout=args.timeout,
                    direct=direct,
                    metadata=call_metadata(args.token),
                )
        finally:
            for _, ch in direct:
                ch.close()
        return (EXIT_OK if healthy else EXIT_FAILED), None

    if args.command == "models":
        with open_channel(args.target, args.tls_ca) as channel:
            try:
                run_models(
                    channel,
                    out,
                    timeout=args.timeout,
                    refresh=args.refresh,
                    metadata=call_metadata(args.token),
                )
            except grpc.RpcError as e:
                print_rpc_error(e, out)
                return EXIT_FAILED, None
        return EXIT_OK, None

    try:
        request = build_request(args)
        channel = open_channel(args.target, args.tls_ca)
    except OSError as e:
        print(f"error: cannot read {e.filename}: {e.strerror or e}", file=out)
        return EXIT_USAGE, None
    live = out.isatty() and os.environ.get("TERM") != "dumb"
    with channel:
        try:
            outcome = run_generate(
                channel,
                request,
                out_dir=args.out,
                stream=out,
                timeout=args.timeout,
                live=live,
                metadata=call_metadata(args.token),
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
