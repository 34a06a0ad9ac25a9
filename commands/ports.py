"""Ports the write side depends on; infra provides the adapters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from events.union import Event


@dataclass(frozen=True)
class Reservation:
    """A globally unique claim (a username, one like per user and post)."""

    kind: str
    key: str
    owner: int


@dataclass(frozen=True)
class StoredResult:
    """The first answer to an idempotent command, replayed on retries."""

    scope: str
    fingerprint: str
    status: int
    body: bytes
    token: str  # the consistency token of the command's last event
    subject: int | None = None  # the actor, whose key seals the body at rest (erased with the account)


class ReservationTaken(Exception):
    def __init__(self, reservation: Reservation) -> None:
        super().__init__(f"{reservation.kind} {reservation.key!r} is taken")
        self.reservation = reservation


class EventLog(Protocol):
    def append(
        self,
        events: Sequence[Event],
        *,
        reserve: Sequence[Reservation] = (),
        release: Sequence[Reservation] = (),
        result: StoredResult | None = None,
    ) -> str:
        """Claim reservations (or raise ReservationTaken and write nothing), release
        others, append events, store the idempotent result. Returns the consistency
        token of the last event: a read that waits for it sees the command's effects."""
        ...

    def stored_result(self, scope: str) -> StoredResult | None: ...


class ReadableEventLog(EventLog, Protocol):
    """A log with one global order (SQLite, memory): what the in-process projector reads."""

    def read(self, after: int, limit: int) -> list[tuple[int, Event]]: ...

    def head(self) -> int: ...


class MediaStore(Protocol):
    """Object storage for media bytes (local disk embedded, S3 in the scale stack)."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...
