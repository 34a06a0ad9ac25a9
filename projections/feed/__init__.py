"""Home feeds, fan-out on write: each user's feed holds the post ids they should see.

On PostCreated the post id goes into the author's own feed and each follower's feed
that Privacy lets see it. A feed keeps only the `cap` newest ids (the oldest are
trimmed, never random ones). Followed backfills the followee's newest posts;
Unfollowed and Blocked (both ways) take the other's posts out; PostDeleted and
AccountDeleted remove posts from every feed through the by-post index, so nothing
scans all users. The read path re-checks Privacy on every page anyway, so an entry
that is briefly stale can never leak.

Settings: projections are pure, so the cap and the backfill size are bound when the
projection is built (`make_projection`). The registered PROJECTION uses FEED_CAP,
the same default as `Settings.feed_fanout_cap`; a different cap changes the output
for the same log and therefore needs a new projection version and a rebuild.

Every operation is a Put or Delete keyed by (user, post), so redelivering an event
leaves the same state.
"""

from __future__ import annotations

from collections.abc import Sequence

from events.accounts import AccountDeleted
from events.graph import Blocked, Followed, Unfollowed
from events.posts import PostCreated, PostDeleted
from events.union import Event
from projections.graph import FOLLOWERS
from projections.privacy import Privacy
from projections.projection import Projection
from projections.store import Delete, Op, Put, ReadModel, Table

FEED_CAP = 800
BACKFILL_LIMIT = 50

FEED = Table("feed", partition=("user_id",), clustering=("post_id",), values=("author_id",))
# Which feeds hold a post: PostDeleted removes it without scanning every feed.
FEED_BY_POST = Table("feed_by_post", partition=("post_id",), clustering=("user_id",))
# One feed's entries grouped by author: unfollow and block remove one author's posts.
FEED_BY_AUTHOR = Table("feed_by_author", partition=("user_id",), clustering=("author_id", "post_id"))
# The feed's own list of each author's live posts (for backfill and for erasing an
# author): the posts projection drops its rows for AccountDeleted before this one runs.
FEED_AUTHOR_POSTS = Table(
    "feed_author_posts",
    partition=("author_id",),
    clustering=("post_id",),
    values=("audience",),
    types={"audience": str},
)
TABLES = (FEED, FEED_BY_POST, FEED_BY_AUTHOR, FEED_AUTHOR_POSTS)


def _add(user_id: int, post_id: int, author_id: int) -> list[Op]:
    return [
        Put(FEED.name, {"user_id": user_id, "post_id": post_id, "author_id": author_id}),
        Put(FEED_BY_POST.name, {"post_id": post_id, "user_id": user_id}),
        Put(FEED_BY_AUTHOR.name, {"user_id": user_id, "author_id": author_id, "post_id": post_id}),
    ]


def _drop(user_id: int, post_id: int, author_id: int) -> list[Op]:
    return [
        Delete(FEED.name, {"user_id": user_id, "post_id": post_id}),
        Delete(FEED_BY_POST.name, {"post_id": post_id, "user_id": user_id}),
        Delete(FEED_BY_AUTHOR.name, {"user_id": user_id, "author_id": author_id, "post_id": post_id}),
    ]


def insert_capped(read: ReadModel, user_id: int, entries: Sequence[tuple[int, int]], cap: int) -> list[Op]:
    """Add (post_id, author_id) entries to a feed and trim it to the `cap` newest ids.

    The ids that fall out are the smallest of (what is there) + (what comes in), so a
    backfilled post older than a full feed's oldest entry is simply not inserted.
    """
    fresh: dict[int, int] = {}
    for post_id, author_id in entries:
        if post_id not in fresh and read.get(FEED.name, {"user_id": user_id, "post_id": post_id}) is None:
            fresh[post_id] = author_id
    if not fresh:
        return []
    overflow = read.count(FEED.name, {"user_id": user_id}) + len(fresh) - cap
    ops: list[Op] = []
    if overflow > 0:
        oldest = read.scan(FEED.name, {"user_id": user_id}, limit=overflow)
        candidates = sorted(
            [(int(r["post_id"]), int(r["author_id"]), False) for r in oldest]
            + [(pid, aid, True) for pid, aid in fresh.items()]
        )
        for post_id, author_id, incoming in candidates[:overflow]:
            if incoming:
                del fresh[post_id]
            else:
                ops += _drop(user_id, post_id, author_id)
    for post_id, author_id in fresh.items():
        ops += _add(user_id, post_id, author_id)
    return ops


