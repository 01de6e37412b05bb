"""The job commands of the ``imagegen`` client: submit, watch, get, cancel, list.

::

    imagegen submit --instruction "a red bicycle" [generate's options] [--request-id ID] \\
        [--webhook URL [--webhook-event job.completed]]      prints the operation name
    imagegen watch operations/<id> [--after N] [--out DIR]    events live (or replayed)
    imagegen get operations/<id> [--out DIR]                  state; the images once done
    imagegen cancel operations/<id>
    imagegen list [--filter "state = RUNNING"] [--page-size N] [--page-token T]

``watch`` numbers the events it prints, so a watch cut off after event ``k`` continues
with ``--after k``. Only grpc, the generated code and the standard library are used, and
grpc only once a command runs (``imagegen --help`` builds the parser without it).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from google.longrunning import operations_proto_pb2 as operations_pb2
from google.rpc import code_pb2

from imagegen.common.v1 import common_pb2

if TYPE_CHECKING:
    import grpc

    from imagegen.gateway.v1 import gateway_pb2

__all__ = ["JOB_COMMANDS", "add_job_commands", "run_job_command"]

JOB_COMMANDS = frozenset({"submit", "watch", "get", "cancel", "list"})
"""The subcommands this module adds."""

_EXIT_OK, _EXIT_FAILED = 0, 1
Metadata = Sequence[tuple[str, str]]


def add_job_commands(
    commands: Any, generate: argparse.ArgumentParser, add_target: Callable[..., None]
) -> None:
    """Adds the job subcommands to the client's parser.

    Args:
        commands: The parser's subparsers.
        generate: The ``generate`` parser: ``submit`` takes the same options.
        add_target: Adds ``--target``, ``--token`` and ``--tls-ca`` to a parser.
    """
    submit = commands.add_parser(
        "submit",
        parents=[generate],
        conflict_handler="resolve",
        help="start a generation as a job and print its operation name",
    )
    submit.add_argument("--request-id", default="", help="idempotency key (e.g. a UUID)")
    submit.add_argument("--webhook", default="", help="URL told when the job ends")
    submit.add_argument(
        "--webhook-event",
        action="append",
        default=[],
        choices=["job.completed", "job.failed"],
        help="event types to send (default both), repeatable",
    )

    watch = commands.add_parser("watch", help="follow a job's events")
    watch.add_argument("name", help="operations/<id>")
    watch.add_argument("--after", type=int, default=0, help="events already seen (default 0)")
    watch.add_argument("--out", type=Path, default=Path("out"), help="output folder")
    add_target(watch)

    get = commands.add_parser("get", help="show a job; write its images once done")
    get.add_argument("name", help="operations/<id>")
    get.add_argument("--out", type=Path, help="write the finished job's images here")
    add_target(get)

    cancel = commands.add_parser("cancel", help="stop a job")
    cancel.add_argument("name", help="operations/<id>")
    add_target(cancel)

    listing = commands.add_parser("list", help="list your jobs, newest first")
    listing.add_argument("--filter", default="", help='e.g. "state = RUNNING" or "done = true"')
    listing.add_argument("--page-size", type=int, default=0, help="jobs per page")
    listing.add_argument("--page-token", default="", help="next_page_token of the last page")
    add_target(listing)


def run_job_command(
    args: argparse.Namespace,
    channel: grpc.Channel,
    *,
    stream: TextIO,
    metadata: Metadata,
    generate_request: Callable[[argparse.Namespace], gateway_pb2.GenerateRequest],
) -> int:
    """Runs one job subcommand.

    Args:
        args: The parsed arguments (``args.command`` one of :data:`JOB_COMMANDS`).
        channel: A channel to the gateway.
        stream: Where to print.
        metadata: Call metadata (the caller's token).
        generate_request: Builds the ``GenerateRequest`` from ``submit``'s options.

    Returns:
        0, or 1 when the job failed or was cancelled (``get``, ``watch``).

    Raises:
        grpc.RpcError: A call failed.
    """
    from google.longrunning import operations_pb2_grpc

    from imagegen.gateway.v1 import (
        gateway_pb2,  # loads grpc: only when a command runs
        gateway_pb2_grpc,
    )

    gateway = gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[no-untyped-call]
    operations = operations_pb2_grpc.OperationsStub(channel)
    call_metadata = tuple(metadata) or None
    if args.command == "submit":
        request = gateway_pb2.SubmitGenerateRequest(
            generate=generate_request(args), request_id=args.request_id
        )
        if args.webhook:
            request.webhook.url = args.webhook
            request.webhook.events.extend(args.webhook_event)
        operation = gateway.SubmitGenerate(request, timeout=30, metadata=call_metadata)
        print(operation.name, file=stream)
        _print_operation(stream, operation)
        return _EXIT_OK
    if args.command == "watch":
        return _watch(gateway, args, stream, call_metadata)
    if args.command == "get":
        operation = operations.GetOperation(
            operations_pb2.GetOperationRequest(name=args.name), timeout=30, metadata=call_metadata
        )
        _print_operation(stream, operation)
        if operation.done and operation.HasField("response") and args.out is not None:
            response = gateway_pb2.SubmitGenerateResponse()
            operation.response.Unpack(response)
            for result in response.results:
                print(f"wrote {_write(args.out, result)}", file=stream)
        return _EXIT_FAILED if operation.HasField("error") else _EXIT_OK
    if args.command == "cancel":
        operations.CancelOperation(
            operations_pb2.CancelOperationRequest(name=args.name),
            timeout=30,
            metadata=call_metadata,
        )
        print(f"cancel requested: {args.name}", file=stream)
        return _EXIT_OK
    page = operations.ListOperations(
        operations_pb2.ListOperationsRequest(
            name="operations",
            filter=args.filter,
            page_size=args.page_size,
            page_token=args.page_token,
        ),
        timeout=30,
        metadata=call_metadata,
    )
    for operation in page.operations:
        metadata_ = _metadata(operation)
        created = datetime.fromtimestamp(metadata_.create_time.seconds, UTC)
        print(
            f"{operation.name}  {_state(metadata_.state):<9}  {created:%Y-%m-%d %H:%M:%S}Z",
            file=stream,
        )
    if page.next_page_token:
        print(f"next page: --page-token {page.next_page_token}", file=stream)
    return _EXIT_OK


def _watch(
    gateway: Any, args: argparse.Namespace, stream: TextIO, metadata: Metadata | None
) -> int:
    from imagegen.gateway.v1 import gateway_pb2  # loads grpc: only when a command runs

    call = gateway.WatchOperation(
        gateway_pb2.WatchOperationRequest(name=args.name, after_event=args.after),
        metadata=metadata,
    )
    index, completed = args.after, False
    for event in call:
        index += 1
        kind = event.WhichOneof("event")
        if kind == "result":
            detail = f"variant {event.result.index} seed {event.result.seed} → "
            detail += str(_write(args.out, event.result))
        elif kind == "progress":
            progress = event.progress
            detail = f"variant {progress.variant} step {progress.step}/{progress.total_steps}"
        elif kind == "queued":
            detail = f"variant {event.queued.variant} position {event.queued.position}"
        elif kind == "warning":
            detail = f"{event.warning.code}: {event.warning.message}"
        elif kind == "plan":
            detail = event.plan.plan.positive_prompt
        else:
            detail = ""
        completed = completed or kind == "completed"
        print(f"{index:>4} {kind} {detail}".rstrip(), file=stream, flush=True)
    if not completed:
        print(f"the job ended without completing; see: imagegen get {args.name}", file=stream)
    return _EXIT_OK if completed else _EXIT_FAILED


def _write(folder: Path, result: common_pb2.VariantResult) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result.seed}.png"
    path.write_bytes(result.image.data)
    return path


def _metadata(operation: operations_pb2.Operation) -> gateway_pb2.SubmitGenerateMetadata:
    from imagegen.gateway.v1 import gateway_pb2  # loads grpc: only when a command runs

    metadata = gateway_pb2.SubmitGenerateMetadata()
    operation.metadata.Unpack(metadata)
    return metadata


def _state(state: int) -> str:
    from imagegen.gateway.v1 import gateway_pb2  # loads grpc: only when a command runs

    return str(gateway_pb2.JobState.Name(state)).removeprefix("JOB_STATE_")


def _print_operation(stream: TextIO, operation: operations_pb2.Operation) -> None:
    metadata = _metadata(operation)
    print(
        f"state {_state(metadata.state)}  stage {metadata.stage}  seed {metadata.seed}  "
        f"events {metadata.events}",
        file=stream,
    )
    for variant in metadata.variants:
        status = "done" if variant.done else f"step {variant.step}/{variant.total_steps}"
        print(f"  variant {variant.variant}: {status}", file=stream)
    for warning in metadata.warnings:
        print(f"  warning {warning.code}: {warning.message}", file=stream)
    if operation.HasField("error"):
        error = operation.error
        code = (
            code_pb2.Code.Name(error.code) if error.code in code_pb2.Code.values() else error.code
        )
        print(f"error {code}: {error.message}", file=stream)
