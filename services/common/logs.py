"""Logging for every imagegen process: JSON lines on stdout, one request id per call.

``configure_logging`` is called once at boot. The server interceptor puts the caller's
``x-request-id`` (or a fresh one) into :data:`request_id_var` for the duration of each
call, so every line a handler logs carries it without passing it around::

    log = get_logger(__name__)
    log.info("planned", extra={"positive_prompt": prompt, "steps": 28})
    # {"ts": "...", "level": "INFO", "logger": "services.planner.service",
    #  "message": "planned", "request_id": "9f1c...", "service": "planner",
    #  "positive_prompt": "...", "steps": 28}

Callers send texts of any length (an instruction may be megabytes), and one log line
must not be. Every text a line carries (the message, each string extra, the traceback)
passes through :func:`logged_text`: up to :data:`MAX_LOGGED_TEXT_CHARS` it is kept
whole, so prompts are logged in full; beyond, its head is kept with its length and a
SHA-256 prefix, enough to match the line with a request seen elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = [
    "MAX_LOGGED_TEXT_CHARS",
    "configure_logging",
    "get_logger",
    "logged_text",
    "request_id_var",
]

MAX_LOGGED_TEXT_CHARS = 4096
"""Longest text logged whole: above any prompt the text encoders accept."""

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
"""The id of the call being handled in this task; ``"-"`` outside any call."""

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "service", "taskName"}
)
_HANDLER_NAME = "imagegen"


def configure_logging(
    level: str,
    fmt: str = "json",
    *,
    service: str = "-",
    stream: TextIO | None = None,
) -> None:
    """Sends all logging to one stream, as JSON lines or readable text.

    Calling it again replaces the handler it installed before (and nothing else).

    Args:
        level: Lowest level logged, e.g. ``"INFO"``.
        fmt: ``"json"`` for one JSON object per line, ``"text"`` for people.
        service: Name stamped on every line, e.g. ``"vision"``.
        stream: Where lines go; standard output by default.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_ContextFilter(service))
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Client libraries log every request at INFO (each readiness probe would be a line);
    # our adapters log the calls that matter themselves.
    for noisy in ("httpx", "httpcore", "websockets"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> logging.Logger:
    """The logger for a module; pass ``__name__``."""
    return logging.getLogger(name)


def logged_text(text: str, max_chars: int = MAX_LOGGED_TEXT_CHARS) -> str:
    """``text`` as a log line may carry it: whole, or its head with its length and hash.

    Args:
        text: Any text, e.g. a caller's instruction.
        max_chars: Longest text kept whole.

    Returns:
        ``text`` when it fits; otherwise its first ``max_chars`` characters followed by
        ``"… (16777216 chars, sha256 9f86d081884c7d65)"``.
    """
    if len(text) <= max_chars:
        return text
    digest = hashlib.sha256(text.encode(errors="surrogatepass")).hexdigest()[:16]
    return f"{text[:max_chars]}… ({len(text)} chars, sha256 {digest})"


class _ContextFilter(logging.Filter):
    """Stamps the current request id and the service name on each record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        record.service = self._service
        return True


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: logged_text(v) if isinstance(v, str) else v
        for k, v in vars(record).items()
        if k not in _RECORD_ATTRS
    }


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    # A traceback is longer than any one text, but an exception message may echo one.
    assert record.exc_info is not None
    return logged_text(formatter.formatException(record.exc_info), 4 * MAX_LOGGED_TEXT_CHARS)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": logged_text(record.getMessage()),
            "request_id": getattr(record, "request_id", "-"),
            "service": getattr(record, "service", "-"),
        }
        line.update(_extra_fields(record))
        if record.exc_info:
            line["exc"] = _exception_text(self, record)
        return json.dumps(line, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        extras = " ".join(f"{k}={v!r}" for k, v in _extra_fields(record).items())
        text = (
            f"{ts} {record.levelname:<7} {getattr(record, 'service', '-')} "
            f"[{getattr(record, 'request_id', '-')}] {record.name}: "
            f"{logged_text(record.getMessage())}"
        )
        if extras:
            text = f"{text} {extras}"
        if record.exc_info:
            text = f"{text}\n{_exception_text(self, record)}"
        return text
