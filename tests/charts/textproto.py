"""A small reader for protobuf text format, enough for TF Serving's config files."""

from __future__ import annotations

import re
from typing import Any

TOKEN = re.compile(r'\s*(?:#[^\n]*|(?P<tok>[A-Za-z_][A-Za-z0-9_]*|"(?:[^"\\]|\\.)*"|-?[0-9]+|[{}:]))')
Message = dict[str, list[Any]]


def tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text.rstrip()):
        match = TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ValueError(f"cannot read text proto at {text[position : position + 30]!r}")
        if match.group("tok") is not None:
            tokens.append(match.group("tok"))
        position = match.end()
    return tokens


def parse(text: str) -> Message:
    """Fields map to lists of values (repeated fields); sub-messages are Messages."""
    tokens = tokenize(text)
    message, end = _message(tokens, 0)
    if end != len(tokens):
        raise ValueError(f"unexpected {tokens[end]!r}")
    return message


def _message(tokens: list[str], index: int) -> tuple[Message, int]:
    message: Message = {}
    while index < len(tokens) and tokens[index] != "}":
        name = tokens[index]
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise ValueError(f"expected a field name, got {name!r}")
        index += 1
        if tokens[index] == ":":
            index += 1
        if tokens[index] == "{":
            value, index = _message(tokens, index + 1)
            if tokens[index] != "}":
                raise ValueError(f"unclosed message {name}")
            index += 1
        else:
            value, index = _scalar(tokens[index]), index + 1
        message.setdefault(name, []).append(value)
    return message, index


def _scalar(token: str) -> Any:
    if token.startswith('"'):
        return token[1:-1].encode().decode("unicode_escape")
    if re.fullmatch(r"-?[0-9]+", token):
        return int(token)
    return {"true": True, "false": False}.get(token, token)
