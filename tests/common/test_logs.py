"""Log lines are JSON objects carrying the request id, the service and any extras."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterator

import pytest

from services.common.logs import (
    MAX_LOGGED_TEXT_CHARS,
    configure_logging,
    get_logger,
    logged_text,
    request_id_var,
)


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logger")
def test_json_line_has_the_standard_fields_and_extras() -> None:
    buffer = io.StringIO()
    configure_logging("INFO", "json", service="planner", stream=buffer)
    token = request_id_var.set("abc123")
    try:
        get_logger("services.planner").info("planned %s", "prompt", extra={"steps": 28})
    finally:
        request_id_var.reset(token)
    line = json.loads(buffer.getvalue())
    assert line.pop("ts")
    assert line == {
        "level": "INFO",
        "logger": "services.planner",
        "message": "planned prompt",
        "request_id": "abc123",
        "service": "planner",
        "steps": 28,
    }


@pytest.mark.usefixtures("restore_root_logger")
def test_json_line_keeps_non_ascii_text_readable() -> None:
    buffer = io.StringIO()
    configure_logging("INFO", "json", stream=buffer)
    get_logger("t").info("instruction", extra={"instruction": "перекрась стены"})
    assert "перекрась стены" in buffer.getvalue()
    assert json.loads(buffer.getvalue())["request_id"] == "-"


@pytest.mark.usefixtures("restore_root_logger")
def test_exception_is_logged_with_its_traceback() -> None:
    buffer = io.StringIO()
    configure_logging("INFO", "json", stream=buffer)
    try:
        raise KeyError("missing")
    except KeyError:
        get_logger("t").exception("failed")
    assert "KeyError: 'missing'" in json.loads(buffer.getvalue())["exc"]


@pytest.mark.usefixtures("restore_root_logger")
def test_text_format_is_one_readable_line() -> None:
    buffer = io.StringIO()
    configure_logging("INFO", "text", service="render", stream=buffer)
    get_logger("t").warning("slow step", extra={"step": 3})
    text = buffer.getvalue().strip()
    assert "WARNING" in text and "render" in text and "slow step step=3" in text
    assert "\n" not in text


@pytest.mark.usefixtures("restore_root_logger")
def test_level_filters_lower_lines() -> None:
    buffer = io.StringIO()
    configure_logging("WARNING", "json", stream=buffer)
    get_logger("t").info("quiet")
    assert buffer.getvalue() == ""


@pytest.mark.usefixtures("restore_root_logger")
def test_configuring_again_replaces_only_its_own_handler() -> None:
    other = logging.NullHandler()
    logging.getLogger().addHandler(other)
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", stream=first)
    configure_logging("INFO", stream=second)
    get_logger("t").info("once")
    assert (first.getvalue(), second.getvalue().count("once")) == ("", 1)
    assert other in logging.getLogger().handlers


SIXTEEN_MEGABYTES = "перекрась стены " * (1024 * 1024)


@pytest.mark.usefixtures("restore_root_logger")
@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_huge_caller_text_is_logged_as_its_head_length_and_hash(fmt: str) -> None:
    buffer = io.StringIO()
    configure_logging("INFO", fmt, stream=buffer)
    get_logger("t").info("generate %s", SIXTEEN_MEGABYTES, extra={"instruction": SIXTEEN_MEGABYTES})
    line = buffer.getvalue()
    digest = hashlib.sha256(SIXTEEN_MEGABYTES.encode()).hexdigest()[:16]
    assert len(line) < 3 * MAX_LOGGED_TEXT_CHARS
    assert line.count(f"… ({len(SIXTEEN_MEGABYTES)} chars, sha256 {digest})") == 1
    assert line.count(f"… ({len('generate ') + len(SIXTEEN_MEGABYTES)} chars, sha256 ") == 1


@pytest.mark.usefixtures("restore_root_logger")
def test_an_exception_echoing_a_huge_text_is_bounded() -> None:
    buffer = io.StringIO()
    configure_logging("INFO", "json", stream=buffer)
    try:
        raise ValueError(SIXTEEN_MEGABYTES)
    except ValueError:
        get_logger("t").exception("failed")
    exc = json.loads(buffer.getvalue())["exc"]
    assert exc.startswith("Traceback") and len(exc) < 5 * MAX_LOGGED_TEXT_CHARS


def test_a_text_within_the_bound_is_logged_whole() -> None:
    prompt = "a fox in the snow, " * 200
    assert logged_text(prompt) == prompt
