"""Failures the stand-in can be told to show, and which request gets one.

A :class:`Fault` is a pydantic model because it also arrives from the environment
(``FAKE_OLLAMA_FAULTS``); the :class:`FaultBook` holding the active ones is runtime state
tests mutate. A fault can be limited to one model and to the next N requests: "the next
two chat calls to llava fail, then it recovers".
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "RUNNER_STOPPED_MESSAGE",
    "ActiveFault",
    "Fault",
    "FaultBook",
    "FaultKind",
    "FaultPlan",
    "Route",
    "drop_fields",
    "malform_json",
    "violate_schema",
]

# What Ollama sends when its runner process dies (out of memory, driver reset, crash).
RUNNER_STOPPED_MESSAGE = (
    "model runner has unexpectedly stopped, this may be due to resource limitations "
    "or an internal error, check ollama server logs for details"
)

Route = Literal["chat", "show", "ps", "tags", "version"]
"""Endpoints a fault can hit (``/api/<route>``; ``/v1`` routes are chat and tags)."""


class FaultKind(StrEnum):
    """What goes wrong."""

    REFUSE = "refuse"
    """The server stops listening: clients get "connection refused"."""
    DELAY = "delay"
    """Sleep ``delay_s`` before the response and ``chunk_delay_s`` between stream lines."""
    ERROR = "error"
    """Answer ``status`` (500) with Ollama's ``{"error": message}`` body."""
    STREAM_ERROR = "stream_error"
    """Stream ``after_lines`` lines, then an NDJSON ``{"error": …}`` line (500 unstreamed)."""
    MALFORMED_JSON = "malformed_json"
    """The reply content is not JSON at all."""
    SCHEMA_VIOLATION = "schema_violation"
    """The reply content is valid JSON that breaks the schema (missing keys, wrong types)."""
    TRUNCATED_STREAM = "truncated_stream"
    """The connection closes after ``after_lines`` lines, with no ``done: true`` line."""
    MISSING_FIELDS = "missing_fields"
    """The reply JSON omits the keys named in ``fields`` (dotted paths reach nested keys)."""


