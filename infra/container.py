"""Everything one process uses, wired once by a composition root (infra/bootstrap.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from commands.bus import CommandBus
from commands.ports import EventLog, MediaStore
from infra.auth import TokenService
from infra.projector import Projector
from infra.pubsub import PubSub
from infra.ratelimit import RateLimiter
from infra.settings import Settings
from projections.privacy import Privacy
from projections.store import ReadModel


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    interval_seconds: float
    run: Callable[[], object]


@dataclass
class Container:
    settings: Settings
    log: EventLog
    read: ReadModel
    projector: Projector
    bus: CommandBus
    media: MediaStore
    tokens: TokenService
    pubsub: PubSub
    login_limiter: RateLimiter
    write_limiter: RateLimiter
    new_id: Callable[[], int]
    clock: Callable[[], datetime]
    jobs: list[PeriodicJob] = field(default_factory=list)
    close: Callable[[], None] = lambda: None

    @property
    def privacy(self) -> Privacy:
        return Privacy(self.read)
