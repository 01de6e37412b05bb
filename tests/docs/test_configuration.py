"""docs/configuration.md is generated from the settings models and never drifts from them."""

from __future__ import annotations

import re

import pytest

from gateway.settings import GatewaySettings
from services.common.settings import settings_table
from services.render.settings import RenderSettings
from standins.ollama.settings import FakeOllamaSettings
from tools import docs
from tools.docs import BEGIN, CONFIGURATION, END, render_tables, spliced


def test_configuration_page_matches_the_settings_models() -> None:
    text = CONFIGURATION.read_text()
    assert spliced(text) == text, (
        "docs/configuration.md drifted: run `python -m tools.docs --write`"
    )


def test_check_passes_on_the_committed_page(capsys: pytest.CaptureFixture[str]) -> None:
    assert docs.main(["--check"]) == 0
    assert capsys.readouterr().err == ""


def test_every_setting_of_every_model_has_a_row() -> None:
    tables = render_tables()
    for model in (GatewaySettings, RenderSettings, FakeOllamaSettings):
        for name, _, description in settings_table(model):
            # A setting every server shares is one row, under its generic name.
            generic = re.sub(r"^(GATEWAY|RENDER)_", "<SERVICE>_", name)
            assert f"| `{name}` |" in tables or f"| `{generic}` |" in tables, name
            assert description, f"{name} has no description"
    assert "| `<SERVICE>_TLS_CERT_FILE` | (unset) |" in tables
    assert "| `IMAGEGEN_MAX_IMAGE_SIDE` | `4096` |" in tables


def test_a_stale_page_is_rewritten_between_the_markers_only() -> None:
    stale = f"# Configuration\n\nprose\n\n{BEGIN}\n| `OLD_SETTING` | x | y |\n{END}\n\nmore\n"
    fresh = spliced(stale)
    assert "OLD_SETTING" not in fresh
    assert fresh.startswith("# Configuration\n\nprose\n\n")
    assert fresh.endswith(f"{END}\n\nmore\n")
    assert (
        "### gateway" in fresh and "`GATEWAY_PORT`" in fresh and "`IMAGEGEN_MAX_VARIANTS`" in fresh
    )
    assert spliced(fresh) == fresh


@pytest.mark.parametrize("page", ["no markers\n", f"{BEGIN}\nunterminated\n"])
def test_a_page_without_both_markers_is_refused(page: str) -> None:
    with pytest.raises(ValueError, match="marker"):
        spliced(page)
