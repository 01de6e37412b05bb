"""Which gateway event each render event becomes.

The render service streams ``RenderResponse`` events; the gateway passes each one on to
its caller as a ``GenerateResponse`` event. The two ``oneof`` s are separate contracts, so
the correspondence is written down here rather than assumed from matching names: a new
render event reaches callers only once it has a row below (a test checks that every
render event has one).

| render event (``RenderResponse.event``) | gateway event (``GenerateResponse.event``) |
|-----------------------------------------|--------------------------------------------|
| ``queued``                              | ``queued``                                 |
| ``progress``                            | ``progress``                               |
| ``preview``                             | ``preview``                                |
| ``result``                              | ``result``                                 |
| ``warning``                             | ``warning``                                |
"""

from __future__ import annotations

from collections.abc import Mapping

from imagegen.gateway.v1 import gateway_pb2
from imagegen.render.v1 import render_pb2

__all__ = ["RENDER_TO_GATEWAY", "WORK_EVENTS", "gateway_event"]

RENDER_TO_GATEWAY: Mapping[str, str] = {
    "queued": "queued",
    "progress": "progress",
    "preview": "preview",
    "result": "result",
    "warning": "warning",
}
"""Render event name → the gateway event it is sent as."""

WORK_EVENTS = frozenset({"progress", "preview", "result"})
"""Render events that show the GPU is working on the request (the queue wait is over)."""


def gateway_event(response: render_pb2.RenderResponse) -> gateway_pb2.GenerateResponse | None:
    """The caller's event for one render event.

    Args:
        response: One event of the render stream.

    Returns:
        The same payload as a gateway event; None for an empty event or one this gateway
        has no mapping for (a newer render service), which is dropped.
    """
    kind = response.WhichOneof("event")
    target = RENDER_TO_GATEWAY.get(kind) if kind is not None else None
    if target is None:
        return None
    event = gateway_pb2.GenerateResponse()
    getattr(event, target).CopyFrom(getattr(response, kind))
    return event
