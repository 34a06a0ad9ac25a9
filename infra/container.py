"""Everything one process uses, wired once by a composition root (infra/bootstrap.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from commands.bus import CommandBus
from commands.ports import EventLog, MediaStore
from infra.auth import TokenService
from infra.projector import Projector
from infra.pubsub import PubSub
from infra.settings import Settings
from projections.privacy import Privacy
from projections.store import ReadModel

if TYPE_CHECKING:
    from infra.feed_wiring import FeedRuntime


class Limiter(Protocol):
    def take(self, key: str) -> int:
        """Spend one token; 0 if allowed, else the seconds until one is available."""
        ...


class Consistency(Protocol):
    """Read-your-writes: wait until the read models include a write's token."""

    async def wait(self, token: str, timeout: float) -> bool: ...

    def metrics(self) -> dict[str, int]:
        """Gauges for /metrics, e.g. log head, applied position, lag."""
        ...


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
    bus: CommandBus
    media: MediaStore
    tokens: TokenService
    pubsub: PubSub
    login_limiter: Limiter
    write_limiter: Limiter
    new_id: Callable[[], int]
    clock: Callable[[], datetime]
    consistency: Consistency
    # Readiness probes by name: each raises if its backing service is unusable.
    probes: dict[str, Callable[[], object]] = field(default_factory=dict)
    projector: Projector | None = None  # the in-process projector (embedded mode only)
    jobs: list[PeriodicJob] = field(default_factory=list)
    close: Callable[[], None] = lambda: None
    feed: FeedRuntime | None = None  # the home feed's strategy, activity store and write-back (infra/feed_wiring.py)
    # More Prometheus text for /metrics (e.g. histograms), each a complete block.
    extra_metrics: list[Callable[[], str]] = field(default_factory=list)

    @property
    def privacy(self) -> Privacy:
        return Privacy(self.read)
