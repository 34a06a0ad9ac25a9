"""Benchmark profiles: which graphs, how much load, for how long, and the feed settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STRATEGIES = ("push", "pull", "hybrid")


@dataclass
class FeedKnobs:
    """Passed to every process as GLIMPSE_FEED_* (pydantic-settings ignores unknown ones)."""

    celebrity_threshold: int = 1000
    active_window_seconds: int = 3 * 24 * 3600
    fanout_chunk: int = 1000
    fanout_cap: int = 800

    def env(self, strategy: str) -> dict[str, str]:
        return {
            "GLIMPSE_FEED_STRATEGY": strategy,
            "GLIMPSE_FEED_CELEBRITY_THRESHOLD": str(self.celebrity_threshold),
            "GLIMPSE_FEED_ACTIVE_WINDOW_SECONDS": str(self.active_window_seconds),
            "GLIMPSE_FEED_FANOUT_CHUNK": str(self.fanout_chunk),
            "GLIMPSE_FEED_FANOUT_CAP": str(self.fanout_cap),
        }


@dataclass
class Profile:
    name: str
    graphs: list[str]
    mean_posts: float = 5.0  # posts per user before the run (exponential)
    mean_following: float = 12.0  # synthetic graphs
    active_share: float = 0.2  # users who send requests
    # The scale API process pays the Python Cassandra driver per round trip (a home-feed page
    # makes ~10): on 2 cores shared with Cassandra, Kafka, Redis and the worker it serves
    # about a hundred requests per second of the mix, the embedded one over a thousand.
    rate: dict[str, float] = field(default_factory=lambda: {"embedded": 250.0, "scale": 30.0})
    warmup: float = 5.0
    duration: float = 15.0
    connections: int = 64
    strategies: tuple[str, ...] = STRATEGIES
    feed: FeedKnobs = field(default_factory=FeedKnobs)
    baselines: bool = True
    build_timeout: float = 1800.0
    # Embedded: strategies whose posts are projected at once, each in its own process (a
    # projector is one thread, and at a million users each build takes most of an hour).
    # Only the builds overlap: every load runs alone.
    parallel_builds: int = 1

    def describe(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        "tiny",
        graphs=["synthetic-300"],
        mean_posts=3.0,
        mean_following=8.0,
        active_share=0.3,
        rate={"embedded": 40.0, "scale": 20.0},
        warmup=1.0,
        duration=3.0,
        connections=16,
        feed=FeedKnobs(celebrity_threshold=40),
    ),
    "quick": Profile("quick", graphs=["reed98", "synthetic-10k"]),
    "full": Profile(
        "full",
        graphs=["reed98", "synthetic-10k", "synthetic-100k", "synthetic-1m"],
        rate={"embedded": 300.0, "scale": 40.0},
        warmup=15.0,
        duration=60.0,
        build_timeout=6 * 3600.0,
        parallel_builds=3,
    ),
}
