"""Plain rules of jobs: the fold of events, filters, webhook URLs, settings."""

from __future__ import annotations

import grpc
import pytest
from pydantic import ValidationError

from gateway.operations.lifecycle import parse_state_filter
from gateway.operations.progress import JobProgress, fold_response
from gateway.operations.runner import error_status
from gateway.operations.store import FINISHED, decode_page_token, encode_page_token
from gateway.operations.webhooks import allowed_url
from gateway.settings import GatewaySettings
from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from services.common.errors import FieldViolation, InvalidArgumentError

Event = gateway_pb2.GenerateResponse


def _result(index: int, seed: int, data: bytes = b"png") -> Event:
    return Event(
        result=common_pb2.VariantResult(index=index, seed=seed, image=common_pb2.Image(data=data))
    )


def test_progress_tracks_stage_queue_steps_and_warnings() -> None:
    progress = JobProgress(gateway_pb2.SubmitGenerateMetadata(stage="queued"))
    assert progress.start_attempt() == 1
    progress.record(Event(plan=gateway_pb2.PlanReady()))
    progress.record(Event(queued=common_pb2.RenderQueued(variant=1, position=3)))
    progress.record(Event(progress=common_pb2.RenderProgress(variant=0, step=4, total_steps=20)))
    index = progress.record(Event(warning=common_pb2.Warning(code="W", message="m")))
    metadata = progress.metadata()
    assert index == metadata.events == 4
    assert metadata.stage == "render"
    assert metadata.state == gateway_pb2.JOB_STATE_RUNNING
    assert [(v.variant, v.queue_position, v.step) for v in metadata.variants] == [
        (0, 0, 4),
        (1, 3, 0),
    ]
    assert [w.code for w in metadata.warnings] == ["W"]
    progress.record(_result(0, 7))
    progress.finish(gateway_pb2.JOB_STATE_SUCCEEDED)
    assert progress.metadata().variants[0].done and progress.metadata().stage == "done"


def test_progress_continues_the_numbering_of_a_restarted_job() -> None:
    progress = JobProgress(gateway_pb2.SubmitGenerateMetadata(events=5, attempts=1))
    assert progress.start_attempt() == 2
    assert progress.record(Event(plan=gateway_pb2.PlanReady())) == 6


def test_response_keeps_one_result_per_index_the_rerun_winning() -> None:
    events = [
        Event(plan=gateway_pb2.PlanReady(plan=common_pb2.PromptPlan(positive_prompt="p"))),
        _result(1, 8, b"first run"),
        Event(warning=common_pb2.Warning(code="JOB_RESTARTED")),
        _result(0, 7),
        _result(1, 8, b"second run"),
        Event(completed=gateway_pb2.Completed(seed=7, variants=2)),
    ]
    response = fold_response(events)
    assert [(r.index, r.image.data) for r in response.results] == [
        (0, b"png"),
        (1, b"second run"),
    ]
    assert response.plan.positive_prompt == "p"
    assert response.completed.seed == 7
    assert [w.code for w in response.warnings] == ["JOB_RESTARTED"]


@pytest.mark.parametrize(
    ("text", "states"),
    [
        ("", frozenset()),
        ("state = RUNNING", {gateway_pb2.JOB_STATE_RUNNING}),
        (
            'state=JOB_STATE_FAILED OR state = "cancelled"',
            {gateway_pb2.JOB_STATE_FAILED, gateway_pb2.JOB_STATE_CANCELLED},
        ),
        ("done = true", FINISHED),
        ("done = false", {gateway_pb2.JOB_STATE_QUEUED, gateway_pb2.JOB_STATE_RUNNING}),
    ],
)
def test_state_filters(text: str, states: frozenset[int]) -> None:
    assert parse_state_filter(text) == states


@pytest.mark.parametrize("text", ["state = DONE", "name = x", "state RUNNING", "done = maybe"])
def test_unsupported_filters_are_invalid_arguments(text: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        parse_state_filter(text)
    assert refused.value.violations[0].field == "filter"


def test_page_tokens_round_trip_and_junk_is_refused() -> None:
    assert decode_page_token(encode_page_token(40)) == 40
    assert decode_page_token("") == 0
    for junk in ("xyz", encode_page_token(3)[:-2] + "!!"):
        with pytest.raises(ValueError, match="page token"):
            decode_page_token(junk)


ALLOWED = ("https://hooks.example.com/imagegen/", "http://127.0.0.1:8080/")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.example.com/imagegen/done", True),
        ("http://127.0.0.1:8080/anything", True),
        ("https://hooks.example.com/other", False),
        ("http://hooks.example.com/imagegen/done", False),
        ("https://hooks.example.com:444/imagegen/done", False),
        ("https://hooks.example.com.evil.net/imagegen/", False),
        ("https://user:pw@hooks.example.com/imagegen/x", False),
        ("http://127.0.0.1:8081/", False),
        ("http://169.254.169.254/latest/meta-data", False),
        ("file:///etc/passwd", False),
        ("not a url", False),
    ],
)
def test_webhook_urls_must_lie_under_the_allow_list(url: str, allowed: bool) -> None:
    assert allowed_url(url, ALLOWED) is allowed


def test_a_failed_jobs_status_keeps_code_message_and_details() -> None:
    status = error_status(InvalidArgumentError("bad", [FieldViolation("instruction", "empty")]))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == "bad" and status.details
    assert error_status(RuntimeError("boom")).code == grpc.StatusCode.INTERNAL.value[0]


def test_settings_refuse_a_secret_without_whsec_and_relative_webhook_urls() -> None:
    with pytest.raises(ValidationError, match="GATEWAY_WEBHOOK_SECRET"):
        GatewaySettings(webhook_secret="plain")
    with pytest.raises(ValidationError, match="GATEWAY_WEBHOOK_ALLOWED_URLS"):
        GatewaySettings(webhook_allowed_urls="hooks.example.com/x")
    settings = GatewaySettings(webhook_allowed_urls="https://a.example/x/, http://b.example/")
    assert settings.webhook_allow_list() == ("https://a.example/x/", "http://b.example/")
