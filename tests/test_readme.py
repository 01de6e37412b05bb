"""README.md stays true to the code: settings tables, commands and examples."""

from __future__ import annotations

import re
from pathlib import Path

from tools.docs import README, render_tables, spliced_readme

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_tables_match_the_settings_models() -> None:
    text = README.read_text()
    assert spliced_readme(text) == text, (
        "README settings drifted: run `python -m tools.docs --write`"
    )
    assert "`IMAGEGEN_MAX_VARIANTS`" in render_tables()


def test_readme_shows_the_two_commands_and_ci_runs_the_test_command() -> None:
    text = README.read_text()
    assert "make run" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_make_target_the_readme_names_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z]+):", makefile, flags=re.MULTILINE))
    named = set(re.findall(r"`make ([a-z]+)`", README.read_text()))
    assert named
    assert named <= targets, sorted(named - targets)


def test_every_python_module_the_readme_runs_exists() -> None:
    modules = set(re.findall(r"python -m ([a-z_.]+)", README.read_text()))
    assert "gateway" in modules
    for module in modules:
        path = ROOT / Path(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__main__.py").is_file(), module
