"""Privacy-filtered paging (query_api.post_views.collect_visible) over the feed table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.feed import FEED
from projections.privacy import Privacy
from projections.store import Gets, Put, Row, Scan, get_each, scan_each
from query_api.feed import feed_page
from query_api.post_views import collect_visible, post_views
from query_api.request_reads import RequestReads
from tests.unit.feed_world import FeedWorld
from tests.unit.posts_world import World


def setup(hidden: int, shown: int) -> tuple[World, int, list[int]]:
    """bob follows alice; his feed also holds `hidden` stale entries of a private stranger."""
    w = World()
    alice, bob, eve = w.user("alice"), w.user("bob"), w.user("eve", private=True)
    w.follow(bob, alice)
    visible = [w.post(alice) for _ in range(shown)]
    stale = [w.post(eve) for _ in range(hidden)]
    w.read.apply([Put(FEED.name, {"user_id": bob, "post_id": p, "author_id": eve}) for p in stale])
    return w, bob, visible


def pages(w: World, viewer: int, limit: int) -> list[list[int]]:
    privacy = Privacy(w.read)

    def fetch(before: int | None, n: int) -> list[Row]:
        return w.read.scan(FEED.name, {"user_id": viewer}, before=before, desc=True, limit=n)

    out: list[list[int]] = []
    cursor: int | None = None
    while True:
        rows, cursor = collect_visible(w.read, privacy, fetch, viewer, limit, cursor)
        out.append([int(r["post_id"]) for r in rows])
        if cursor is None:
            return out


def test_pages_are_full_when_hidden_entries_are_few() -> None:
    w, bob, visible = setup(hidden=5, shown=4)
    assert pages(w, bob, 2) == [visible[:1:-1], visible[1::-1]]


def test_exact_fit_has_no_next_page() -> None:
    w, bob, visible = setup(hidden=0, shown=3)
    assert pages(w, bob, 3) == [visible[::-1]]


def test_a_flood_of_hidden_entries_gives_short_pages_never_wrong_ones() -> None:
    w, bob, visible = setup(hidden=450, shown=2)  # stale entries are newer than the visible ones
    got = pages(w, bob, 1)
    assert [p for page in got for p in page] == visible[::-1]
    assert got[0] == []  # the scan budget ran out before anything visible: short page, with a cursor
    assert len(got) > 2


def test_empty_feed() -> None:
    w = World()
    bob = w.user("bob")
    assert pages(w, bob, 20) == [[]]


def test_post_views_leave_out_what_the_viewer_may_not_see() -> None:
    w = World()
    alice, bob = w.user("alice"), w.user("bob")
    m = w.media(alice)
    public, followers = w.post(alice, media=(m, 999)), w.post(alice, audience="followers")
    rows = w.read.get_many("posts", [{"post_id": followers}, {"post_id": public}])
    views = post_views(w.read, Privacy(w.read), rows, bob)
    assert [v["id"] for v in views] == [str(public)]
    assert [x["id"] for x in views[0]["media"]] == [str(m)]  # a missing media item is left out
    assert [v["id"] for v in post_views(w.read, Privacy(w.read), rows, alice)] == [str(followers), str(public)]


class RoundTrips:
    """A read model that counts the requests a remote store would see: each call is one
    round trip (a `get_many_each` sends all its tables together)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return method(*args, **kwargs)

        return counted

    def get_many_each(self, gets: Sequence[Gets]) -> list[list[Row]]:
        self.calls.append("get_many_each")
        return get_each(self.inner, gets)

    def scan_many(self, scans: Sequence[Scan]) -> list[list[Row]]:
        self.calls.append("scan_many")
        return scan_each(self.inner, scans)


def test_a_feed_page_reads_its_posts_then_everything_else_in_one_batch() -> None:
    w = FeedWorld(strategy="push")
    viewer, friends = w.user("viewer"), [w.user(f"f{i}") for i in range(6)]
    for f in friends:
        w.follow(viewer, f)
    w.block(friends[5], viewer)  # leaves a few of the page's posts hidden
    for _ in range(3):
        for f in friends:
            w.post(f, media=(w.media(f),))
    remote = RoundTrips(w.read)
    read = RequestReads(remote)
    rows, cursor = feed_page(read, viewer, w.policy, 10, None)
    views = post_views(read, Privacy(read), rows, viewer)
    assert len(views) == 10 and cursor is not None
    reads = [c for c in remote.calls if not c.startswith("scan")]  # (the feed's own scans go out in batches too)
    assert reads == ["get_many_each", "get_many_each"]  # the page's posts, then everything else they need
    plain = post_views(w.read, Privacy(w.read), feed_page(w.read, viewer, w.policy, 10, None)[0], viewer)
    assert views == plain
