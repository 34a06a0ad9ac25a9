"""The engagement projection: exact counts under redelivery, cascades, tombstones."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from events.accounts import AccountDeleted
from events.engagement import Bookmarked, CommentDeleted, Commented, Liked, Unbookmarked, Unliked
from events.posts import PostCreated, PostDeleted
from events.union import Event
from infra.storage.memory_readmodel import MemoryReadModel
from projections import engagement
from projections.engagement import post_engagement
from projections.engagement.tables import (
    BOOKMARKS,
    COMMENT_POSTS,
    COMMENTS,
    ENGAGEMENT_COUNTS,
    LIKES,
    POST_LIKERS,
    USER_BOOKMARKS,
    USER_COMMENTS,
    USER_LIKES,
)
from projections.registry import all_tables

_ids = itertools.count(1_000_000)
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

AUTHOR, ALICE, BOB = 1, 2, 3
POST, OTHER_POST = 100, 200


def env(aggregate: int, event_id: int | None = None) -> dict[str, Any]:
    return {
        "event_id": event_id if event_id is not None else next(_ids),
        "occurred_at": NOW,
        "actor_id": None,
        "aggregate_id": aggregate,
    }


def liked(user: int, post: int = POST, event_id: int | None = None) -> Liked:
    return Liked(**env(post, event_id), post_id=post, user_id=user, post_author_id=AUTHOR)


def unliked(user: int, post: int = POST) -> Unliked:
    return Unliked(**env(post), post_id=post, user_id=user, post_author_id=AUTHOR)


def commented(user: int, comment_id: int, post: int = POST, text: str = "nice") -> Commented:
    return Commented(
        **env(post, comment_id),
        comment_id=comment_id,
        post_id=post,
        author_id=user,
        post_author_id=AUTHOR,
        text=text,
    )


def bookmarked(user: int, post: int = POST, event_id: int | None = None) -> Bookmarked:
    return Bookmarked(**env(user, event_id), post_id=post, user_id=user)


def created(post: int = POST, author: int = AUTHOR) -> PostCreated:
    return PostCreated(**env(post, post), post_id=post, author_id=author, caption="", media_ids=(1,), audience="public")


def apply(rm: MemoryReadModel, *events: Event) -> None:
    for event in events:
        rm.apply(engagement.project(event, rm))


def counts(rm: MemoryReadModel, post: int = POST) -> tuple[int, int]:
    row = rm.get(ENGAGEMENT_COUNTS.name, {"post_id": post}) or {}
    return int(row.get("like_count") or 0), int(row.get("comment_count") or 0)


def fresh() -> MemoryReadModel:
    rm = MemoryReadModel(all_tables())
    apply(rm, created(POST), created(OTHER_POST))
    return rm


def test_duplicate_liked_counts_once_and_lists_once() -> None:
    rm = fresh()
    event = liked(ALICE)
    apply(rm, event, event, event)
    assert counts(rm) == (1, 0)
    assert [r["user_id"] for r in rm.scan(POST_LIKERS.name, {"post_id": POST})] == [ALICE]


def test_second_liked_with_a_new_id_for_a_standing_like_changes_nothing() -> None:
    rm = fresh()
    apply(rm, liked(ALICE), liked(ALICE))
    assert counts(rm) == (1, 0)
    assert rm.count(POST_LIKERS.name, {"post_id": POST}) == 1


def test_unliked_without_liked_does_not_go_negative() -> None:
    rm = fresh()
    apply(rm, unliked(ALICE), unliked(ALICE))
    assert counts(rm) == (0, 0)
    apply(rm, liked(BOB))
    assert counts(rm) == (1, 0)


def test_like_unlike_like_again_lists_the_newest_like() -> None:
    rm = fresh()
    apply(rm, liked(ALICE, event_id=10), liked(BOB, event_id=11), unliked(ALICE), liked(ALICE, event_id=12))
    assert counts(rm) == (2, 0)
    rows = rm.scan(POST_LIKERS.name, {"post_id": POST}, desc=True)
    assert [(r["like_id"], r["user_id"]) for r in rows] == [(12, ALICE), (11, BOB)]
    assert rm.get(USER_LIKES.name, {"user_id": ALICE, "post_id": POST}) is not None


def test_duplicate_unliked_lowers_once() -> None:
    rm = fresh()
    apply(rm, liked(ALICE), liked(BOB))
    event = unliked(ALICE)
    apply(rm, event, event)
    assert counts(rm) == (1, 0)
    assert rm.get(USER_LIKES.name, {"user_id": ALICE, "post_id": POST}) is None


def test_comments_count_exactly_and_delete_lowers_once() -> None:
    rm = fresh()
    first, second = commented(ALICE, 50), commented(BOB, 51)
    apply(rm, first, first, second)
    assert counts(rm) == (0, 2)
    deleted = CommentDeleted(**env(POST), comment_id=50, post_id=POST, deleted_by=AUTHOR)
    apply(rm, deleted, deleted)
    assert counts(rm) == (0, 1)
    assert [r["comment_id"] for r in rm.scan(COMMENTS.name, {"post_id": POST})] == [51]
    assert rm.get(COMMENT_POSTS.name, {"comment_id": 50}) is None
    assert rm.scan(USER_COMMENTS.name, {"author_id": ALICE}) == []


def test_comment_row_keeps_text_and_time() -> None:
    rm = fresh()
    apply(rm, commented(ALICE, 50, text="hello @bob"))
    row = rm.get(COMMENTS.name, {"post_id": POST, "comment_id": 50})
    assert row is not None
    assert row["text"] == "hello @bob"
    assert row["created_at"] == "2026-01-02T03:04:05Z"
    assert row["author_id"] == ALICE


def test_bookmarks_are_a_set_newest_first() -> None:
    rm = fresh()
    apply(rm, bookmarked(ALICE, POST, 10), bookmarked(ALICE, POST, 11), bookmarked(ALICE, OTHER_POST, 12))
    rows = rm.scan(USER_BOOKMARKS.name, {"user_id": ALICE}, desc=True)
    assert [r["post_id"] for r in rows] == [OTHER_POST, POST]
    apply(rm, Unbookmarked(**env(ALICE), post_id=POST, user_id=ALICE))
    apply(rm, Unbookmarked(**env(ALICE), post_id=POST, user_id=ALICE))
    assert [r["post_id"] for r in rm.scan(USER_BOOKMARKS.name, {"user_id": ALICE})] == [OTHER_POST]
    assert rm.get(BOOKMARKS.name, {"post_id": POST, "user_id": ALICE}) is None


def test_post_deleted_removes_every_trace_of_the_post() -> None:
    rm = fresh()
    apply(
        rm,
        liked(ALICE),
        liked(BOB),
        liked(ALICE, OTHER_POST),
        commented(ALICE, 50),
        commented(BOB, 51, OTHER_POST),
        bookmarked(BOB),
        bookmarked(BOB, OTHER_POST),
    )
    apply(rm, PostDeleted(**env(POST), post_id=POST, author_id=AUTHOR))
    assert counts(rm) == (0, 0)
    assert rm.get(ENGAGEMENT_COUNTS.name, {"post_id": POST}) is None
    for table in (LIKES, POST_LIKERS, COMMENTS, BOOKMARKS):
        assert rm.count(table.name, {"post_id": POST}) == 0
    assert [r["post_id"] for r in rm.scan(USER_LIKES.name, {"user_id": ALICE})] == [OTHER_POST]
    assert rm.scan(USER_LIKES.name, {"user_id": BOB}) == []
    assert rm.scan(USER_COMMENTS.name, {"author_id": ALICE}) == []
    assert rm.get(COMMENT_POSTS.name, {"comment_id": 50}) is None
    assert [r["post_id"] for r in rm.scan(USER_BOOKMARKS.name, {"user_id": BOB})] == [OTHER_POST]
    # the other post is untouched
    assert counts(rm, OTHER_POST) == (1, 1)


def test_engagement_arriving_after_post_deleted_is_ignored() -> None:
    rm = fresh()
    apply(rm, PostDeleted(**env(POST), post_id=POST, author_id=AUTHOR))
    apply(rm, liked(ALICE), commented(ALICE, 50), bookmarked(ALICE))
    assert counts(rm) == (0, 0)
    assert rm.count(LIKES.name, {"post_id": POST}) == 0
    assert rm.scan(USER_BOOKMARKS.name, {"user_id": ALICE}) == []
    assert rm.scan(USER_COMMENTS.name, {"author_id": ALICE}) == []


def test_account_deleted_removes_the_users_likes_comments_bookmarks_and_lowers_counts() -> None:
    rm = fresh()
    apply(
        rm,
        liked(ALICE),
        liked(BOB),
        liked(ALICE, OTHER_POST),
        commented(ALICE, 50),
        commented(BOB, 51),
        commented(ALICE, 52, OTHER_POST),
        bookmarked(ALICE),
        bookmarked(BOB),
    )
    event = AccountDeleted(**env(ALICE), user_id=ALICE)
    apply(rm, event, event)
    assert counts(rm) == (1, 1)
    assert counts(rm, OTHER_POST) == (0, 0)
    assert [r["user_id"] for r in rm.scan(POST_LIKERS.name, {"post_id": POST})] == [BOB]
    assert [r["author_id"] for r in rm.scan(COMMENTS.name, {"post_id": POST})] == [BOB]
    assert rm.get(COMMENT_POSTS.name, {"comment_id": 50}) is None
    assert rm.get(BOOKMARKS.name, {"post_id": POST, "user_id": ALICE}) is None
    assert rm.get(BOOKMARKS.name, {"post_id": POST, "user_id": BOB}) is not None
    for table, column in ((USER_LIKES, "user_id"), (USER_COMMENTS, "author_id"), (USER_BOOKMARKS, "user_id")):
        assert rm.scan(table.name, {column: ALICE}) == []
    # a late like by the deleted user does not come back
    apply(rm, liked(ALICE, event_id=999))
    assert counts(rm) == (1, 1)


def test_account_deleted_clears_engagement_on_the_authors_posts() -> None:
    rm = fresh()
    apply(rm, liked(ALICE), commented(BOB, 50), bookmarked(BOB), bookmarked(BOB, OTHER_POST))
    apply(rm, AccountDeleted(**env(AUTHOR), user_id=AUTHOR))
    for post in (POST, OTHER_POST):
        assert rm.get(ENGAGEMENT_COUNTS.name, {"post_id": post}) is None
        assert rm.count(LIKES.name, {"post_id": post}) == 0
    assert rm.scan(USER_LIKES.name, {"user_id": ALICE}) == []
    assert rm.scan(USER_COMMENTS.name, {"author_id": BOB}) == []
    assert rm.scan(USER_BOOKMARKS.name, {"user_id": BOB}) == []


def test_post_engagement_reports_counts_and_the_viewers_flags() -> None:
    rm = fresh()
    apply(rm, liked(ALICE), liked(BOB), commented(BOB, 50), bookmarked(ALICE))
    result = post_engagement(rm, [POST, OTHER_POST], ALICE)
    assert result[POST] == {"like_count": 2, "comment_count": 1, "liked": True, "bookmarked": True}
    assert result[OTHER_POST] == {"like_count": 0, "comment_count": 0, "liked": False, "bookmarked": False}
    anonymous = post_engagement(rm, [POST], None)
    assert anonymous[POST] == {"like_count": 2, "comment_count": 1, "liked": False, "bookmarked": False}
    assert post_engagement(rm, [POST], BOB)[POST]["bookmarked"] is False


@given(st.lists(st.tuples(st.booleans(), st.sampled_from([ALICE, BOB, 4, 5]), st.booleans()), max_size=40))
def test_like_count_equals_the_set_of_likers_under_duplicate_delivery(
    steps: list[tuple[bool, int, bool]],
) -> None:
    rm = fresh()
    likers: set[int] = set()
    for is_like, user, delivered_twice in steps:
        event: Event = liked(user) if is_like else unliked(user)
        apply(rm, *([event, event] if delivered_twice else [event]))
        likers = likers | {user} if is_like else likers - {user}
    assert counts(rm)[0] == len(likers)
    assert {r["user_id"] for r in rm.scan(LIKES.name, {"post_id": POST})} == likers
    assert {r["user_id"] for r in rm.scan(POST_LIKERS.name, {"post_id": POST})} == likers


def _digest(rm: MemoryReadModel) -> dict[str, list[tuple[Any, ...]]]:
    """Every engagement row, with all-zero count rows (a count that went up and down) left out."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in engagement.PROJECTION.tables:
        rows = rm.scan(table.name, {})
        if table is ENGAGEMENT_COUNTS:
            rows = [r for r in rows if r["like_count"] or r["comment_count"]]
        out[table.name] = sorted(tuple(sorted(r.items())) for r in rows)
    return out


