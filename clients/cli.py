"""The ``imagegen`` command-line client of the gateway.

::

    imagegen generate --image in.jpg --instruction "Перекрась чашку в зелёный" \\
        [--variants N] [--seed S] [--lora name:0.8] [--controlnet canny:0.6] \\
        [--width W --height H] [--description "..."] [--out DIR] [--target host:port]
    imagegen health [--target host:port] [--vision A] [--planner A] [--render A]
    imagegen submit | watch | get | cancel | list ...   jobs (see clients.operations)

Both take ``--token`` (default ``$IMAGEGEN_TOKEN``), sent as ``authorization: Bearer``
when the gateway checks callers, and ``--tls-ca`` for a gateway serving TLS.

``generate`` shows the analysis and the plan, a live progress bar per variant, writes
each variant to ``DIR/<seed>.png`` as it arrives and prints the stage timings. A failed
call prints its status code, message and the fields at fault, and exits with 1 (2 for a
usage error such as an unreadable image file).

The client is synchronous (a plain ``grpc`` channel): :func:`run_generate` and
:func:`run_health` take the channel, so tests drive them through ``grpc_testing``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.operations import JOB_COMMANDS, add_job_commands, run_job_command
from gateway.downstream import SERVICE_NAMES
from gateway.service import SERVICE_NAME as GATEWAY_SERVICE
from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.common.errors import status_details

__all__ = [
    "DEFAULT_TARGET",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "GenerateOutcome",
    "ProgressBoard",
    "build_parser",
    "build_request",
    "execute",
    "main",
    "parse_controlnet",
    "parse_lora",
    "print_rpc_error",
    "run_generate",
    "run_health",
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
_BAR_WIDTH = 30


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
    add_job_commands(commands, generate, _add_target)
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


# --------------------------------------------------------------------------- progress


@dataclass
class _VariantLine:
    state: str = "waiting"
    step: int = 0
    total: int = 0
    note: str = ""


class ProgressBoard:
    """One progress line per variant: redrawn in place on a terminal, else printed.

    Args:
        stream: Where to write.
        variants: How many variants the request renders.
        live: Redraw in place with ANSI cursor moves (a terminal); otherwise a line is
            printed when a variant is queued, passes each quarter, or finishes.
    """

    def __init__(self, stream: TextIO, variants: int, *, live: bool) -> None:
        self._stream = stream
        self._live = live
        self._lines = [_VariantLine() for _ in range(variants)]
        self._drawn = False

    def queued(self, variant: int, position: int) -> None:
        """A variant waits in the render queue."""
        line = self._line(variant)
        line.state, line.note = "queued", f"position {position}"
        self._show(variant, quarter_changed=True)

    def progress(self, variant: int, step: int, total: int) -> None:
        """A sampling step of a variant finished."""
        line = self._line(variant)
        before = _quarter(line.step, line.total)
        line.state, line.step, line.total, line.note = "sampling", step, total, ""
        self._show(variant, quarter_changed=_quarter(step, total) != before)

    def done(self, variant: int, note: str) -> None:
        """A variant finished and was written."""
        line = self._line(variant)
        line.state, line.note = "done", note
        line.step = line.total = line.total or 1
        self._show(variant, quarter_changed=True)

    def _line(self, variant: int) -> _VariantLine:
        while variant >= len(self._lines):
            self._lines.append(_VariantLine())
        return self._lines[variant]

    def render(self, variant: int) -> str:
        """The text of one variant's line."""
        line = self._lines[variant]
        fraction = line.step / line.total if line.total else 0.0
        filled = round(fraction * _BAR_WIDTH)
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        steps = f"{line.step}/{line.total}" if line.total else "-"
        text = f"variant {variant} [{bar}] {steps:>7} {line.state}"
        return f"{text} {line.note}".rstrip()

    def _show(self, variant: int, *, quarter_changed: bool) -> None:
        if not self._live:
            if quarter_changed:
                print(self.render(variant), file=self._stream, flush=True)
            return
        if self._drawn:
            self._stream.write(f"\x1b[{len(self._lines)}F")
        for index in range(len(self._lines)):
            self._stream.write("\x1b[2K" + self.render(index) + "\n")
        self._stream.flush()
        self._drawn = True


def _quarter(step: int, total: int) -> int:
    return (4 * step) // total if total else -1


# --------------------------------------------------------------------------- generate


@dataclass
class GenerateOutcome:
    """What a ``generate`` call produced.

    Attributes:
        written: The PNG files written, in the order the variants finished.
        seeds: The seed of each variant written.
        analysis: The analysis, when one was made.
        plan: The plan rendered.
        warnings: Every warning event.
        timings: Stage → milliseconds, from the ``completed`` event.
        completed: Whether the ``completed`` event arrived.
    """

    written: list[Path] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    analysis: common_pb2.ImageAnalysis | None = None
    plan: common_pb2.PromptPlan | None = None
    warnings: list[common_pb2.Warning] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    completed: bool = False


