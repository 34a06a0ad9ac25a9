"""What a command handler gets: the actor, the clock, ids, and read access to state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from commands.errors import Unauthorized
from commands.ports import Reservation
from events.union import Event
from projections.privacy import Privacy
from projections.store import ReadModel


@dataclass(frozen=True)
class Meta:
    """Everything impure a decision needs, passed in so decide() stays pure."""

    actor_id: int | None
    now: datetime
    new_id: Callable[[], int]
    idempotency_key: str | None = None
    correlation_id: int | None = None

    def envelope(self, aggregate_id: int, event_id: int | None = None) -> dict[str, Any]:
        """Envelope fields for one event; pass `event_id` when it doubles as an entity id."""
        return {
            "event_id": event_id if event_id is not None else self.new_id(),
            "occurred_at": self.now,
            "actor_id": self.actor_id,
            "aggregate_id": aggregate_id,
            "correlation_id": self.correlation_id,
            "idempotency_key": self.idempotency_key,
        }


@dataclass(frozen=True)
class Decision:
    """The outcome of a command: events to append, reservations, and the answer."""

    events: list[Event]
    body: Any = None
    status: int = 200
    reserve: tuple[Reservation, ...] = ()
    release: tuple[Reservation, ...] = ()


@dataclass
class CommandContext:
    meta: Meta
    read: ReadModel
    privacy: Privacy = field(init=False)

    def __post_init__(self) -> None:
        self.privacy = Privacy(self.read)

    @property
    def actor(self) -> int:
        if self.meta.actor_id is None:
            raise Unauthorized("sign in first")
        return self.meta.actor_id