class Fault(BaseModel):
    """One configured failure, e.g. ``FAKE_OLLAMA_FAULTS='[{"kind": "error", "times": 2}]'``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FaultKind = Field(description="What goes wrong.")
    model: str | None = Field(default=None, description="Only this model (aliases allowed).")
    routes: tuple[Route, ...] = Field(default=("chat",), description="Endpoints hit.")
    times: int | None = Field(default=None, ge=1, description="Only the next N requests.")
    include_load_requests: bool = Field(default=False, description="Hit preload/unload too.")
    delay_s: float = Field(default=0.0, ge=0.0, description="delay: before the reply.")
    chunk_delay_s: float = Field(default=0.0, ge=0.0, description="delay: between lines.")
    status: int = Field(default=500, ge=400, le=599, description="error: HTTP status.")
    message: str = Field(default=RUNNER_STOPPED_MESSAGE, description="error text.")
    fields: tuple[str, ...] = Field(default=(), description="missing_fields: keys to drop.")
    after_lines: int = Field(default=1, ge=0, description="Lines sent before the failure.")
    duration_s: float | None = Field(
        default=None, gt=0.0, description="refuse: seconds closed; None: until reopened."
    )


@dataclass
class ActiveFault:
    """A fault in force, with how many more requests it will affect."""

    id: int
    fault: Fault
    remaining: int | None


@dataclass
class FaultPlan:
    """Everything that goes wrong for one request (several faults may combine)."""

    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    error: tuple[int, str] | None = None
    stream_error: tuple[int, str] | None = None
    truncate_after: int | None = None
    content: FaultKind | None = None
    missing_fields: tuple[str, ...] = ()


class FaultBook:
    """The faults in force, mutable at runtime.

    Args:
        resolve_model: Canonical form of a model name, so a fault for ``llava`` hits
            requests for ``llava:latest``.
    """

    def __init__(self, resolve_model: Callable[[str], str] = str.lower) -> None:
        self._resolve = resolve_model
        self._ids = itertools.count(1)
        self._active: list[ActiveFault] = []
        self._refuse_listeners: list[Callable[[Fault], None]] = []

    @property
    def active(self) -> list[ActiveFault]:
        """The faults in force, oldest first."""
        return list(self._active)

    def add(self, fault: Fault | None = None, /, **fields: Any) -> ActiveFault:
        """Put a fault in force: a :class:`Fault`, or its fields as keyword arguments
        (``add(kind="error", times=2, model="llava")``). Returns the active entry."""
        fault = fault if fault is not None else Fault.model_validate(fields)
        active = ActiveFault(id=next(self._ids), fault=fault, remaining=fault.times)
        if fault.kind is FaultKind.REFUSE:
            # A property of the listening socket, not of a request: the server reacts.
            for listener in self._refuse_listeners:
                listener(fault)
        else:
            self._active.append(active)
        return active

    def extend(self, faults: Iterable[Fault]) -> None:
        """Put several faults in force, in order."""
        for fault in faults:
            self.add(fault)

    def remove(self, fault_id: int) -> None:
        """Withdraw one fault (no error if it already ran out)."""
        self._active = [a for a in self._active if a.id != fault_id]

    def clear(self) -> None:
        """Withdraw every fault."""
        self._active.clear()

    def on_refuse(self, listener: Callable[[Fault], None]) -> None:
        """Register the callback that closes the listening socket for a refuse fault."""
        self._refuse_listeners.append(listener)

    def take(self, route: str, model: str | None, *, generating: bool) -> FaultPlan:
        """Consume the faults that hit one request and combine them.

        Args:
            route: ``chat``, ``show``, ``ps``, ``tags`` or ``version``.
            model: The request's model, if it names one.
            generating: False for preload/unload requests, which produce no text.
        """
        plan = FaultPlan()
        canonical = self._resolve(model) if model else None
        still_active: list[ActiveFault] = []
        for active in self._active:
            if self._hits(active.fault, route, canonical, generating=generating):
                self._apply(active.fault, plan)
                if active.remaining is not None:
                    active.remaining -= 1
                if active.remaining == 0:
                    continue
            still_active.append(active)
        self._active = still_active
        return plan

    def _hits(self, fault: Fault, route: str, model: str | None, *, generating: bool) -> bool:
        if route not in fault.routes:
            return False
        if fault.model is not None and (model is None or self._resolve(fault.model) != model):
            return False
        text_fault = fault.kind not in (FaultKind.DELAY, FaultKind.ERROR)
        if route != "chat":
            return not text_fault  # ps, tags, show… produce no text
        return generating or (fault.include_load_requests and not text_fault)

    @staticmethod
    def _apply(fault: Fault, plan: FaultPlan) -> None:
        match fault.kind:
            case FaultKind.DELAY:
                plan.delay_s += fault.delay_s
                plan.chunk_delay_s += fault.chunk_delay_s
            case FaultKind.ERROR:
                plan.error = plan.error or (fault.status, fault.message)
            case FaultKind.STREAM_ERROR:
                plan.stream_error = (fault.after_lines, fault.message)
            case FaultKind.TRUNCATED_STREAM:
                plan.truncate_after = fault.after_lines
            case FaultKind.MALFORMED_JSON | FaultKind.SCHEMA_VIOLATION:
                plan.content = fault.kind
            case FaultKind.MISSING_FIELDS:
                plan.missing_fields += fault.fields


def malform_json(content: str) -> str:
    """Chatter around half the object: what a model without a working grammar sends."""
    return f"Sure! Here is the JSON you asked for:\n{content[: max(1, len(content) // 2)]}"


def _as_object(content: str) -> dict[str, Any] | None:
    try:
        value = json.loads(content)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def violate_schema(content: str, schema: Mapping[str, Any] | None) -> str:
    """Valid JSON that breaks ``schema``: the first required key dropped, the next one
    retyped; an array where the schema (or ``format: "json"``) wants an object."""
    value = _as_object(content)
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    if value is None or not isinstance(properties, Mapping) or not properties:
        return json.dumps(["not", "an", "object"])
    required = [name for name in (schema or {}).get("required", []) if name in value]
    if required:
        del value[required[0]]
    retyped = next((name for name in properties if name in value), None)
    if retyped is not None:
        value[retyped] = {"unexpected": True} if isinstance(value[retyped], str) else "n/a"
    if not required and retyped is None:
        return json.dumps(["not", "an", "object"])
    return json.dumps(value, ensure_ascii=False)


def drop_fields(content: str, fields: Iterable[str]) -> str:
    """The reply without the keys in ``fields`` (``a.b`` reaches into ``a``); content that
    is not a JSON object is returned unchanged."""
    value = _as_object(content)
    if value is None:
        return content
    for path in fields:
        *parents, leaf = path.split(".")
        node: Any = value
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return json.dumps(value, ensure_ascii=False)
