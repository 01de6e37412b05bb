"""The token file format: what is accepted, and what stops the gateway at boot."""

from __future__ import annotations

import hashlib

import pytest

from gateway.auth import Caller, TokenFileError, hash_token, parse_token_file, right_for
from gateway.limits import CallerLimits

DIGEST = hash_token("some-token")


def test_hash_token_is_the_sha256_hex_of_the_utf8_bytes() -> None:
    assert hash_token("токен") == hashlib.sha256("токен".encode()).hexdigest()


def test_comments_blank_lines_and_limits_are_read() -> None:
    text = f"""
    # a comment
    {DIGEST}  batch  generate,plan  max_concurrent=4 variants_per_minute=120  # trailing

    """
    [(digest, caller)] = parse_token_file(text)
    assert digest == bytes.fromhex(DIGEST)
    assert caller == Caller("batch", frozenset({"generate", "plan"}), CallerLimits(4, 120))


def test_two_tokens_of_one_caller_are_both_valid_for_rotation() -> None:
    text = f"{DIGEST} studio plan\n{hash_token('next-token')} studio plan\n"
    assert [c.name for _, c in parse_token_file(text)] == ["studio", "studio"]


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        (f"{DIGEST} studio", "expected"),
        ("abc studio plan", "64 hex digits"),
        (f"{DIGEST} stu/dio plan", "caller name"),
        (f"{DIGEST} studio Generate", "rights"),
        (f"{DIGEST} studio plan burst=3", "bad limit"),
        (f"{DIGEST} studio plan max_concurrent=-1", "bad limit"),
    ],
)
def test_a_malformed_line_is_named_by_number(line: str, complaint: str) -> None:
    with pytest.raises(TokenFileError, match=rf"tokens, line 2: .*{complaint}"):
        parse_token_file(f"# header\n{line}\n", source="tokens")


def test_a_digest_listed_twice_is_refused() -> None:
    with pytest.raises(TokenFileError, match="twice"):
        parse_token_file(f"{DIGEST} a plan\n{DIGEST} b plan\n")


def test_one_caller_with_different_limits_on_two_lines_is_refused() -> None:
    text = f"{DIGEST} a plan max_concurrent=1\n{hash_token('x')} a plan max_concurrent=2\n"
    with pytest.raises(TokenFileError, match="other limits"):
        parse_token_file(text)


def test_the_right_of_a_method_is_its_name_in_lower_case() -> None:
    assert right_for("/imagegen.gateway.v1.GatewayService/Generate") == "generate"
    assert right_for("/imagegen.gateway.v1.GatewayService/Plan") == "plan"
