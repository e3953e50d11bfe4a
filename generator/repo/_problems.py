"""Pydantic validation errors as ``file:line: key.path: message`` lines (the line from the YAML)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from ..spec import fields_at
from ._yamlio import line_of


def _loc_text(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def format_validation_error(exc: ValidationError, filename: str, raw: Any = None) -> list[str]:
    """One line per pydantic error: ``file:line: key.path: message``."""
    problems: list[str] = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if isinstance(p, str | int)]
        # pydantic puts the union member / validator name into loc for some errors; drop non-keys
        loc = [p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
        line = line_of(raw, loc) if raw is not None else None
        where = f"{filename}:{line}" if line else filename
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not part of the region spec; check the spelling)"
            if loc and isinstance(loc[-1], str):
                close = difflib.get_close_matches(loc[-1], fields_at(loc[:-1]), n=1)
                if close:
                    msg = f"unknown key (did you mean {close[0]!r}?)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {_loc_text(loc)}: {msg}")
    return problems
