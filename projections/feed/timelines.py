"""Reading feeds as ordered streams of (post id, author id), newest first, and merging them.

A *source* answers `source(before, n)`: up to `n` entries with post ids below `before`
(None: from the newest), newest first. The durable feed, an author's own posts and an
author's pulled (celebrity) posts are sources; `merge_desc` merges any number of them
into one, so the home feed is the same kind of thing whichever strategy built it:

- push: the user's durable feed, down to its horizon; below it, the pull merge;
- hybrid: the same, plus the pulled posts of the celebrities the user follows;
- pull: the merge of the user's own posts and every followee's.

Everything here only reads, so both the projection (backfill, rebuild) and the query
path use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from projections.feed.tables import FEED, FEED_HORIZON, FEED_PULLED_AUTHORS, FEED_PULLED_POSTS, PULLED_SCOPE
from projections.graph import BLOCKED_BY, BLOCKS, FOLLOWING
from projections.posts import USER_POSTS
from projections.profile import ACCOUNTS
from projections.store import ReadModel

Entry = tuple[int, int]  # (post_id, author_id)
Source = Callable[[int | None, int], list[Entry]]


def merge_desc(sources: Sequence[Source], before: int | None, n: int) -> list[Entry]:
    """The `n` newest entries below `before` of all sources together, without duplicates.

    Each round asks every source for what is still missing. A source that answered in
    full may hold more below its last entry, so only the entries at or above the
    highest such "last entry" are certain; the round keeps those and the next round
    starts below them. Each round keeps at least one entry, so it ends.
    """
    out: list[Entry] = []
    seen: set[int] = set()
    cursor = before
    live = list(sources)
    while len(out) < n and live:
        want = n - len(out)
        batches = [source(cursor, want) for source in live]
        floor = max((b[-1][0] for b in batches if len(b) >= want), default=None)
        pool: dict[int, Entry] = {}
        for batch in batches:
            for entry in batch:
                pool.setdefault(entry[0], entry)
        for post_id in sorted(pool, reverse=True):
            if floor is not None and post_id < floor:
                break
            if post_id not in seen:
                seen.add(post_id)
                out.append(pool[post_id])
        if floor is None:
            break  # every source ran dry below the cursor: nothing more anywhere
        cursor = floor
        live = [source for source, batch in zip(live, batches, strict=True) if batch]
    return out[:n]


def durable_feed(read: ReadModel, user_id: int) -> Source:
    def source(before: int | None, n: int) -> list[Entry]:
        rows = read.scan(FEED.name, {"user_id": user_id}, before=before, desc=True, limit=n)
        return [(int(r["post_id"]), int(r["author_id"])) for r in rows]

    return source


def author_posts(read: ReadModel, author_id: int) -> Source:
    """Every live post of the author (the posts projection's timeline)."""

    def source(before: int | None, n: int) -> list[Entry]:
        rows = read.scan(USER_POSTS.name, {"author_id": author_id}, before=before, desc=True, limit=n)
        return [(int(r["post_id"]), author_id) for r in rows]

    return source


def pulled_posts(read: ReadModel, author_id: int) -> Source:
    """The author's posts that were not fanned out."""

    def source(before: int | None, n: int) -> list[Entry]:
        rows = read.scan(FEED_PULLED_POSTS.name, {"author_id": author_id}, before=before, desc=True, limit=n)
        return [(int(r["post_id"]), author_id) for r in rows]

    return source


def above(source: Source, horizon: int) -> Source:
    """Only the entries above `horizon` (a source that stops there counts as dry)."""
    if horizon <= 0:
        return source

    def cut(before: int | None, n: int) -> list[Entry]:
        if before is not None and before <= horizon + 1:
            return []
        return [e for e in source(before, n) if e[0] > horizon]

    return cut


def horizon_of(read: ReadModel, user_id: int) -> int:
    rows = read.scan(FEED_HORIZON.name, {"user_id": user_id}, desc=True, limit=1)
    return int(rows[0]["horizon"]) if rows else 0


def visible_authors(read: ReadModel, user_id: int) -> list[int]:
    """The user and every followee whose posts the user may see.

    Following an author means seeing all their posts (private account and followers-only
    audience included) unless a block stands between them or the account is gone, so
    the check is Privacy.can_see_account per author, done here in three batched reads
    instead of three per followee.
    """
    followees = [int(r["followee_id"]) for r in read.scan(FOLLOWING.name, {"follower_id": user_id})]
    blocked = {int(r["blocked_id"]) for r in read.scan(BLOCKS.name, {"blocker_id": user_id})}
    blocked |= {int(r["blocker_id"]) for r in read.scan(BLOCKED_BY.name, {"blocked_id": user_id})}
    authors = [user_id] + [a for a in followees if a != user_id and a not in blocked]
    exist = {int(r["user_id"]) for r in read.get_many(ACCOUNTS.name, [{"user_id": a} for a in authors])}
    return [a for a in authors if a in exist]


def followed_celebrities(read: ReadModel, user_id: int) -> list[int]:
    """Authors with pulled posts whom the user follows (or is)."""
    celebrities = [int(r["author_id"]) for r in read.scan(FEED_PULLED_AUTHORS.name, {"scope": PULLED_SCOPE})]
    if not celebrities:
        return []
    keys = [{"follower_id": user_id, "followee_id": c} for c in celebrities if c != user_id]
    followed = {int(r["followee_id"]) for r in read.get_many(FOLLOWING.name, keys)}
    return [c for c in celebrities if c == user_id or c in followed]


def pull_feed(read: ReadModel, user_id: int) -> Source:
    """The whole logical feed merged from the authors' own posts (no fan-out needed)."""
    sources = [author_posts(read, a) for a in visible_authors(read, user_id)]

    def source(before: int | None, n: int) -> list[Entry]:
        return merge_desc(sources, before, n)

    return source


def hybrid_feed(read: ReadModel, user_id: int) -> Source:
    """Pushed entries and followed celebrities' pulled posts above the durable feed's
    horizon; below it, the pull merge (which holds every post, pushed or not)."""
    horizon = horizon_of(read, user_id)
    top = [above(durable_feed(read, user_id), horizon)]
    top += [above(pulled_posts(read, c), horizon) for c in followed_celebrities(read, user_id)]
    deep: list[Source] = []  # built on first use: it reads the whole followee list

    def source(before: int | None, n: int) -> list[Entry]:
        found = merge_desc(top, before, n)
        if len(found) == n or horizon <= 0:
            return found
        if not deep:
            deep.append(pull_feed(read, user_id))
        below = horizon + 1 if before is None else min(before, horizon + 1)
        return found + deep[0](below, n - len(found))

    return source
