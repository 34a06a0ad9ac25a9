"""Opaque cursors and list envelopes: `{"items": [...], "next_cursor": ...}`."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Query

from commands.errors import Invalid


def encode_cursor(value: int | str) -> str:
    raw = f"{'i' if isinstance(value, int) else 's'}:{value}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | str | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind == "i":
            return int(value)
        if kind == "s":
            return value
    except (ValueError, UnicodeDecodeError):
        pass
    raise Invalid("cursor is not one this API gave out", code="invalid_cursor")


def decode_int_cursor(cursor: str | None) -> int | None:
    value = decode_cursor(cursor)
    if value is not None and not isinstance(value, int):
        raise Invalid("cursor is not one this API gave out", code="invalid_cursor")
    return value


Limit = Annotated[int, Query(ge=1, le=100, description="page size (default 20, max 100)")]
Cursor = Annotated[str | None, Query(max_length=200, description="opaque cursor from next_cursor")]


def page(items: Sequence[Any], next_value: int | str | None) -> dict[str, Any]:
    return {
        "items": list(items),
        "next_cursor": encode_cursor(next_value) if next_value is not None else None,
    }