def _remove_author(read: ReadModel, user_id: int, author_id: int) -> list[Op]:
    ops: list[Op] = []
    for row in read.scan(FEED_BY_AUTHOR.name, {"user_id": user_id, "author_id": author_id}):
        ops += _drop(user_id, int(row["post_id"]), author_id)
    return ops


def _remove_post(read: ReadModel, post_id: int, author_id: int) -> list[Op]:
    ops: list[Op] = []
    for row in read.scan(FEED_BY_POST.name, {"post_id": post_id}):
        ops += _drop(int(row["user_id"]), post_id, author_id)
    ops.append(Delete(FEED_AUTHOR_POSTS.name, {"author_id": author_id, "post_id": post_id}))
    return ops


def _fan_out(event: PostCreated, read: ReadModel, cap: int) -> list[Op]:
    author, post = event.author_id, event.post_id
    ops: list[Op] = [Put(FEED_AUTHOR_POSTS.name, {"author_id": author, "post_id": post, "audience": event.audience})]
    privacy = Privacy(read)
    recipients = [author] + [int(r["follower_id"]) for r in read.scan(FOLLOWERS.name, {"followee_id": author})]
    for user_id in recipients:
        if privacy.can_see_post(user_id, author, event.audience):
            ops += insert_capped(read, user_id, [(post, author)], cap)
    return ops


def _backfill(event: Followed, read: ReadModel, cap: int, limit: int) -> list[Op]:
    follower, followee = event.follower_id, event.followee_id
    if follower == followee:
        return []
    privacy = Privacy(read)
    recent = read.scan(FEED_AUTHOR_POSTS.name, {"author_id": followee}, desc=True, limit=limit)
    entries = [(int(r["post_id"]), followee) for r in recent if privacy.can_see_post(follower, followee, r["audience"])]
    return insert_capped(read, follower, entries, cap)


def _forget_user(user_id: int, read: ReadModel) -> list[Op]:
    ops: list[Op] = []
    for row in read.scan(FEED.name, {"user_id": user_id}):
        ops.append(Delete(FEED_BY_POST.name, {"post_id": row["post_id"], "user_id": user_id}))
    ops += [Delete(FEED.name, {"user_id": user_id}), Delete(FEED_BY_AUTHOR.name, {"user_id": user_id})]
    for row in read.scan(FEED_AUTHOR_POSTS.name, {"author_id": user_id}):
        ops += _remove_post(read, int(row["post_id"]), user_id)
    ops.append(Delete(FEED_AUTHOR_POSTS.name, {"author_id": user_id}))
    return ops


def make_projection(cap: int = FEED_CAP, backfill: int = BACKFILL_LIMIT) -> Projection:
    if cap < 1 or backfill < 0:
        raise ValueError("the feed cap must be positive and the backfill size not negative")

    def project(event: Event, read: ReadModel) -> list[Op]:
        match event:
            case PostCreated():
                return _fan_out(event, read, cap)
            case PostDeleted():
                return _remove_post(read, event.post_id, event.author_id)
            case Followed():
                return _backfill(event, read, cap, backfill)
            case Unfollowed():
                return _remove_author(read, event.follower_id, event.followee_id)
            case Blocked():
                return _remove_author(read, event.blocker_id, event.blocked_id) + _remove_author(
                    read, event.blocked_id, event.blocker_id
                )
            case AccountDeleted():
                return _forget_user(event.user_id, read)
        return []

    return Projection("feed", 1, TABLES, project)


PROJECTION = make_projection()
