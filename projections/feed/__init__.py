"""Home feeds (DESIGN.md section 5): fan-out on write, merge on read, or both.

What a feed *is* does not depend on how it is built: the home feed of U is every
live post of U and of the accounts U follows that Privacy lets U see, newest first
(query_api/feed.py reads it; `timelines` has the sources). The strategy only decides
where the entries come from:

- push: on PostCreated the post id goes into the author's and every follower's
  durable feed (FEED). Reads page through FEED.
- pull: nothing is fanned out; a page is merged from the author timelines of U and
  U's followees at read time.
- hybrid: authors with more followers than `celebrity_threshold` *when they post*
  (a count derived from events, so replay decides the same) are not pushed: their
  posts go to FEED_PULLED_POSTS and readers merge those of the celebrities they
  follow. Other posts are pushed, but only to followers who read their feed within
  `active_window_seconds` before the post (asked of the `ActivityStore` port, one
  call per chunk of `chunk` followers); the skipped ones are marked, and their next
  read rebuilds their feed from their followees' posts (`rebuild_ops`, applied by
  the read path) before serving it.

Durable feeds are heads. FEED keeps about `cap` newest entries per user: pushes trim
on a sample of (post, user) pairs (a count per push would cost a read per follower),
backfill and rebuild trim exactly. Whatever a feed loses at its bottom (trimmed,
older than a backfill, deeper than a rebuild) raises its horizon (FEED_HORIZON):
above the horizon FEED holds every post of the logical feed; below it, readers merge
from the author timelines. So deep pages never end early, whatever was cut.

Follow backfills the followee's newest `backfill` posts; unfollow and block (both
ways) remove the author's entries; PostDeleted and AccountDeleted remove posts from
every feed through the by-post index. Entries left behind by races with the read
path's rebuild are harmless: every page re-checks that the post exists, that U
follows (or is) its author, and Privacy. There is no post-audience-change event;
a private switch is covered by the same read-time check. A post or a follow applied
after the deletion of an account it names (streams are ordered per key only) is
ignored, as in the posts and graph projections: the deletion already removed whatever
it would add (docs/replay.md: what still depends on the order in the hybrid strategy).

Purity and replay: a projection is a function of (event, read port) plus its
policy and activity port, bound by `make_projection` (both composition roots build
it from the settings; the registry's default is push with everyone active, today's
behaviour). Activity is not in the log, and the read path writes rebuilt feeds, so
the tables in `ACTIVITY_DEPENDENT` are a cache that a replay (which sees everyone as
active) may rebuild differently; the logical feed is the same. The other feed tables
are derived from events alone. A different policy changes the output for the same
log: switching the strategy of an existing deployment needs a rebuild of this
projection, except towards pull (which reads no feed tables).

Every operation is a Put or Delete keyed by ids, so redelivering an event leaves the
same state (the sampled trim decides by the ids, and counts only what is there).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from events.accounts import AccountDeleted
from events.graph import Blocked, Followed, Unfollowed
from events.posts import PostCreated, PostDeleted
from events.union import Event
from projections.feed import timelines
from projections.feed.activity import EVERYONE_ACTIVE, ActivityStore
from projections.feed.tables import (
    ACTIVITY_DEPENDENT,
    FEED,
    FEED_AUTHOR_POSTS,
    FEED_BY_POST,
    FEED_HORIZON,
    FEED_PULLED_AUTHORS,
    FEED_PULLED_POSTS,
    PULLED_SCOPE,
    TABLES,
)
from projections.graph import BLOCKED_BY, BLOCKS, FOLLOWERS, GRAPH_COUNTS
from projections.privacy import Privacy
from projections.profile import deleted
from projections.projection import Projection
from projections.store import Delete, Op, Put, ReadModel

__all__ = [
    "ACTIVITY_DEPENDENT",
    "BACKFILL_LIMIT",
    "FEED",
    "FEED_AUTHOR_POSTS",
    "FEED_BY_POST",
    "FEED_CAP",
    "FEED_HORIZON",
    "FEED_PULLED_AUTHORS",
    "FEED_PULLED_POSTS",
    "PROJECTION",
    "TABLES",
    "FeedPolicy",
    "insert_capped",
    "make_projection",
    "rebuild_ops",
]

FEED_CAP = 800
BACKFILL_LIMIT = 50
REBUILD_DEPTH = 200
# A push checks its feed's size once in this many (post, user) pairs (fewer for small caps,
# so a feed overshoots its cap by a small fraction of it).
TRIM_SAMPLE = 16

Strategy = Literal["push", "pull", "hybrid"]


@dataclass(frozen=True)
class FeedPolicy:
    strategy: Strategy = "push"
    cap: int = FEED_CAP
    backfill: int = BACKFILL_LIMIT
    celebrity_threshold: int = 10_000
    active_window_seconds: int = 7 * 24 * 3600
    chunk: int = 1000
    rebuild_depth: int = REBUILD_DEPTH

    def __post_init__(self) -> None:
        if self.cap < 1 or self.backfill < 0 or self.chunk < 1 or self.rebuild_depth < 1:
            raise ValueError("the feed cap, chunk and rebuild depth must be positive and the backfill not negative")
        if self.celebrity_threshold < 0 or self.active_window_seconds < 0:
            raise ValueError("the celebrity threshold and the active window must not be negative")
        if self.strategy not in ("push", "pull", "hybrid"):
            raise ValueError(f"unknown feed strategy {self.strategy!r}")


# -- writing one feed ------------------------------------------------------------


def _add(user_id: int, post_id: int, author_id: int) -> list[Op]:
    return [
        Put(FEED.name, {"user_id": user_id, "post_id": post_id, "author_id": author_id}),
        Put(FEED_BY_POST.name, {"post_id": post_id, "user_id": user_id}),
    ]


def _drop(user_id: int, post_id: int) -> list[Op]:
    return [
        Delete(FEED.name, {"user_id": user_id, "post_id": post_id}),
        Delete(FEED_BY_POST.name, {"post_id": post_id, "user_id": user_id}),
    ]


def _raise_horizon(read: ReadModel, user_id: int, horizon: int, current: int | None = None) -> list[Op]:
    """`current`: the horizon as the caller read it, in the same projection step (else read here)."""
    if current is None:
        current = timelines.horizon_of(read, user_id)
    if horizon <= current:
        return []
    ops: list[Op] = [Put(FEED_HORIZON.name, {"user_id": user_id, "horizon": horizon})]
    if current > 0:
        ops.append(Delete(FEED_HORIZON.name, {"user_id": user_id, "horizon": current}))
    return ops


def insert_capped(
    read: ReadModel, user_id: int, entries: Sequence[tuple[int, int]], cap: int, horizon: int = 0
) -> list[Op]:
    """Add (post_id, author_id) entries to a feed, trim it to the `cap` newest ids, and
    raise its horizon over what fell out (and to at least `horizon`).

    The ids that fall out are the smallest of (what is there) + (what comes in), so a
    post older than a full feed's oldest entry is not inserted; nor is one at or below
    the feed's horizon, where readers merge from the timelines anyway.
    """
    current = timelines.horizon_of(read, user_id)
    floor = max(horizon, current)
    wanted: dict[int, int] = {}
    for post_id, author_id in entries:
        if post_id > floor:
            wanted.setdefault(post_id, author_id)
    present = read.get_many(FEED.name, [{"user_id": user_id, "post_id": p} for p in wanted])
    there = {int(r["post_id"]) for r in present}
    fresh = {p: a for p, a in wanted.items() if p not in there}
    ops: list[Op] = []
    if fresh:
        overflow = read.count(FEED.name, {"user_id": user_id}) + len(fresh) - cap
        if overflow > 0:
            oldest = read.scan(FEED.name, {"user_id": user_id}, limit=overflow)
            candidates = sorted([(int(r["post_id"]), False) for r in oldest] + [(pid, True) for pid in fresh])
            for post_id, incoming in candidates[:overflow]:
                floor = max(floor, post_id)
                if incoming:
                    del fresh[post_id]
                else:
                    ops += _drop(user_id, post_id)
        for post_id, author_id in fresh.items():
            ops += _add(user_id, post_id, author_id)
    return ops + _raise_horizon(read, user_id, floor, current)


def _push(read: ReadModel, user_id: int, post_id: int, author_id: int, cap: int) -> list[Op]:
    """One entry into one feed: two blind writes, and now and then a trim."""
    ops = _add(user_id, post_id, author_id)
    if zlib.crc32(f"{post_id}:{user_id}".encode()) % min(TRIM_SAMPLE, max(1, cap // 8)):
        return ops
    there = read.get(FEED.name, {"user_id": user_id, "post_id": post_id}) is not None
    overflow = read.count(FEED.name, {"user_id": user_id}) + (0 if there else 1) - cap
    if overflow <= 0:
        return ops
    trimmed = read.scan(FEED.name, {"user_id": user_id}, limit=overflow)
    for row in trimmed:
        ops += _drop(user_id, int(row["post_id"]))
    return ops + _raise_horizon(read, user_id, int(trimmed[-1]["post_id"]))


def _remove_author(read: ReadModel, user_id: int, author_id: int) -> list[Op]:
    # A scan of the feed (about `cap` rows) instead of a by-author index: an unfollow is
    # rare next to a push, and the index was a third row written for every delivery.
    ops: list[Op] = []
    for row in read.scan(FEED.name, {"user_id": user_id}):
        if int(row["author_id"]) == author_id:
            ops += _drop(user_id, int(row["post_id"]))
    return ops


def _remove_post(read: ReadModel, post_id: int, author_id: int) -> list[Op]:
    ops: list[Op] = []
    for row in read.scan(FEED_BY_POST.name, {"post_id": post_id}):
        ops += _drop(int(row["user_id"]), post_id)
    ops.append(Delete(FEED_AUTHOR_POSTS.name, {"author_id": author_id, "post_id": post_id}))
    if read.get(FEED_PULLED_POSTS.name, {"author_id": author_id, "post_id": post_id}) is not None:
        ops.append(Delete(FEED_PULLED_POSTS.name, {"author_id": author_id, "post_id": post_id}))
        if not [
            r for r in read.scan(FEED_PULLED_POSTS.name, {"author_id": author_id}, limit=2) if r["post_id"] != post_id
        ]:
            ops.append(Delete(FEED_PULLED_AUTHORS.name, {"scope": PULLED_SCOPE, "author_id": author_id}))
    return ops


# -- events ------------------------------------------------------------------------


def _followers_when_posting(read: ReadModel, author_id: int) -> int:
    row = read.get(GRAPH_COUNTS.name, {"user_id": author_id})
    return int(row["followers"] or 0) if row else 0


def _blocked_with(read: ReadModel, user_id: int) -> set[int]:
    """Everyone on either side of a block with the user."""
    return {int(r["blocked_id"]) for r in read.scan(BLOCKS.name, {"blocker_id": user_id})} | {
        int(r["blocker_id"]) for r in read.scan(BLOCKED_BY.name, {"blocked_id": user_id})
    }


def _fan_out(event: PostCreated, read: ReadModel, policy: FeedPolicy, activity: ActivityStore) -> list[Op]:
    author, post = event.author_id, event.post_id
    if deleted(read, author):
        return []  # the author's deletion overtook the post on another stream: it removed what this would add
    ops: list[Op] = [Put(FEED_AUTHOR_POSTS.name, {"author_id": author, "post_id": post, "audience": event.audience})]
    if policy.strategy == "pull":
        return ops  # pull fans out nothing
    if policy.strategy == "hybrid" and _followers_when_posting(read, author) > policy.celebrity_threshold:
        ops.append(Put(FEED_PULLED_POSTS.name, {"author_id": author, "post_id": post, "audience": event.audience}))
        ops.append(Put(FEED_PULLED_AUTHORS.name, {"scope": PULLED_SCOPE, "author_id": author}))
        return ops
    # A follower may see every post of the author (private account and followers-only
    # audience included) unless a block stands between them: Privacy.can_see_post for
    # followers, without reading anything per follower.
    blocked = _blocked_with(read, author)
    since_ms = int(event.occurred_at.timestamp() * 1000) - policy.active_window_seconds * 1000
    recipients: list[int] = [author]
    after: int | None = None
    while True:
        rows = read.scan(FOLLOWERS.name, {"followee_id": author}, after=after, limit=policy.chunk)
        recipients += [f for r in rows if (f := int(r["follower_id"])) not in blocked and f != author]
        if policy.strategy == "hybrid":
            recipients = activity.active_among(recipients, since_ms)
        for user_id in recipients:
            ops += _push(read, user_id, post, author, policy.cap)
        if len(rows) < policy.chunk:
            return ops
        after, recipients = int(rows[-1]["follower_id"]), []


def _backfill(event: Followed, read: ReadModel, policy: FeedPolicy) -> list[Op]:
    follower, followee = event.follower_id, event.followee_id
    if follower == followee or policy.strategy == "pull" or deleted(read, follower, followee):
        return []  # (a follow applied after either's deletion: the graph ignores it too)
    privacy = Privacy(read)
    recent = read.scan(FEED_AUTHOR_POSTS.name, {"author_id": followee}, desc=True, limit=policy.backfill + 1)
    if not recent:
        return []  # nothing to copy, and no horizon to raise (most follows, when a graph is built)
    # The followee's posts older than the backfill are not copied: the horizon rises over
    # them so that readers merge them from the timeline instead.
    cut = int(recent[policy.backfill]["post_id"]) if len(recent) > policy.backfill else 0
    recent = recent[: policy.backfill]
    pulled = read.get_many(FEED_PULLED_POSTS.name, [{"author_id": followee, "post_id": r["post_id"]} for r in recent])
    merged_on_read = {int(r["post_id"]) for r in pulled}
    entries = [
        (int(r["post_id"]), followee)
        for r in recent
        if int(r["post_id"]) not in merged_on_read and privacy.can_see_post(follower, followee, r["audience"])
    ]
    return insert_capped(read, follower, entries, policy.cap, horizon=cut)


def _forget_user(user_id: int, read: ReadModel) -> list[Op]:
    ops: list[Op] = []
    for row in read.scan(FEED.name, {"user_id": user_id}):
        ops.append(Delete(FEED_BY_POST.name, {"post_id": row["post_id"], "user_id": user_id}))
    ops += [
        Delete(FEED.name, {"user_id": user_id}),
        Delete(FEED_HORIZON.name, {"user_id": user_id}),
    ]
    for row in read.scan(FEED_AUTHOR_POSTS.name, {"author_id": user_id}):
        ops += _remove_post(read, int(row["post_id"]), user_id)
    ops += [
        Delete(FEED_AUTHOR_POSTS.name, {"author_id": user_id}),
        Delete(FEED_PULLED_POSTS.name, {"author_id": user_id}),
        Delete(FEED_PULLED_AUTHORS.name, {"scope": PULLED_SCOPE, "author_id": user_id}),
    ]
    return ops


def rebuild_ops(read: ReadModel, user_id: int, policy: FeedPolicy) -> list[Op]:
    """Operations that make a stale durable feed complete again (the read path applies
    them when `ActivityStore.record_read` says pushes were skipped).

    The newest `rebuild_depth` posts of the logical feed, merged from the author
    timelines, go into FEED; if there are more, the horizon rises to the first one left
    out, so deeper pages are merged on read. Celebrity posts are left out (readers merge
    them); one the projection has not listed as pulled yet may be copied: readers drop
    duplicates.
    """
    entries = timelines.pull_feed(read, user_id)(None, policy.rebuild_depth + 1)
    cut = entries[policy.rebuild_depth][0] if len(entries) > policy.rebuild_depth else 0
    entries = entries[: policy.rebuild_depth]
    pulled = read.get_many(FEED_PULLED_POSTS.name, [{"author_id": a, "post_id": p} for p, a in entries])
    merged_on_read = {int(r["post_id"]) for r in pulled}
    return insert_capped(read, user_id, [e for e in entries if e[0] not in merged_on_read], policy.cap, horizon=cut)


def make_projection(
    cap: int | None = None,
    backfill: int | None = None,
    *,
    policy: FeedPolicy | None = None,
    activity: ActivityStore = EVERYONE_ACTIVE,
) -> Projection:
    """The feed projection for a policy (`cap` and `backfill` override the policy's)."""
    policy = policy or FeedPolicy()
    if cap is not None:
        policy = replace(policy, cap=cap)
    if backfill is not None:
        policy = replace(policy, backfill=backfill)

    def project(event: Event, read: ReadModel) -> list[Op]:
        match event:
            case PostCreated():
                return _fan_out(event, read, policy, activity)
            case PostDeleted():
                return _remove_post(read, event.post_id, event.author_id)
            case Followed():
                return _backfill(event, read, policy)
            case Unfollowed() if event.follower_id != event.followee_id:  # one's own posts stay
                return _remove_author(read, event.follower_id, event.followee_id)
            case Blocked():
                return _remove_author(read, event.blocker_id, event.blocked_id) + _remove_author(
                    read, event.blocked_id, event.blocker_id
                )
            case AccountDeleted():
                return _forget_user(event.user_id, read)
        return []

    return Projection("feed", 4, TABLES, project)  # 4: no by-author index


PROJECTION = make_projection()
