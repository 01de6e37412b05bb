"""Go standard-library behaviour the stand-in copies byte for byte."""

from __future__ import annotations

import base64

import pytest

from standins.ollama.wire import (
    MAX_DURATION_NS,
    GoDecodeError,
    check_options,
    decode_chat,
    decode_std_base64,
    encode_json,
    parse_go_duration,
    parse_keep_alive,
    rfc3339_nano,
)


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("0", 0),
        ("5m", 300 * 10**9),
        ("1h30m", 5400 * 10**9),
        ("1.5s", 1_500_000_000),
        ("-1m", -60 * 10**9),
        ("+10ms", 10_000_000),
        ("250us", 250_000),
        (".5h", 1800 * 10**9),
    ],
)
def test_go_durations_parse(text: str, nanoseconds: int) -> None:
    assert parse_go_duration(text) == nanoseconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10", 'time: missing unit in duration "10"'),
        ("10x", 'time: unknown unit "x" in duration "10x"'),
        ("abc", 'time: invalid duration "abc"'),
        ("", 'time: invalid duration ""'),
        ("-", 'time: invalid duration "-"'),
    ],
)
def test_bad_go_durations_fail_with_gos_words(text: str, message: str) -> None:
    with pytest.raises(GoDecodeError, match=f"^{message}$"):
        parse_go_duration(text)


def test_keep_alive_numbers_are_seconds_and_negative_means_forever() -> None:
    assert parse_keep_alive(30) == 30 * 10**9
    assert parse_keep_alive(0.5) == 500_000_000
    assert parse_keep_alive(-1) == MAX_DURATION_NS
    assert parse_keep_alive("-1m") == MAX_DURATION_NS


def test_keep_alive_of_another_type_names_the_go_type() -> None:
    with pytest.raises(GoDecodeError) as caught:
        parse_keep_alive(True)
    assert str(caught.value) == "Unsupported type: 'bool'"


@pytest.mark.parametrize("data", [b"", b"f", b"fo", b"foo", b"foob", b"\x00\xff" * 40])
def test_valid_base64_decodes_like_python(data: bytes) -> None:
    assert decode_std_base64(base64.b64encode(data).decode()) == data


def test_base64_newlines_are_skipped() -> None:
    assert decode_std_base64("Zm9v\nYmFy\r\n") == b"foobar"


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("data:image/png;base64,AAAA", 4),
        ("Zm9", 0),  # unpadded: Go reports the start of the short quantum
        ("Zm9vYg", 4),
        ("Zm9v!", 4),
        ("Zg=", 3),
        ("Z===", 1),
        ("Zg==Zg==", 4),
        ("Zm9v YmFy", 4),
    ],
)
def test_bad_base64_is_reported_at_gos_offset(text: str, offset: int) -> None:
    with pytest.raises(GoDecodeError, match=f"^illegal base64 data at input byte {offset}$"):
        decode_std_base64(text)


def test_json_is_compact_and_escapes_html_like_go() -> None:
    assert encode_json({"a": "<&>", "b": [1, 2], "c": "ü"}) == (
        '{"a":"\\u003c\\u0026\\u003e","b":[1,2],"c":"ü"}'.encode()
    )


def test_timestamps_trim_trailing_zero_nanoseconds() -> None:
    assert rfc3339_nano(1_767_225_600_120_000_000) == "2026-01-01T00:00:00.12Z"
    assert rfc3339_nano(1_767_225_600_000_000_000) == "2026-01-01T00:00:00Z"
    assert rfc3339_nano(1_767_225_600_000_000_001) == "2026-01-01T00:00:00.000000001Z"


UNMARSHAL = "json: cannot unmarshal "


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"model": 5}', "number into Go struct field ChatRequest.model of type string"),
        (
            b'{"messages": "hi"}',
            "string into Go struct field ChatRequest.messages of type []api.Message",
        ),
        (
            b'{"messages": [{"content": 1}]}',
            "number into Go struct field Message.messages.content of type string",
        ),
        (
            b'{"messages": [{"images": [7]}]}',
            "number into Go struct field Message.messages.images of type api.ImageData",
        ),
        (b'{"stream": "no"}', "string into Go struct field ChatRequest.stream of type bool"),
        (b"[]", "array into Go value of type api.ChatRequest"),
    ],
)
def test_wrongly_typed_fields_fail_with_gos_decoder_messages(body: bytes, message: str) -> None:
    with pytest.raises(GoDecodeError) as caught:
        decode_chat(body)
    assert str(caught.value) == UNMARSHAL + message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{'model': 1}", "invalid character '\\'' looking for beginning of object key string"),
        (b'{"model" "x"}', "invalid character '\"' after object key"),
        (b'{"model": "x" "y"}', "invalid character '\"' after object key:value pair"),
        (b'{"messages": [{} {}]}', "invalid character '{' after array element"),
        (b"nope", "invalid character 'n' looking for beginning of value"),
        (b'{"model": "x', "unexpected EOF"),
        (b"   ", "missing request body"),
    ],
)
def test_bad_json_fails_with_gos_decoder_messages(body: bytes, message: str) -> None:
    with pytest.raises(GoDecodeError) as caught:
        decode_chat(body)
    assert str(caught.value) == message


def test_field_names_match_case_insensitively_and_null_means_unset() -> None:
    request = decode_chat(b'{"Model": "llava", "Stream": null, "MESSAGES": [{"Role": "USER"}]}')
    assert (request.model, request.stream, request.messages[0].role) == ("llava", True, "user")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature": "hot"}, 'option "temperature" must be of type float32'),
        ({"num_ctx": "big"}, 'option "num_ctx" must be of type integer'),
        ({"use_mmap": 1}, 'option "use_mmap" must be of type boolean'),
        ({"stop": "x"}, 'option "stop" must be of type array'),
        ({"stop": [1]}, 'option "stop" must be of an array of strings'),
    ],
)
def test_wrongly_typed_options_fail_with_ollamas_words(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(GoDecodeError, match=f"^{message}$"):
        check_options(options)


def test_unknown_options_are_ignored() -> None:
    check_options({"mirostat_magic": "anything", "temperature": 0})
