"""List paging over the graph: filtering after the scan, short pages, bounded work."""

from __future__ import annotations

import pytest

import query_api.graph as graph_queries
from infra.storage.memory_readmodel import MemoryReadModel
from projections.graph import BLOCKS, FOLLOWERS, follow_ops
from projections.privacy import Privacy
from projections.profile import ACCOUNTS
from projections.registry import all_tables
from projections.store import Delete, Put, SetAdd
from query_api.graph import users_page

STAR, VIEWER = 1, 2
FANS = list(range(100, 120))


@pytest.fixture
def read() -> MemoryReadModel:
    read = MemoryReadModel(all_tables())
    for user in [STAR, VIEWER, *FANS]:
        read.apply(
            [
                Put(
                    ACCOUNTS.name,
                    {"user_id": user, "username": f"u{user}", "display_name": "", "bio": "", "private": False},
                )
            ]
        )
    for fan in FANS:
        read.apply(follow_ops(fan, STAR, since_id=fan))
    return read


def page_of(
    read: MemoryReadModel, after: int | None, limit: int, viewer: int | None = VIEWER
) -> tuple[list[int], int | None]:
    rows, nxt = users_page(
        read, Privacy(read), viewer, FOLLOWERS.name, {"followee_id": STAR}, "follower_id", after, limit
    )
    return [r["user_id"] for r in rows], nxt


def walk(read: MemoryReadModel, limit: int) -> list[list[int]]:
    pages, after = [], None
    while True:
        ids, after = page_of(read, after, limit)
        pages.append(ids)
        if after is None:
            return pages


def test_pages_cover_everything_once(read: MemoryReadModel) -> None:
    pages = walk(read, 7)
    assert [len(p) for p in pages] == [7, 7, 6]
    assert [u for p in pages for u in p] == FANS


def test_exact_multiple_ends_without_an_empty_page(read: MemoryReadModel) -> None:
    pages = walk(read, 10)
    assert [len(p) for p in pages] == [10, 10]


def test_blocked_and_deleted_users_are_skipped_but_pages_stay_full(read: MemoryReadModel) -> None:
    hidden = set(FANS[1:12:2])
    for fan in sorted(hidden)[:3]:
        read.apply([SetAdd(BLOCKS.name, {"blocker_id": fan, "blocked_id": VIEWER, "since_id": 1})])
    for fan in sorted(hidden)[3:]:
        read.apply([SetAdd(BLOCKS.name, {"blocker_id": VIEWER, "blocked_id": fan, "since_id": 1})])
    gone = FANS[-1]
    read.apply([Delete(ACCOUNTS.name, {"user_id": gone})])
    pages = walk(read, 5)
    visible = [u for u in FANS if u not in hidden and u != gone]
    assert [u for p in pages for u in p] == visible
    assert all(len(p) == 5 for p in pages[:-1])
    # Anonymous readers see blocked users (no viewer to block), never deleted ones.
    ids, _ = page_of(read, None, 100, viewer=None)
    assert ids == FANS[:-1]


def test_scan_budget_gives_a_short_page_that_resumes(read: MemoryReadModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph_queries, "LIST_SCAN_CAP", 4)
    for fan in FANS[:10]:
        read.apply([SetAdd(BLOCKS.name, {"blocker_id": VIEWER, "blocked_id": fan, "since_id": 1})])
    ids, after = page_of(read, None, 3)
    assert ids == [] and after == FANS[3]  # four rows read, all hidden: resume after the fourth
    pages = walk(read, 3)
    assert [u for p in pages for u in p] == FANS[10:]
