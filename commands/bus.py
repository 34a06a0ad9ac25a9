"""The command bus: idempotency, decide, append (the commit point), then project.

One bus per process. Handlers are synchronous and short; the bus serialises them
so a handler's reads and its append see one consistent state in the embedded
mode (the scale stack relies on reservations for the invariants instead).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from commands.context import CommandContext, Decision, Meta
from commands.errors import Conflict, Invalid
from commands.ports import EventLog, ReservationTaken, StoredResult
from projections.store import ReadModel

Handler = Callable[[CommandContext], Decision]


@dataclass(frozen=True)
class CommandResult:
    status: int
    body: bytes
    token: str
    replayed: bool = False


def _fingerprint(payload: Any) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


class CommandBus:
    def __init__(
        self,
        log: EventLog,
        read: ReadModel,
        new_id: Callable[[], int],
        clock: Callable[[], datetime],
        after_append: Callable[[str], object] | None = None,
    ) -> None:
        self._log = log
        self._read = read
        self._new_id = new_id
        self._clock = clock
        self._after_append = after_append
        self._lock = threading.RLock()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No command runs while the caller holds this: for swapping what commands read
        (the blue/green switch of a rebuilt read model)."""
        with self._lock:
            yield

    def execute(
        self,
        name: str,
        handler: Handler,
        *,
        actor_id: int | None,
        idempotency_key: str | None = None,
        payload: Any = None,
    ) -> CommandResult:
        """Run one command. `payload` is what the client sent: a retry with the same
        key but a different payload is a client bug and answers 422."""
        scope = f"{actor_id or 0}:{name}:{idempotency_key}" if idempotency_key else None
        fingerprint = _fingerprint(payload)
        with self._lock:
            if scope is not None:
                stored = self._log.stored_result(scope)
                if stored is not None:
                    if stored.fingerprint != fingerprint:
                        raise Invalid(
                            "this Idempotency-Key was already used with a different request",
                            code="idempotency_key_reused",
                        )
                    return CommandResult(stored.status, stored.body, stored.token, replayed=True)
            meta = Meta(
                actor_id=actor_id,
                now=self._clock(),
                new_id=self._new_id,
                idempotency_key=idempotency_key,
                correlation_id=self._new_id(),
            )
            decision = handler(CommandContext(meta=meta, read=self._read))
            body = orjson.dumps(decision.body)
            result = StoredResult(scope, fingerprint, decision.status, body, "", actor_id) if scope else None
            try:
                token = self._log.append(
                    decision.events, reserve=decision.reserve, release=decision.release, result=result
                )
            except ReservationTaken as taken:
                raise Conflict(
                    f"{taken.reservation.kind} is already taken", code=f"{taken.reservation.kind}_taken"
                ) from None
            if self._after_append is not None and decision.events:
                self._after_append(token)
            return CommandResult(decision.status, body, token)