def run_generate(
    channel: grpc.Channel,
    request: gateway_pb2.GenerateRequest,
    *,
    out_dir: Path,
    stream: TextIO,
    timeout: float | None = None,
    live: bool = False,
    metadata: Sequence[tuple[str, str]] = (),
) -> GenerateOutcome:
    """Calls ``Generate``, shows its events and writes each variant as it arrives.

    Args:
        channel: A channel to the gateway.
        request: The request.
        out_dir: Where ``<seed>.png`` files go (created if missing).
        stream: Where to print.
        timeout: Deadline of the call in seconds; None leaves it to the server.
        live: Redraw progress bars in place (a terminal).
        metadata: Call metadata, e.g. the caller's token.

    Returns:
        What was produced.

    Raises:
        grpc.RpcError: The call failed (see :func:`print_rpc_error`).
    """
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[no-untyped-call]
    board = ProgressBoard(stream, max(request.variants, 1), live=live)
    outcome = GenerateOutcome()
    out_dir.mkdir(parents=True, exist_ok=True)
    for event in stub.Generate(request, timeout=timeout, metadata=tuple(metadata) or None):
        kind = event.WhichOneof("event")
        if kind == "analysis":
            outcome.analysis = event.analysis.analysis
            _print_analysis(stream, event.analysis)
        elif kind == "plan":
            outcome.plan = event.plan.plan
            _print_plan(stream, event.plan)
        elif kind == "queued":
            board.queued(event.queued.variant, event.queued.position)
        elif kind == "progress":
            board.progress(event.progress.variant, event.progress.step, event.progress.total_steps)
        elif kind == "result":
            result = event.result
            path = out_dir / f"{result.seed}.png"
            path.write_bytes(result.image.data)
            outcome.written.append(path)
            outcome.seeds.append(result.seed)
            board.done(
                result.index,
                f"seed {result.seed} {result.image.width}x{result.image.height} → {path}",
            )
        elif kind == "warning":
            outcome.warnings.append(event.warning)
            print(f"warning {event.warning.code}: {event.warning.message}", file=stream, flush=True)
        elif kind == "completed":
            outcome.completed = True
            outcome.timings = {t.stage: t.millis for t in event.completed.timings}
            _print_completed(stream, event.completed, outcome.written)
    return outcome


def _print_analysis(stream: TextIO, ready: gateway_pb2.AnalysisReady) -> None:
    analysis = ready.analysis
    source = {
        common_pb2.ANALYSIS_SOURCE_MODEL: f"model {analysis.model}".strip(),
        common_pb2.ANALYSIS_SOURCE_METADATA_FALLBACK: "fallback (image metadata)",
        common_pb2.ANALYSIS_SOURCE_USER: "your description",
    }.get(analysis.source, "unknown")
    reused = ", reused" if ready.reused else ""
    print(f"analysis ({source}{reused}): {analysis.description}", file=stream)
    for name in ("subjects", "colors", "materials"):
        values = list(getattr(analysis, name))
        if values:
            print(f"  {name}: {', '.join(values)}", file=stream)
    for name in ("style", "lighting", "composition"):
        value = getattr(analysis, name)
        if value:
            print(f"  {name}: {value}", file=stream)
    stream.flush()


def _print_plan(stream: TextIO, ready: gateway_pb2.PlanReady) -> None:
    plan = ready.plan
    source = {
        common_pb2.PLAN_SOURCE_MODEL: f"model {plan.model}".strip(),
        common_pb2.PLAN_SOURCE_RULES: "keyword rules",
        common_pb2.PLAN_SOURCE_USER: "your plan",
    }.get(plan.source, "unknown")
    reused = ", reused" if ready.reused else ""
    intent = common_pb2.EditIntent.Name(plan.intent).removeprefix("EDIT_INTENT_").lower()
    s = plan.settings
    print(f"plan ({source}{reused}), intent {intent}:", file=stream)
    print(f"  prompt: {plan.positive_prompt}", file=stream)
    if plan.negative_prompt:
        print(f"  negative: {plan.negative_prompt}", file=stream)
    print(
        f"  denoise {s.denoise:.2f} · steps {s.steps} · cfg {s.cfg:g} · guidance {s.guidance:g}"
        f" · {s.sampler_name}/{s.scheduler}",
        file=stream,
        flush=True,
    )


def _print_completed(stream: TextIO, completed: gateway_pb2.Completed, written: list[Path]) -> None:
    timings = " · ".join(f"{t.stage} {_millis(t.millis)}" for t in completed.timings)
    print(f"timings: {timings}", file=stream)
    print(
        f"done: {completed.variants} variant(s) from seed {completed.seed}, "
        f"request {completed.request_id}",
        file=stream,
    )
    for path in written:
        print(f"  wrote {path}", file=stream)
    stream.flush()


