"""Writes the subset of TOML a tiffin.toml uses (Python reads TOML with tomllib, but writes none).

Tables of strings, numbers, booleans, lists and inline tables, with arrays of tables for the
signature and files. Strings are written as JSON strings, which are valid TOML basic strings.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps"]


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no place in a tiffin.toml")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(out: list[str], path: list[str], table: dict[str, Any]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and not _is_table_list(v)}
    for key, value in scalars.items():
        out.append(f"{_key(key)} = {_value(value)}")
    for key, value in table.items():
        if isinstance(value, dict):
            out.append("")
            out.append("[" + ".".join(map(_key, [*path, key])) + "]")
            _table(out, [*path, key], value)
        elif _is_table_list(value):
            for item in value:
                out.append("")
                out.append("[[" + ".".join(map(_key, [*path, key])) + "]]")
                _table(out, [*path, key], item)


def dumps(document: dict[str, Any]) -> str:
    """The document as TOML text."""
    out: list[str] = []
    _table(out, [], document)
    return "\n".join(out).lstrip("\n") + "\n"