def _chains(delete_post: bool, delete_alice: bool, delete_author: bool) -> list[list[Event]]:
    """Per-key histories (a key's events stay in order); nothing is assumed across keys."""
    alices_post = 300
    alice_posted = PostCreated(
        **env(alices_post, alices_post),
        post_id=alices_post,
        author_id=ALICE,
        caption="",
        media_ids=(1,),
        audience="public",
    )
    chains: list[list[Event]] = [
        [created(POST)] + ([PostDeleted(**env(POST), post_id=POST, author_id=AUTHOR)] if delete_post else []),
        [alice_posted],
        [
            liked(ALICE, event_id=10),
            liked(BOB, event_id=11),
            commented(ALICE, 12),
            commented(BOB, 13),
            unliked(BOB),
            CommentDeleted(**env(POST), comment_id=13, post_id=POST, deleted_by=BOB),
            commented(BOB, 14),
        ],
        [
            Liked(**env(alices_post, 20), post_id=alices_post, user_id=BOB, post_author_id=ALICE),
            Commented(
                **env(alices_post, 21),
                comment_id=21,
                post_id=alices_post,
                author_id=BOB,
                post_author_id=ALICE,
                text="x",
            ),
        ],
        [bookmarked(ALICE, POST, 30), bookmarked(ALICE, alices_post, 31)],
        [
            bookmarked(BOB, POST, 32),
            Unbookmarked(**env(BOB), post_id=POST, user_id=BOB),
            bookmarked(BOB, alices_post, 33),
            bookmarked(BOB, POST, 34),
        ],
    ]
    if delete_alice:
        chains.append([AccountDeleted(**env(ALICE), user_id=ALICE)])
    if delete_author:
        chains.append([AccountDeleted(**env(AUTHOR), user_id=AUTHOR)])
    return chains


@given(st.booleans(), st.booleans(), st.booleans(), st.data())
def test_any_interleaving_across_keys_converges(
    delete_post: bool, delete_alice: bool, delete_author: bool, data: st.DataObject
) -> None:
    chains = _chains(delete_post, delete_alice, delete_author)
    in_order = MemoryReadModel(all_tables())
    for chain in chains:
        apply(in_order, *chain)
    tags = [i for i, chain in enumerate(chains) for _ in chain]
    shuffled = MemoryReadModel(all_tables())
    cursors = [0] * len(chains)
    for i in data.draw(st.permutations(tags)):
        event = chains[i][cursors[i]]
        cursors[i] += 1
        apply(shuffled, *([event, event] if data.draw(st.booleans()) else [event]))
    assert _digest(shuffled) == _digest(in_order)
