"""The ``generate`` command: one ``Generate`` call shown as it happens, variants written.

Shows the analysis and the plan, a live progress bar per variant, writes each variant to
``DIR/<seed>.<png|jpg|webp>`` as it arrives (previews into a folder of their own when
asked), and prints the stage timings. ``plan`` writes a plan that ``generate --plan`` reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import grpc
from google.protobuf import json_format

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2, gateway_pb2_grpc

__all__ = ["GenerateOutcome", "ProgressBoard", "run_generate", "run_plan"]

_BAR_WIDTH = 30


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
        request_id: The request id, from the ``accepted`` event.
        previews: The preview files written.
    """

    written: list[Path] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    analysis: common_pb2.ImageAnalysis | None = None
    plan: common_pb2.PromptPlan | None = None
    warnings: list[common_pb2.Warning] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    completed: bool = False
    request_id: str = ""
    previews: list[Path] = field(default_factory=list)


def run_generate(
    channel: grpc.Channel,
    request: gateway_pb2.GenerateRequest,
    *,
    out_dir: Path,
    stream: TextIO,
    timeout: float | None = None,
    live: bool = False,
    metadata: Sequence[tuple[str, str]] = (),
    previews_dir: Path | None = None,
) -> GenerateOutcome:
    """Calls ``Generate``, shows its events and writes each variant as it arrives.

    Args:
        channel: A channel to the gateway.
        request: The request.
        out_dir: Where ``<seed>.<png|jpg|webp>`` files go (created if missing).
        stream: Where to print.
        timeout: Deadline of the call in seconds; None leaves it to the server.
        live: Redraw progress bars in place (a terminal).
        metadata: Call metadata, e.g. the caller's token.
        previews_dir: Where ``<variant>-<step>.jpg`` previews go; None writes none.

    Returns:
        What was produced.

    Raises:
        grpc.RpcError: The call failed (see :func:`print_rpc_error`).
    """
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[no-untyped-call]
    board = ProgressBoard(stream, max(request.variants, 1), live=live)
    outcome = GenerateOutcome()
    out_dir.mkdir(parents=True, exist_ok=True)
    if previews_dir is not None:
        previews_dir.mkdir(parents=True, exist_ok=True)
    for event in stub.Generate(request, timeout=timeout, metadata=tuple(metadata) or None):
        kind = event.WhichOneof("event")
        if kind == "accepted":
            accepted = event.accepted
            outcome.request_id = accepted.request_id
            print(
                f"accepted: request {accepted.request_id}, seed {accepted.seed}, "
                f"{accepted.variants} variant(s), workflow {accepted.workflow or 'default'}",
                file=stream,
                flush=True,
            )
        elif kind == "stage":
            stage = event.stage
            model = f" ({stage.model}{', cached' if stage.cached else ''})" if stage.model else ""
            print(f"{stage.stage}{model} …", file=stream, flush=True)
        elif kind == "analysis":
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
            extension = _EXTENSIONS.get(result.image.mime_type, "png")
            path = out_dir / f"{result.seed}.{extension}"
            path.write_bytes(result.image.data)
            outcome.written.append(path)
            outcome.seeds.append(result.seed)
            board.done(
                result.index,
                f"seed {result.seed} {result.image.width}x{result.image.height} → {path}",
            )
        elif kind == "preview" and previews_dir is not None:
            preview = event.preview
            path = previews_dir / f"{preview.variant}-{preview.step:03d}.jpg"
            path.write_bytes(preview.image.data)
            outcome.previews.append(path)
        elif kind == "warning":
            outcome.warnings.append(event.warning)
            print(f"warning {event.warning.code}: {event.warning.message}", file=stream, flush=True)
        elif kind == "completed":
            outcome.completed = True
            outcome.timings = {t.stage: t.millis for t in event.completed.timings}
            _print_completed(stream, event.completed, outcome.written)
    return outcome


def run_plan(
    channel: grpc.Channel,
    request: gateway_pb2.PlanRequest,
    *,
    out_file: Path,
    stream: TextIO,
    timeout: float | None = None,
    metadata: Sequence[tuple[str, str]] = (),
) -> gateway_pb2.PlanResponse:
    """Calls ``Plan``, shows the analysis, the plan and the warnings, and writes the plan
    as JSON (the form ``generate --plan`` reads back).

    Args:
        channel: A channel to the gateway.
        request: The request.
        out_file: Where the plan's JSON goes.
        stream: Where to print.
        timeout: Deadline of the call in seconds; None leaves it to the server.
        metadata: Call metadata, e.g. the caller's token.

    Returns:
        The response.

    Raises:
        grpc.RpcError: The call failed.
    """
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[no-untyped-call]
    response: gateway_pb2.PlanResponse = stub.Plan(
        request, timeout=timeout, metadata=tuple(metadata) or None
    )
    if response.HasField("analysis"):
        _print_analysis(stream, gateway_pb2.AnalysisReady(analysis=response.analysis))
    _print_plan(stream, gateway_pb2.PlanReady(plan=response.plan, reused=response.reused))
    for notice in response.warnings:
        print(f"warning {notice.code}: {notice.message}", file=stream)
    text = json_format.MessageToJson(response.plan, preserving_proto_field_name=True)
    out_file.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {out_file}; edit it, then: imagegen generate --plan {out_file} …", file=stream)
    stream.flush()
    return response


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


_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
"""Result MIME type → file extension."""


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
