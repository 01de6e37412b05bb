"""What the doc tests read from the Markdown pages: code blocks, shell commands, links, anchors.

| usage | gives |
|---|---|
| ``PAGES`` | every page the tests keep true (README, CONTRIBUTING, ``docs/*.md``) |
| ``shell_commands(text)`` | each command of the ``bash``/``sh`` blocks, with its comment |
| ``grpcurl_call(command)`` | what a grpcurl command calls (method, list, describe), its body |
| ``relative_links(text)`` | the link targets that point into the repository |
| ``anchors(text)`` | the ``#fragment`` every heading of a page answers to (GitHub's rules) |
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PAGES",
    "README",
    "ROOT",
    "GrpcurlCall",
    "ShellCommand",
    "anchors",
    "grpcurl_call",
    "relative_links",
    "shell_commands",
]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", flags=re.MULTILINE)


@dataclass(frozen=True)
class ShellCommand:
    """One command of a shell block, as a reader would paste it.

    Attributes:
        text: The command, continuation lines joined as the shell joins them.
        note: The comment line right above it ("" when there is none), without the ``#``.
    """

    text: str
    note: str


def shell_commands(text: str) -> list[ShellCommand]:
    """The commands of every ``bash``/``sh`` block of a page, in order."""
    commands: list[ShellCommand] = []
    for language, block in _FENCE.findall(text):
        if language not in ("bash", "sh"):
            continue
        note, pending = "", ""
        for line in block.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                note = line.strip().lstrip("#").strip() if line.strip() else ""
                continue
            pending = f"{pending}\n{line}" if pending else line
            # A command goes on after a trailing backslash or inside an open single quote.
            if pending.endswith("\\") or pending.count("'") % 2:
                continue
            commands.append(ShellCommand(pending, note))
            note, pending = "", ""
    return commands


@dataclass(frozen=True)
class GrpcurlCall:
    """What one grpcurl command asks for.

    Attributes:
        verb: ``list``, ``describe`` or ``call``.
        target: The method (``pkg.Service/Method``) or the symbol described; "" for ``list``.
        body: The request as JSON, when the command spells it out (``-d '{...}'`` or a
            ``printf`` template piped in), with substituted values left empty.
    """

    verb: str
    target: str
    body: dict[str, Any] | None


def grpcurl_call(command: str) -> GrpcurlCall:
    """Reads what a grpcurl command calls.

    Raises:
        ValueError: The command runs no grpcurl.
    """
    # Spliced shell values ('"$(...)"' inside a quoted body, "%s" in a printf template)
    # stand for data the reader's shell fills in; an empty string keeps the JSON's shape.
    plain = re.sub(r"'\"\$\([^)]*\)\"'", "", command).replace("\\\n", " ")
    pipeline = [shlex.split(part) for part in _pipe_split(plain)]
    grpcurl = next((argv for argv in pipeline if argv and argv[0].endswith("grpcurl")), None)
    if grpcurl is None:
        raise ValueError(f"not a grpcurl command: {command!r}")
    words, body_text = [], None
    args = iter(grpcurl[1:])
    for arg in args:
        if arg in ("-d", "-H", "-cacert", "-max-time", "-cert", "-key", "-servername"):
            value = next(args)
            if arg == "-d":
                body_text = value
        elif not arg.startswith("-"):
            words.append(arg)
    if body_text == "@":
        printf = next((argv for argv in pipeline if argv and argv[0] == "printf"), None)
        body_text = printf[1].replace("%s", "") if printf else None
    body = json.loads(body_text) if body_text else None
    # words: the address, then `list`, `describe SYMBOL` or the method.
    rest = words[1:]
    if rest[:1] == ["list"]:
        return GrpcurlCall("list", rest[1] if len(rest) > 1 else "", None)
    if rest[:1] == ["describe"]:
        return GrpcurlCall("describe", rest[1], None)
    return GrpcurlCall("call", rest[0], body)


def _pipe_split(command: str) -> list[str]:
    """A pipeline's parts: splits on ``|`` outside quotes."""
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    for char in command:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "|":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def relative_links(text: str) -> list[str]:
    """Link targets that point into the repository (no scheme, no mail), as written."""
    return [
        target
        for target in _LINK.findall(text)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.IGNORECASE)
    ]


def anchors(text: str) -> set[str]:
    """The fragments a page's headings answer to, slugged as GitHub does.

    Lower-case; punctuation other than ``-`` and ``_`` dropped; each space a ``-``;
    repeated headings get ``-1``, ``-2``, ...
    """
    without_code = _FENCE.sub("", text)
    found: set[str] = set()
    for heading in _HEADING.findall(without_code):
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", plain.lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found
