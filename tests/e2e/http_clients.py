"""HTTP clients for tests against running processes, carrying consistency tokens.

In the scale stack reads are eventually consistent; a client that wants to see
earlier writes sends their tokens back. These clients merge every token they are
given (newest position per Kafka partition, or the SQLite log position) and send
the merged token with every request, as a client SDK would for one user session.
"""

from __future__ import annotations

from typing import Any

import httpx


class Tokens:
    """The newest position seen per Kafka partition (or the SQLite log), merged into one token."""

    def __init__(self) -> None:
        self._parts: dict[str, int] = {}

    def add(self, token: str | None) -> None:
        for part in (token or "").split(","):
            where, _, offset = part.rpartition(":")
            if offset.isdigit():
                self._parts[where] = max(self._parts.get(where, -1), int(offset))

    def header(self) -> dict[str, str]:
        merged = ",".join(f"{w}:{o}" if w else str(o) for w, o in self._parts.items())
        return {"X-Glimpse-Consistency": merged} if merged else {}


class Client(httpx.Client):
    """Sends the merged token with every request (commands read state too) and collects
    the tokens that writes answer with."""

    def __init__(self, base: str, tokens: Tokens) -> None:
        super().__init__(base_url=base, timeout=30)
        self.tokens = tokens

    def request(self, method: str, url: Any, **kw: Any) -> httpx.Response:  # type: ignore[override]
        kw["headers"] = self.tokens.header() | dict(kw.get("headers") or {})
        r = super().request(method, url, **kw)
        self.tokens.add(r.headers.get("X-Glimpse-Consistency"))
        return r
