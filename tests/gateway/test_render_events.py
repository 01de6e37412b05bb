"""The map from render events to gateway events covers every render event, payload intact."""

from __future__ import annotations

import pytest

from gateway.render_events import RENDER_TO_GATEWAY, WORK_EVENTS, gateway_event
from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from imagegen.render.v1 import render_pb2

_RENDER_EVENTS = render_pb2.RenderResponse.DESCRIPTOR.oneofs_by_name["event"].fields
_GATEWAY_EVENTS = {
    field.name: field
    for field in gateway_pb2.GenerateResponse.DESCRIPTOR.oneofs_by_name["event"].fields
}


def test_every_render_event_has_a_gateway_event_of_the_same_message_type() -> None:
    assert set(RENDER_TO_GATEWAY) == {field.name for field in _RENDER_EVENTS}
    for field in _RENDER_EVENTS:
        target = _GATEWAY_EVENTS[RENDER_TO_GATEWAY[field.name]].message_type
        assert target is not None and field.message_type is not None
        assert target.full_name == field.message_type.full_name, field.name


def test_work_events_are_render_events() -> None:
    assert set(RENDER_TO_GATEWAY) >= WORK_EVENTS


@pytest.mark.parametrize(
    "response",
    [
        render_pb2.RenderResponse(queued=common_pb2.RenderQueued(variant=1, position=3)),
        render_pb2.RenderResponse(
            progress=common_pb2.RenderProgress(variant=0, step=4, total_steps=25)
        ),
        render_pb2.RenderResponse(preview=common_pb2.Preview(variant=0, step=2)),
        render_pb2.RenderResponse(result=common_pb2.VariantResult(index=1, seed=42)),
        render_pb2.RenderResponse(warning=common_pb2.Warning(code="X", message="y")),
    ],
)
def test_each_event_is_passed_on_with_its_payload(response: render_pb2.RenderResponse) -> None:
    kind = response.WhichOneof("event")
    assert kind is not None
    event = gateway_event(response)
    assert event is not None
    target = RENDER_TO_GATEWAY[kind]
    assert event.WhichOneof("event") == target
    assert getattr(event, target) == getattr(response, kind)


def test_an_empty_render_event_is_dropped() -> None:
    assert gateway_event(render_pb2.RenderResponse()) is None
