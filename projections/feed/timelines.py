"""Reading feeds as ordered streams of (post id, author id), newest first, and merging them.

A *source* answers `source(before, n)`: up to `n` entries with post ids below `before`
(None: from the newest), newest first. The durable feed, an author's own posts and an
author's pulled (celebrity) posts are sources; `merge_desc` merges any number of them
into one, so the home feed is the same kind of thing whichever strategy built it:

- push: the user's durable feed, down to its horizon; below it, the pull merge;
- hybrid: the same, plus the pulled posts of the celebrities the user follows;
- pull: the merge of the user's own posts and every followee's.

Everything here only reads, so both the projection (backfill, rebuild) and the query
path use it. Most sources are a `Timeline`, one scan of one table: a merge asks all of
its timelines at once (`scan_each`), which over a remote store is one round trip per
round instead of one per followee.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from projections.feed.tables import FEED, FEED_HORIZON, FEED_PULLED_AUTHORS, FEED_PULLED_POSTS, PULLED_SCOPE
from projections.graph import BLOCKED_BY, BLOCKS, FOLLOWING
from projections.posts import USER_POSTS
from projections.profile import ACCOUNTS
from projections.store import Key, ReadModel, Row, Scan, scan_each

Entry = tuple[int, int]  # (post_id, author_id)
Source = Callable[[int | None, int], list[Entry]]


@dataclass(frozen=True)
class Timeline:
    """A source that is one table's rows under `prefix`, by post id, newest first, and
    only those above `floor` (a source that stops there counts as dry).

    `author_id` is every entry's author, or None if each row names its own.
    """

    read: ReadModel
    table: str
    prefix: Key
    author_id: int | None = None
    floor: int = 0

    def scan(self, before: int | None, n: int) -> Scan | None:
        if self.floor > 0 and before is not None and before <= self.floor + 1:
            return None
        return Scan(self.table, self.prefix, before=before, desc=True, limit=n)

    def entries(self, rows: Sequence[Row]) -> list[Entry]:
        fixed = self.author_id
        found = [(int(r["post_id"]), fixed if fixed is not None else int(r["author_id"])) for r in rows]
        return [e for e in found if e[0] > self.floor] if self.floor > 0 else found

    def __call__(self, before: int | None, n: int) -> list[Entry]:
        return _ask([self], before, n)[0]


def _ask(sources: Sequence[Source], before: int | None, n: int) -> list[list[Entry]]:
    """Every source's entries below `before`: the timelines over one read model in one `scan_each`."""
    answers: list[list[Entry] | None] = [None] * len(sources)
    groups: dict[int, list[tuple[int, Timeline, Scan]]] = {}
    for i, source in enumerate(sources):
        if not isinstance(source, Timeline):
            answers[i] = source(before, n)
        elif (scan := source.scan(before, n)) is None:
            answers[i] = []
        else:
            groups.setdefault(id(source.read), []).append((i, source, scan))
    for group in groups.values():
        rows = scan_each(group[0][1].read, [scan for _, _, scan in group])
        for (i, timeline, _), found in zip(group, rows, strict=True):
            answers[i] = timeline.entries(found)
    return [a if a is not None else [] for a in answers]


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
        batches = _ask(live, cursor, want)
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


def durable_feed(read: ReadModel, user_id: int, floor: int = 0) -> Timeline:
    return Timeline(read, FEED.name, {"user_id": user_id}, None, floor)


def author_posts(read: ReadModel, author_id: int) -> Timeline:
    """Every live post of the author (the posts projection's timeline)."""
    return Timeline(read, USER_POSTS.name, {"author_id": author_id}, author_id)


def pulled_posts(read: ReadModel, author_id: int, floor: int = 0) -> Timeline:
    """The author's posts that were not fanned out."""
    return Timeline(read, FEED_PULLED_POSTS.name, {"author_id": author_id}, author_id, floor)


def _horizon_scan(user_id: int) -> Scan:
    return Scan(FEED_HORIZON.name, {"user_id": user_id}, desc=True, limit=1)


def _horizon(rows: Sequence[Row]) -> int:
    return int(rows[0]["horizon"]) if rows else 0


