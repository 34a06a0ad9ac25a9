"""The feed-freshness histogram: what is observed, and its Prometheus text."""

from __future__ import annotations

from datetime import timedelta

from infra.feed_freshness import BOUNDS, FreshnessRecorder, MemoryFreshness, bucket_index, render
from tests.unit.posts_world import NOW, World


def test_buckets_are_upper_bounds() -> None:
    assert bucket_index(0.0) == 0
    assert bucket_index(BOUNDS[0]) == 0
    assert bucket_index(BOUNDS[0] + 1e-9) == 1
    assert bucket_index(10**6) == len(BOUNDS)


def test_the_recorder_observes_each_post_once_the_feed_projection_applied_it() -> None:
    histogram = MemoryFreshness()
    recorder = FreshnessRecorder(histogram, clock=lambda: (NOW + timedelta(milliseconds=30)).timestamp())
    w = World()
    alice = w.user("alice")
    post = World.post_event(w.next_id(), alice)
    recorder(post, "posts", [])  # another projection: not yet readable in feeds
    recorder(w.apply(post), "feed", [])
    recorder(w.events[0], "feed", [])  # not a post
    counts, total, n = histogram.snapshot()
    assert n == 1
    assert counts[bucket_index(0.03)] == 1
    assert abs(total - 0.03) < 1e-3


def test_prometheus_text_is_cumulative() -> None:
    histogram = MemoryFreshness()
    for seconds in (0.001, 0.02, 0.02, 100.0, 1e6):
        histogram.observe(seconds)
    text = render(histogram)
    assert "# TYPE glimpse_feed_freshness_seconds histogram" in text
    assert 'glimpse_feed_freshness_seconds_bucket{le="0.005"} 1' in text
    assert 'glimpse_feed_freshness_seconds_bucket{le="0.025"} 3' in text
    assert 'glimpse_feed_freshness_seconds_bucket{le="300.0"} 4' in text
    assert 'glimpse_feed_freshness_seconds_bucket{le="+Inf"} 5' in text
    assert "glimpse_feed_freshness_seconds_count 5" in text


def test_a_failing_store_never_fails_the_batch() -> None:
    class Broken:
        def observe(self, seconds: float) -> None:
            raise ConnectionError("down")

        def snapshot(self) -> tuple[list[int], float, int]:
            raise ConnectionError("down")

    w = World()
    alice = w.user("alice")
    FreshnessRecorder(Broken())(World.post_event(w.next_id(), alice), "feed", [])