def _millis(millis: float) -> str:
    return f"{millis / 1000:.2f} s" if millis >= 1000 else f"{millis:.0f} ms"


def print_rpc_error(error: grpc.RpcError, stream: TextIO) -> None:
    """Prints a failed call: status code, message, and each field or reason at fault."""
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    message = error.details() if callable(getattr(error, "details", None)) else str(error)
    print(f"error: {code.name}: {message}", file=stream)
    for detail in status_details(error):
        if isinstance(detail, error_details_pb2.BadRequest):
            for violation in detail.field_violations:
                print(f"  field {violation.field}: {violation.description}", file=stream)
        elif isinstance(detail, error_details_pb2.ErrorInfo):
            extra = ", ".join(f"{k}={v}" for k, v in sorted(detail.metadata.items()))
            print(f"  reason {detail.reason}" + (f" ({extra})" if extra else ""), file=stream)
        elif isinstance(detail, error_details_pb2.PreconditionFailure):
            for pv in detail.violations:
                print(f"  {pv.type} {pv.subject}: {pv.description}", file=stream)
        elif isinstance(detail, error_details_pb2.RetryInfo):
            print(
                f"  retry after {detail.retry_delay.ToTimedelta().total_seconds():g} s", file=stream
            )
    stream.flush()


# --------------------------------------------------------------------------- health


def run_health(
    channel: grpc.Channel,
    stream: TextIO,
    *,
    timeout: float = 3.0,
    direct: Iterable[tuple[str, grpc.Channel]] = (),
    metadata: Sequence[tuple[str, str]] = (),
) -> bool:
    """Asks the gateway's health, its view of each downstream service, and optionally
    each service directly.

    Args:
        channel: A channel to the gateway.
        stream: Where to print one line per check.
        timeout: Seconds per check.
        direct: (short service name, channel to it) for services to ask directly.
        metadata: Call metadata for the gateway, e.g. the caller's token.

    Returns:
        True when every check answered SERVING.
    """
    checks: list[tuple[str, grpc.Channel, str]] = [
        ("gateway", channel, ""),
        ("gateway service", channel, GATEWAY_SERVICE),
    ]
    checks += [
        (f"{name} (seen by the gateway)", channel, full) for name, full in SERVICE_NAMES.items()
    ]
    checks += [(f"{name} (direct)", ch, SERVICE_NAMES[name]) for name, ch in direct]
    healthy = True
    for label, ch, service in checks:
        status = _check(ch, service, timeout, metadata if ch is channel else ())
        healthy &= status == "SERVING"
        print(f"{label:<30} {status}", file=stream)
    stream.flush()
    return healthy


def _check(
    channel: grpc.Channel, service: str, timeout: float, metadata: Sequence[tuple[str, str]]
) -> str:
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        response = stub.Check(
            health_pb2.HealthCheckRequest(service=service),
            timeout=timeout,
            metadata=tuple(metadata) or None,
        )
    except grpc.RpcError as e:
        code = e.code() if callable(getattr(e, "code", None)) else grpc.StatusCode.UNKNOWN
        return str(code.name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


# --------------------------------------------------------------------------- main


def _channel(target: str, tls_ca: Path | None = None) -> grpc.Channel:
    limit = int(os.environ.get("IMAGEGEN_MAX_MESSAGE_BYTES", 64 * 1024 * 1024))
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", limit),
        ("grpc.max_receive_message_length", limit),
    ]
    if tls_ca is None:
        return grpc.insecure_channel(target, options=options)
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_ca.read_bytes())
    return grpc.secure_channel(target, credentials, options=options)


def _metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


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
    if args.command == "health":
        direct = [(n, _channel(a)) for n in SERVICE_NAMES if (a := getattr(args, n))]
        try:
            with _channel(args.target, args.tls_ca) as channel:
                healthy = run_health(
                    channel,
                    out,
                    timeout=args.timeout,
                    direct=direct,
                    metadata=_metadata(args.token),
                )
        finally:
            for _, ch in direct:
                ch.close()
        return (EXIT_OK if healthy else EXIT_FAILED), None
    if args.command in JOB_COMMANDS:
        with _channel(args.target, args.tls_ca) as channel:
            try:
                status = run_job_command(
                    args,
                    channel,
                    stream=out,
                    metadata=_metadata(args.token),
                    generate_request=build_request,
                )
            except grpc.RpcError as e:
                print_rpc_error(e, out)
                return EXIT_FAILED, None
            except OSError as e:
                print(f"error: cannot read {e.filename}: {e.strerror or e}", file=out)
                return EXIT_USAGE, None
        return status, None

    try:
        request = build_request(args)
        channel = _channel(args.target, args.tls_ca)
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
                metadata=_metadata(args.token),
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
