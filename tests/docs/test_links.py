"""Every relative link of the README, CONTRIBUTING and docs/ leads somewhere that exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.markdown import PAGES, ROOT, anchors, relative_links


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    text = page.read_text()
    broken = []
    for link in relative_links(text):
        path, _, fragment = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif fragment and target.suffix == ".md" and fragment not in anchors(target.read_text()):
            broken.append(f"{link}: no heading #{fragment}")
    assert not broken, broken


def test_the_docs_pages_the_design_names_exist_and_the_readme_links_them() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in ("architecture", "api", "configuration", "deployment", "reliability"):
        assert (ROOT / "docs" / f"{name}.md").is_file(), name
        assert f"(docs/{name}.md)" in readme, name


def test_a_link_to_a_missing_file_or_heading_is_found() -> None:
    # The checker itself: a broken link must not slip through as "no links".
    text = "See [a](docs/api.md#errors), [b](docs/nowhere.md), [c](https://x.org/a.md)."
    assert relative_links(text) == ["docs/api.md#errors", "docs/nowhere.md"]
    assert "errors" in anchors((ROOT / "docs" / "api.md").read_text())
    assert "no-such-heading" not in anchors((ROOT / "docs" / "api.md").read_text())
    assert anchors("# A `b` — c!\n## Quick start — the two commands\n") == {
        "a-b--c",
        "quick-start--the-two-commands",
    }
