"""Failures the stand-in can be told to show, and the bookkeeping of which request gets one.

A :class:`Fault` is a pydantic model because it arrives from the edges (the
``FAKE_OLLAMA_FAULTS`` environment variable and the ``/_fake/faults`` debug route); the
:class:`FaultBook` holding the active ones is plain runtime state that tests mutate.
A fault can be limited to one model and to the next N requests, so a test can say
"the next two chat calls to llava fail, then it recovers".
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
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

# The text Ollama sends when its runner process dies (out of memory, driver reset, crash).
RUNNER_STOPPED_MESSAGE = (
    "model runner has unexpectedly stopped, this may be due to resource limitations "
    "or an internal error, check ollama server logs for details"
)

Route = Literal["chat", "generate", "show", "ps", "tags", "version", "pull"]
"""Endpoints a fault can hit (``/api/<route>``)."""

# Routes whose requests generate text and so can carry content faults.
GENERATING_ROUTES = frozenset({"chat", "generate"})


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
    """One configured failure.

    Example (environment): ``FAKE_OLLAMA_FAULTS='[{"kind": "error", "times": 2}]'``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FaultKind = Field(description="What goes wrong.")
    model: str | None = Field(
        default=None,
        description="Only requests for this model (aliases allowed, e.g. 'llava'); None: any.",
    )
    routes: tuple[Route, ...] = Field(
        default=("chat", "generate"),
        description="Endpoints affected: chat, generate, show, ps, tags, version, pull.",
    )
    times: int | None = Field(
        default=None,
        ge=1,
        description="Affect only the next N matching requests; None: until cleared.",
    )
    include_load_requests: bool = Field(
        default=False,
        description="Also hit preload/unload requests (empty messages or prompt).",
    )
    delay_s: float = Field(default=0.0, ge=0.0, description="delay: seconds before the reply.")
    chunk_delay_s: float = Field(
        default=0.0, ge=0.0, description="delay: seconds between streamed lines."
    )
    status: int = Field(default=500, ge=400, le=599, description="error: HTTP status.")
    message: str = Field(
        default=RUNNER_STOPPED_MESSAGE,
        description="error / stream_error: text of the error body.",
    )
    fields: tuple[str, ...] = Field(
        default=(), description="missing_fields: keys to drop from the reply JSON."
    )
    after_lines: int = Field(
        default=1,
        ge=0,
        description="truncated_stream / stream_error: NDJSON lines sent before the failure.",
    )
    duration_s: float | None = Field(
        default=None,
        gt=0.0,
        description="refuse: seconds to stay closed; None: until connections are accepted again.",
    )


@dataclass
class ActiveFault:
    """A fault in force, with how many more requests it will affect."""

    id: int
    fault: Fault
    remaining: int | None

    def as_json(self) -> dict[str, Any]:
        """The fault as the debug route shows it."""
        return {"id": self.id, "remaining": self.remaining, **self.fault.model_dump(mode="json")}


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
    applied: list[FaultKind] = field(default_factory=list)


class FaultBook:
    """The faults in force, mutable at runtime.

    Args:
        resolve_model: Maps a model name as written (``llava``) to its canonical form
            (``llava:latest``) so a fault for ``llava`` hits requests for ``llava:latest``.
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
        """Put a fault in force.

        Args:
            fault: A ready :class:`Fault`; or pass its fields as keyword arguments,
                e.g. ``add(kind="error", times=2, model="llava")``.
            **fields: Fields of a new :class:`Fault` when ``fault`` is not given.

        Returns:
            The active entry (its ``id`` can be passed to :meth:`remove`).
        """
        fault = fault if fault is not None else Fault.model_validate(fields)
        active = ActiveFault(id=next(self._ids), fault=fault, remaining=fault.times)
        if fault.kind is FaultKind.REFUSE:
            # Refusing is a property of the listening socket, not of a request: the running
            # server reacts to it, and the entry is not kept for request matching.
            for listener in self._refuse_listeners:
                listener(fault)
            return active
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
        """Withdraw every fault: the server behaves normally again."""
        self._active.clear()

    def on_refuse(self, listener: Callable[[Fault], None]) -> None:
        """Register the callback that closes the listening socket for a refuse fault."""
        self._refuse_listeners.append(listener)

    def take(self, route: str, model: str | None, *, generating: bool) -> FaultPlan:
        """Consume the faults that hit one request and combine them.

        Args:
            route: ``chat``, ``generate``, ``show``, ``ps``, ``tags``, ``version`` or ``pull``.
            model: The canonical model name of the request, if it names one.
            generating: False for preload/unload requests, which produce no text.

        Returns:
            What to do to this request; empty when nothing applies.
        """
        plan = FaultPlan()
        canonical = self._resolve(model) if model else None
        still_active: list[ActiveFault] = []
        for active in self._active:
            if self._hits(active.fault, route, canonical, generating=generating):
                self._apply(active.fault, plan, route)
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
        if route not in GENERATING_ROUTES:
            # ps, tags, show… produce no text: only delays and errors make sense there.
            return not text_fault
        return generating or (fault.include_load_requests and not text_fault)

    @staticmethod
    def _apply(fault: Fault, plan: FaultPlan, route: str) -> None:
        plan.applied.append(fault.kind)
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
            case FaultKind.REFUSE:  # pragma: no cover - never stored for matching
                pass


def malform_json(content: str) -> str:
    """Turn a JSON reply into chatter that no JSON parser accepts.

    Models without a grammar (or with a broken one) answer like this: prose around a
    half-written object.
    """
    half = content[: max(1, len(content) // 2)]
    return f"Sure! Here is the JSON you asked for:\n{half}"


def violate_schema(content: str, schema: Mapping[str, Any] | None) -> str:
    """Return valid JSON that breaks ``schema``: the first required key is dropped and the
    next property gets a value of the wrong type.

    Args:
        content: The correct reply (a JSON object).
        schema: The JSON schema of the request, or None for ``format: "json"``, where
            the only contract is "an object" and so an array breaks it.

    Returns:
        JSON text that parses but does not validate.
    """
    try:
        value = json.loads(content)
    except json.JSONDecodeError:
        value = None
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(value, dict) or not isinstance(properties, Mapping) or not properties:
        return json.dumps(["not", "an", "object"])
    broken = dict(value)
    required = [name for name in schema.get("required", []) if name in broken]  # type: ignore[union-attr]
    dropped = required[0] if required else None
    if dropped is not None:
        del broken[dropped]
    retyped = next((name for name in properties if name in broken), None)
    if retyped is not None:
        broken[retyped] = _wrong_type(broken[retyped])
    if dropped is None and retyped is None:
        return json.dumps(["not", "an", "object"])
    return json.dumps(broken, ensure_ascii=False)


def _wrong_type(value: Any) -> Any:
    if isinstance(value, str):
        return 12345
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int | float):
        return "many"
    if isinstance(value, list):
        return "several"
    if isinstance(value, dict):
        return "n/a"
    return {"unexpected": True}


def drop_fields(content: str, fields: Iterable[str]) -> str:
    """Remove keys from a JSON reply; ``a.b`` removes ``b`` inside the object ``a``.

    Content that is not a JSON object is returned unchanged.
    """
    try:
        value = json.loads(content)
    except json.JSONDecodeError:
        return content
    if not isinstance(value, dict):
        return content
    value = copy.deepcopy(value)
    for path in fields:
        *parents, leaf = path.split(".")
        node: Any = value
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return json.dumps(value, ensure_ascii=False)
