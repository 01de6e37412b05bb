"""The deployment page says only what the files and settings really do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gateway import auth
from gateway.auth import AuthSettings, auth_interceptors, parse_token_file
from gateway.settings import GatewaySettings
from tests.deploy.manifests import (
    COMPOSE_FILE,
    GRPC_SERVICES,
    deploy_section,
    env_names,
    load_compose,
)

TEXT = deploy_section()
KNOWN = {name: env_names(model) for name, model in GRPC_SERVICES.items()}
OUR_PREFIXES = ("GATEWAY_", "VISION_", "PLANNER_", "RENDER_", "IMAGEGEN_")
API_PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
CODES = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", API_PAGE.read_text(), flags=re.MULTILINE))
"""Warning codes and error reasons (the first column of the API page's tables): named in the
text, but no variables."""


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", TEXT, flags=re.DOTALL)


def test_every_yaml_example_overrides_real_services_with_real_settings() -> None:
    examples = [yaml.safe_load(block) for block in code_blocks("yaml")]
    assert examples
    services = load_compose()["services"]
    for example in examples:
        for name, service in example["services"].items():
            assert name in services, name
            unknown = set(service.get("environment", {})) - KNOWN[name]
            assert not unknown, f"{name}: {sorted(unknown)}"


def test_every_variable_the_text_names_exists() -> None:
    compose_text = COMPOSE_FILE.read_text()
    all_settings = set().union(*KNOWN.values())
    named = set(re.findall(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?:=[^`]*)?`", TEXT))
    assert named
    assert CODES
    for name in named - CODES:
        if name.startswith(OUR_PREFIXES):
            assert name in all_settings, name
        else:  # a Compose variable or a backend's own setting passed through Compose
            assert f"${{{name}" in compose_text or f"{name}:" in compose_text, name


def test_the_auth_interceptor_reads_exactly_the_documented_fields() -> None:
    members = {
        name
        for name in vars(AuthSettings)
        if not name.startswith("_") and isinstance(getattr(AuthSettings, name), property)
    }
    assert members == {f for f in GatewaySettings.model_fields if f.startswith(("auth_", "limit_"))}


def test_a_missing_token_file_names_the_gateway_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_AUTH_TOKENS_FILE", str(tmp_path / "absent"))
    with pytest.raises(auth.TokenFileError, match=r"^GATEWAY_AUTH_TOKENS_FILE: "):
        auth_interceptors(GatewaySettings())


def test_the_example_token_files_parse() -> None:
    [example] = code_blocks("text")
    callers = [caller for _, caller in parse_token_file(example)]
    assert [c.name for c in callers] == ["studio-web", "batch-jobs"]
    docstring = (auth.__doc__ or "").split("::", 1)[1].split("\n\n")[1]
    assert len(parse_token_file(docstring)) == 2
