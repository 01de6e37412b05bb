"""README.md is a front page that stays short and true: commands, modules, tools, RPCs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2  # noqa: F401  (registers grpc.health.v1 in the pool)

from imagegen.gateway.v1 import gateway_pb2  # noqa: F401  (registers every imagegen package)
from imagegen.planner.v1 import planner_pb2  # noqa: F401
from imagegen.render.v1 import render_pb2  # noqa: F401
from imagegen.vision.v1 import vision_pb2  # noqa: F401
from tests.docs.markdown import PAGES, README, ROOT, grpcurl_call, shell_commands

TEXT = README.read_text()
MAX_LINES = 260


def _described(pool: descriptor_pool.DescriptorPool, name: str) -> bool:
    """Whether grpcurl's ``describe`` finds ``name``: a service, method or message."""
    finders = (pool.FindServiceByName, pool.FindMessageTypeByName, pool.FindMethodByName)
    for find in finders:
        try:
            find(name)
        except KeyError:
            continue
        return True
    return False


def test_readme_stays_a_front_page() -> None:
    lines = TEXT.count("\n")
    assert lines <= MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_readme_shows_the_two_commands_and_ci_runs_the_test_command() -> None:
    assert "make run" in TEXT and "make test" in TEXT
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_make_target_the_pages_name_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z]+):", makefile, flags=re.MULTILINE))
    named = {m for page in PAGES for m in re.findall(r"`make ([a-z]+)`", page.read_text())}
    assert {"run", "test"} <= named
    assert named <= targets, sorted(named - targets)


def test_every_python_module_the_pages_run_exists() -> None:
    modules = {m for page in PAGES for m in re.findall(r"python -m ([a-z_.]+)", page.read_text())}
    assert {"gateway", "tools.stack", "tools.docs"} <= modules
    for module in modules:
        path = ROOT / Path(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__main__.py").is_file(), module


def test_every_venv_tool_the_readme_names_is_installed() -> None:
    # `make setup` installs the project and its dev extra into .venv; the tests run in it.
    tools = set(re.findall(r"\.venv/bin/([a-z][a-z0-9_-]*)", TEXT))
    assert {"python", "grpcurl", "imagegen"} <= tools
    installed = Path(sys.executable).parent
    for tool in tools:
        assert (installed / tool).exists(), tool


def test_every_grpcurl_command_calls_what_the_contracts_define() -> None:
    pool = descriptor_pool.Default()
    calls = [
        grpcurl_call(command.text)
        for page in PAGES
        for command in shell_commands(page.read_text())
        if "grpcurl " in command.text
    ]
    assert sum(call.verb == "call" for call in calls) >= 5
    for call in calls:
        if call.verb == "describe":
            assert _described(pool, call.target), call.target
        if call.verb != "call":
            continue
        service, method = call.target.split("/")
        request = pool.FindServiceByName(service).methods_by_name[method].input_type
        if call.body is not None:
            # Unknown fields and wrong types raise ParseError, naming the field.
            json_format.ParseDict(call.body, message_factory.GetMessageClass(request)())
