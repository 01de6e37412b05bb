"""Downstream targets and the relay of downstream failures."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway.downstream import grpc_target, relay_error
from services.common.errors import (
    BackendUnavailableError,
    DeadlineExceededError,
    DownstreamError,
    FieldViolation,
    InvalidArgumentError,
    to_rpc_status,
)


def _rpc_error(
    code: grpc.StatusCode, message: str, status: grpc.Status | None = None
) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata(*(status.trailing_metadata if status else ()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details=message)


def test_host_and_port_resolve_through_dns_for_round_robin() -> None:
    assert grpc_target("vision:50052") == "dns:///vision:50052"


def test_ip_list_becomes_a_static_address_list() -> None:
    assert grpc_target("10.0.0.5:1, 10.0.0.6:1") == "ipv4:10.0.0.5:1,10.0.0.6:1"


def test_explicit_grpc_target_is_kept() -> None:
    assert grpc_target("dns:///render:50054") == "dns:///render:50054"


def test_list_of_host_names_is_refused() -> None:
    with pytest.raises(ValueError, match="IP addresses"):
        grpc_target("a:1,b:2")


def test_address_without_port_is_refused() -> None:
    with pytest.raises(ValueError, match="host:port"):
        grpc_target("vision")


def test_downstream_bad_request_passes_through_with_its_details() -> None:
    original = InvalidArgumentError("bad", [FieldViolation("instruction", "is empty")])
    status = to_rpc_status(original)
    error = _rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "bad", status)
    relayed = relay_error("planner", error)
    assert isinstance(relayed, DownstreamError)
    assert relayed.code == grpc.StatusCode.INVALID_ARGUMENT
    assert relayed.message == "planner service: bad"
    (detail,) = relayed.details()
    assert isinstance(detail, error_details_pb2.BadRequest)
    assert detail.field_violations[0].field == "instruction"


def test_unreachable_service_is_named_in_the_error() -> None:
    relayed = relay_error("vision", _rpc_error(grpc.StatusCode.UNAVAILABLE, "connect failed"))
    assert isinstance(relayed, BackendUnavailableError)
    assert relayed.metadata["backend"] == "vision"
    assert "vision service" in relayed.message


def test_downstream_timeout_names_the_service_and_budget() -> None:
    error = _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    relayed = relay_error("render", error, timeout_s=2.0)
    assert isinstance(relayed, DeadlineExceededError)
    assert "render service" in relayed.message and "2.0 s" in relayed.message


def test_status_without_known_details_keeps_its_code() -> None:
    status = rpc_status.to_status(
        status_pb2.Status(code=grpc.StatusCode.FAILED_PRECONDITION.value[0], message="no lora")
    )
    error = _rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "no lora", status)
    assert relay_error("render", error).code == grpc.StatusCode.FAILED_PRECONDITION
