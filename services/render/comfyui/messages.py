"""What ComfyUI sends: queue listings, websocket messages and binary preview frames.

Binary frames (``comfy/server.py`` ``BinaryEventTypes``): 4-byte big-endian event type,
then the payload. Type 1 is a preview of whatever runs (``[format][image]``); type 4 —
sent once the client declared ``supports_preview_metadata`` — carries a JSON header
naming the ``prompt_id``; type 3 is text for every socket (ignored).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "LABELS_KEY",
    "ComfyEvent",
    "DecodedPreview",
    "PreviewFrame",
    "QueueSnapshot",
    "SocketState",
    "WsMessage",
    "decode_preview_frame",
    "parse_queue",
]

LABELS_KEY = "imagegen"
"""The ``extra_data`` key under which this service stores its labels of a prompt."""

_PREVIEW_IMAGE = 1
_PREVIEW_IMAGE_WITH_METADATA = 4
_PREVIEW_FORMATS = {1: "image/jpeg", 2: "image/png"}


@dataclass(frozen=True)
class QueueSnapshot:
    """The backend's queue at one moment.

    Attributes:
        running: Prompt ids being executed (ComfyUI runs one at a time).
        pending: Prompt ids waiting, in the order they will run.
        labels: What this service stored with its prompts (``extra_data.imagegen``), by
            prompt id; other clients' prompts have none.
    """

    running: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    labels: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def position(self, prompt_id: str) -> int | None:
        """How many prompts run before ``prompt_id``; ``None`` when it is not pending."""
        if prompt_id not in self.pending:
            return None
        return len(self.running) + self.pending.index(prompt_id)

    def contains(self, prompt_id: str) -> bool:
        """True when ``prompt_id`` is running or pending."""
        return prompt_id in self.running or prompt_id in self.pending


def parse_queue(body: Any) -> QueueSnapshot:
    """The ``GET /queue`` body: ``queue_running`` / ``queue_pending`` items are
    ``[number, prompt_id, graph, extra_data, outputs]``; pending ones run by number.

    Raises:
        ValueError: Not that shape.
    """
    try:
        running_items = list(body.get("queue_running", []))
        pending_items = sorted(body.get("queue_pending", []), key=lambda item: item[0])
        running = tuple(str(item[1]) for item in running_items)
        pending = tuple(str(item[1]) for item in pending_items)
    except (AttributeError, IndexError, TypeError) as e:
        raise ValueError("/queue: unexpected shape") from e
    labels = {}
    for item in running_items + pending_items:
        extra = item[3] if len(item) > 3 and isinstance(item[3], dict) else {}
        if isinstance(extra.get(LABELS_KEY), dict):
            labels[str(item[1])] = extra[LABELS_KEY]
    return QueueSnapshot(running, pending, labels)


@dataclass(frozen=True)
class WsMessage:
    """A JSON websocket message about a prompt."""

    type: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class PreviewFrame:
    """An image a prompt's node sent over the socket: a sampler preview, or the result of
    a ``SaveImageWebsocket`` node (see :class:`DecodedPreview` for the attributes)."""

    image: bytes = field(repr=False)
    mime_type: str
    node_id: str | None = None
    ahead: bool = False


@dataclass(frozen=True)
class SocketState:
    """The backend's websocket went down (``connected`` False) or came back (True)."""

    connected: bool


ComfyEvent = WsMessage | PreviewFrame | SocketState | QueueSnapshot
"""What a prompt's subscription receives; a :class:`QueueSnapshot` arrives after a
``status`` message while the prompt waits."""


@dataclass(frozen=True)
class DecodedPreview:
    """A preview from a binary websocket frame.

    Attributes:
        prompt_id: The prompt it shows (type-4 frames); ``None`` for type-1 frames, which
            show whatever is executing.
        image: The encoded image.
        mime_type: Its type.
        node_id: The node that sent it (type-4 frames): a sampler, or a
            ``SaveImageWebsocket`` delivering a result.
        ahead: It precedes the ``progress`` message of its step (type 4 is sent from
            inside the progress hook, before ``progress``; type 1 after it).
    """

    prompt_id: str | None
    image: bytes
    mime_type: str
    node_id: str | None = None
    ahead: bool = False


def decode_preview_frame(frame: bytes) -> DecodedPreview | None:
    """Decodes a binary websocket frame of ComfyUI.

    Layout: 4-byte big-endian event type, then the payload. Type 1: 4-byte format
    (1 JPEG, 2 PNG) + image. Type 4: 4-byte JSON length + JSON metadata (``prompt_id``,
    ``image_type`` …) + image. Type 3 (text) and others are not previews.

    Args:
        frame: The frame's bytes.

    Returns:
        The preview, or ``None`` for frames that are not previews.

    Raises:
        ValueError: A preview frame too short for its header, or with bad metadata.
    """
    if len(frame) < 8:
        raise ValueError(f"binary frame of {len(frame)} bytes is too short")
    event, word = struct.unpack(">II", frame[:8])
    if event == _PREVIEW_IMAGE:
        return DecodedPreview(None, frame[8:], _PREVIEW_FORMATS.get(word, "image/jpeg"))
    if event == _PREVIEW_IMAGE_WITH_METADATA:
        meta = json.loads(frame[8 : 8 + word])
        if not isinstance(meta, dict):
            raise ValueError("preview metadata is not an object")
        prompt_id, node_id = meta.get("prompt_id"), meta.get("node_id")
        return DecodedPreview(
            str(prompt_id) if prompt_id is not None else None,
            frame[8 + word :],
            str(meta.get("image_type", "image/jpeg")),
            node_id=str(node_id) if node_id is not None else None,
            ahead=True,
        )
    return None
