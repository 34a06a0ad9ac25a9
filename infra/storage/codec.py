"""Column values to and from what SQLite stores (lists and dicts as JSON)."""

from __future__ import annotations

from typing import Any

import orjson

from projections.store import Table


def to_db(table: Table, column: str, value: Any) -> Any:
    if value is None:
        return None
    kind = table.type_of(column)
    if kind is list or kind is dict:
        return orjson.dumps(value)
    if kind is bool:
        return int(bool(value))
    return value


def from_db(table: Table, column: str, value: Any) -> Any:
    if value is None:
        return None
    kind = table.type_of(column)
    if kind is list or kind is dict:
        return orjson.loads(value)
    if kind is bool:
        return bool(value)
    return value


SQL_TYPES = {int: "INTEGER", str: "TEXT", bool: "INTEGER", float: "REAL", list: "BLOB", dict: "BLOB"}
