"""The event log in a list: the fake adapter for unit tests."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from commands.ports import Reservation, ReservationTaken, StoredResult
from events.union import Event
from infra.personal_data.codec import EventCodec
from infra.personal_data.keys import MemorySubjectKeys


class MemoryEventLog:
    def __init__(self, codec: EventCodec | None = None) -> None:
        self.codec = codec or EventCodec(MemorySubjectKeys())
        self._events: list[bytes] = []  # stored encoded (and sealed), so tests exercise serialization
        self._reservations: dict[tuple[str, str], int] = {}
        self._results: dict[str, StoredResult] = {}
        self._ids: set[int] = set()
        self._lock = threading.Lock()

    def append(
        self,
        events: Sequence[Event],
        *,
        reserve: Sequence[Reservation] = (),
        release: Sequence[Reservation] = (),
        result: StoredResult | None = None,
    ) -> str:
        with self._lock:
            reservations = dict(self._reservations)
            for r in release:
                if reservations.get((r.kind, r.key)) == r.owner:
                    del reservations[(r.kind, r.key)]
            for r in reserve:
                if (r.kind, r.key) in reservations:
                    raise ReservationTaken(r)
                reservations[(r.kind, r.key)] = r.owner
            if any(e.event_id in self._ids for e in events):
                raise ValueError("duplicate event id")
            self._reservations = reservations
            self._events.extend(self.codec.encode_many(events))
            self._ids.update(e.event_id for e in events)
            position = len(self._events)
            if result is not None:
                body = self.codec.seal_result(result.subject, result.body)
                self._results[result.scope] = StoredResult(
                    result.scope, result.fingerprint, result.status, body, str(position)
                )
            return str(position)

    def read(self, after: int, limit: int) -> list[tuple[int, Event]]:
        with self._lock:
            chunk = self._events[after : after + limit]
        return [(after + i + 1, self.codec.decode(data)) for i, data in enumerate(chunk)]

    def head(self) -> int:
        return len(self._events)

    def stored_result(self, scope: str) -> StoredResult | None:
        stored = self._results.get(scope)
        body = None if stored is None else self.codec.open_result(stored.body)
        return (
            None
            if stored is None or body is None
            else StoredResult(stored.scope, stored.fingerprint, stored.status, body, stored.token)
        )