def horizon_of(read: ReadModel, user_id: int) -> int:
    scan = _horizon_scan(user_id)
    return _horizon(read.scan(scan.table, scan.prefix, desc=scan.desc, limit=scan.limit))


def visible_authors(read: ReadModel, user_id: int) -> list[int]:
    """The user and every followee whose posts the user may see.

    Following an author means seeing all their posts (private account and followers-only
    audience included) unless a block stands between them or the account is gone, so
    the check is Privacy.can_see_account per author, done here in two batched reads
    instead of three per followee.
    """
    following, blocks, blocked_by = scan_each(
        read,
        [
            Scan(FOLLOWING.name, {"follower_id": user_id}),
            Scan(BLOCKS.name, {"blocker_id": user_id}),
            Scan(BLOCKED_BY.name, {"blocked_id": user_id}),
        ],
    )
    blocked = {int(r["blocked_id"]) for r in blocks} | {int(r["blocker_id"]) for r in blocked_by}
    followees = [int(r["followee_id"]) for r in following]
    authors = [user_id] + [a for a in followees if a != user_id and a not in blocked]
    exist = {int(r["user_id"]) for r in read.get_many(ACCOUNTS.name, [{"user_id": a} for a in authors])}
    return [a for a in authors if a in exist]


# How many rows of each side `hybrid_feed` reads in its first round: the viewer's followees
# and the pulled (celebrity) authors. Both grow with the graph (a million users had 170
# celebrities at a 1,000-follower threshold), so a page must not read either in full when
# the other is small: it intersects from the side that came back complete.
FOLLOWEES_PEEK = 256
CELEBRITIES_PEEK = 16


def _celebrity_scans(user_id: int) -> list[Scan]:
    return [
        Scan(FOLLOWING.name, {"follower_id": user_id}, limit=FOLLOWEES_PEEK + 1),
        Scan(FEED_PULLED_AUTHORS.name, {"scope": PULLED_SCOPE}, limit=CELEBRITIES_PEEK + 1),
    ]


def _followed_celebrities(
    read: ReadModel, user_id: int, following_rows: Sequence[Row], celebrity_rows: Sequence[Row]
) -> list[int]:
    """The pulled authors whom the user follows (or is), from the first `_celebrity_scans`
    rows: a page costs about min(followees, celebrities) reads, not the celebrity count."""
    if len(celebrity_rows) <= CELEBRITIES_PEEK:
        celebrities = [int(r["author_id"]) for r in celebrity_rows]
        if len(following_rows) <= FOLLOWEES_PEEK:
            followees = {int(r["followee_id"]) for r in following_rows}
        else:
            keys = [{"follower_id": user_id, "followee_id": c} for c in celebrities if c != user_id]
            followees = {int(r["followee_id"]) for r in read.get_many(FOLLOWING.name, keys)}
        return [c for c in celebrities if c == user_id or c in followees]
    if len(following_rows) > FOLLOWEES_PEEK:
        following_rows = read.scan(FOLLOWING.name, {"follower_id": user_id})
    authors = [user_id] + [int(r["followee_id"]) for r in following_rows]
    keys = [{"scope": PULLED_SCOPE, "author_id": a} for a in authors]
    return sorted(int(r["author_id"]) for r in read.get_many(FEED_PULLED_AUTHORS.name, keys))


def pull_feed(read: ReadModel, user_id: int) -> Source:
    """The whole logical feed merged from the authors' own posts (no fan-out needed)."""
    sources = [author_posts(read, a) for a in visible_authors(read, user_id)]

    def source(before: int | None, n: int) -> list[Entry]:
        return merge_desc(sources, before, n)

    return source


def hybrid_feed(read: ReadModel, user_id: int) -> Source:
    """Pushed entries and followed celebrities' pulled posts above the durable feed's
    horizon; below it, the pull merge (which holds every post, pushed or not)."""
    horizon_rows, following_rows, celebrity_rows = scan_each(read, [_horizon_scan(user_id), *_celebrity_scans(user_id)])
    horizon = _horizon(horizon_rows)
    top: list[Source] = [durable_feed(read, user_id, horizon)]
    celebrities = _followed_celebrities(read, user_id, following_rows, celebrity_rows)
    top += [pulled_posts(read, c, horizon) for c in celebrities]
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
