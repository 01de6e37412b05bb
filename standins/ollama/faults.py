"""Failures the stand-in can be told to show (the README's table): a :class:`Fault` (pydantic,
as it also arrives from ``FAKE_OLLAMA_FAULTS``), and the :class:`FaultBook` of those in force."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from standins.ollama.models import canonical_name

__all__ = ["RUNNER_STOPPED_MESSAGE", "ActiveFault", "Fault", "FaultBook", "FaultKind", "FaultPlan"]

# What Ollama sends when its runner process dies (out of memory, driver reset, crash).
RUNNER_STOPPED_MESSAGE = (
    "model runner has unexpectedly stopped, this may be due to resource limitations "
    "or an internal error, check ollama server logs for details"
)

Route = Literal["chat", "show", "ps", "tags", "version"]
"""Endpoints a fault can hit (``/api/<route>``; ``/v1`` routes are chat and tags)."""


class FaultKind(StrEnum):
    """What goes wrong (each kind's effect: the README's fault table)."""

    REFUSE = "refuse"
    DELAY = "delay"
    ERROR = "error"
    STREAM_ERROR = "stream_error"
    MALFORMED_JSON = "malformed_json"
    SCHEMA_VIOLATION = "schema_violation"
    TRUNCATED_STREAM = "truncated_stream"
    MISSING_FIELDS = "missing_fields"


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

    def spoil(self, content: str, schema: Mapping[str, Any] | str | None) -> str:
        """The reply ``content`` as the content faults leave it (``schema``: the format)."""
        if self.missing_fields:
            content = _drop_fields(content, self.missing_fields)
        if self.content is FaultKind.MALFORMED_JSON:  # chatter around half the object
            return f"Sure! Here is the JSON you asked for:\n{content[: max(1, len(content) // 2)]}"
        if self.content is FaultKind.SCHEMA_VIOLATION:
            return _violate_schema(content, schema)
        return content


class FaultBook:
    """The faults in force, mutable at runtime (a fault for ``llava`` hits ``llava:latest``)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._active: list[ActiveFault] = []
        self.on_refuse: Callable[[Fault], None] | None = None
        """Closes the listening socket for a ``refuse`` fault (the server sets it)."""

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
            if self.on_refuse is not None:
                self.on_refuse(fault)
        else:
            self._active.append(active)
        return active

    def extend(self, faults: Iterable[Fault]) -> None:
        """Put several faults in force, in order."""
        for fault in faults:
            self.add(fault)

    def clear(self) -> None:
        """Withdraw every fault."""
        self._active.clear()

    def take(self, route: str, model: str | None, *, generating: bool) -> FaultPlan:
        """Consume the faults that hit one request to ``route`` (for ``model``, if it names
        one) and combine them; ``generating`` is False for preload/unload requests."""
        plan = FaultPlan()
        canonical = canonical_name(model) if model else None
        for active in self.active:
            if self._hits(active.fault, route, canonical, generating=generating):
                self._apply(active.fault, plan)
                if active.remaining is not None:
                    active.remaining -= 1
                if active.remaining == 0:
                    self._active.remove(active)
        return plan

    def _hits(self, fault: Fault, route: str, model: str | None, *, generating: bool) -> bool:
        if route not in fault.routes:
            return False
        if fault.model is not None and (model is None or canonical_name(fault.model) != model):
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


def _as_object(content: str) -> dict[str, Any] | None:
    with contextlib.suppress(json.JSONDecodeError):
        value = json.loads(content)
        return value if isinstance(value, dict) else None
    return None


def _violate_schema(content: str, schema: Mapping[str, Any] | str | None) -> str:
    """Valid JSON that breaks ``schema``: the first required key dropped, the next one
    retyped; an array where the schema (or ``format: "json"``) wants an object."""
    value = _as_object(content)
    schema = schema if isinstance(schema, Mapping) else {}
    properties = schema.get("properties")
    if value is None or not isinstance(properties, Mapping) or not properties:
        return json.dumps(["not", "an", "object"])
    required = [name for name in schema.get("required", []) if name in value]
    if required:
        del value[required[0]]
    retyped = next((name for name in properties if name in value), None)
    if retyped is not None:
        value[retyped] = {"unexpected": True} if isinstance(value[retyped], str) else "n/a"
    if not required and retyped is None:
        return json.dumps(["not", "an", "object"])
    return json.dumps(value, ensure_ascii=False)


def _drop_fields(content: str, fields: Iterable[str]) -> str:
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
