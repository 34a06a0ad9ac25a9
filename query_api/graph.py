"""Query routes: followers, following, follow requests, mutuals, suggestions, close friends.

Lists page by user id (ascending) and leave out accounts the viewer may not see
(deleted, or blocked either way). Filtering happens after the scan, so a page may
come back short when many rows were dropped; the cursor still moves past them and
the work per request stays bounded (`LIST_SCAN_CAP`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from heapq import merge
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from commands.errors import NotFound
from infra.container import Container
from infra.http.deps import Actor, C, Consistent, Viewer
from infra.http.paging import Cursor, Limit, decode_int_cursor, page
from projections.graph import (
    CLOSE_FRIENDS,
    FOLLOW_REQUESTS,
    FOLLOWERS,
    FOLLOWING,
    GRAPH_COUNTS,
    POPULAR_ACCOUNTS,
    POPULAR_BUCKETS,
)
from projections.privacy import Privacy
from projections.profile import ACCOUNTS
from projections.store import ReadModel, Row
from query_api.accounts import resolve_username

router = APIRouter(tags=["graph"], dependencies=[Consistent])

LIST_SCAN_CAP = 1000  # rows read per list page before answering short


class UserSummary(BaseModel):
    id: str
    username: str
    display_name: str


class UserPage(BaseModel):
    items: list[UserSummary]
    next_cursor: str | None


class Suggestion(UserSummary):
    reason: str
    followed_by_count: int  # how many of the people you follow follow them (within the scanned edges)


class SuggestionPage(BaseModel):
    items: list[Suggestion]
    next_cursor: str | None = None  # suggestions are recomputed on every read; there is no next page


def summary(account: Row) -> UserSummary:
    return UserSummary(id=str(account["user_id"]), username=account["username"], display_name=account["display_name"])


def users_page(
    read: ReadModel,
    privacy: Privacy,
    viewer: int | None,
    table: str,
    prefix: dict[str, int],
    column: str,
    after: int | None,
    limit: int,
    keep: Callable[[int], bool] = lambda _: True,
) -> tuple[list[Row], int | None]:
    """Accounts named by `column` in the rows of `table` under `prefix`, after the cursor,
    that pass `keep` and that the viewer may see; plus the cursor of the next page."""
    found: list[Row] = []
    cursor = after
    scanned = 0
    while scanned < LIST_SCAN_CAP:
        want = limit + 1 - len(found)
        rows = read.scan(table, prefix, after=cursor, limit=want)
        scanned += len(rows)
        ids = [int(r[column]) for r in rows]
        wanted = [u for u in ids if keep(u) and not privacy.blocked_either(viewer, u)]
        found += read.get_many(ACCOUNTS.name, [{"user_id": u} for u in wanted])
        if len(found) > limit:
            return found[:limit], int(found[limit - 1]["user_id"])
        if len(rows) < want:
            return found, None  # the partition is exhausted
        cursor = ids[-1]
    return found, cursor  # scan budget spent: a short page that resumes where it stopped


def _content_owner(c: Container, username: str, viewer: int | None) -> int:
    """The user whose lists are asked for; 404 if the viewer may not see their content."""
    account = resolve_username(c.read, c.privacy, username, viewer)
    owner = int(account["user_id"])
    if not c.privacy.can_see_content(viewer, owner):
        raise NotFound("no such user")
    return owner


@router.get("/v1/users/{username}/followers", response_model=UserPage)
async def followers(username: str, c: C, viewer: Viewer, limit: Limit = 20, cursor: Cursor = None) -> Any:
    """Who follows them. A private account's list is for itself and its followers only."""
    owner = _content_owner(c, username, viewer)
    rows, nxt = users_page(
        c.read,
        c.privacy,
        viewer,
        FOLLOWERS.name,
        {"followee_id": owner},
        "follower_id",
        decode_int_cursor(cursor),
        limit,
    )
    return page([summary(r) for r in rows], nxt)


@router.get("/v1/users/{username}/following", response_model=UserPage)
async def following(username: str, c: C, viewer: Viewer, limit: Limit = 20, cursor: Cursor = None) -> Any:
    """Whom they follow. A private account's list is for itself and its followers only."""
    owner = _content_owner(c, username, viewer)
    rows, nxt = users_page(
        c.read,
        c.privacy,
        viewer,
        FOLLOWING.name,
        {"follower_id": owner},
        "followee_id",
        decode_int_cursor(cursor),
        limit,
    )
    return page([summary(r) for r in rows], nxt)


@router.get("/v1/me/follow-requests", response_model=UserPage)
async def follow_requests(c: C, me: Actor, limit: Limit = 20, cursor: Cursor = None) -> Any:
    """Pending requests to follow me."""
    rows, nxt = users_page(
        c.read,
        c.privacy,
        me,
        FOLLOW_REQUESTS.name,
        {"followee_id": me},
        "follower_id",
        decode_int_cursor(cursor),
        limit,
    )
    return page([summary(r) for r in rows], nxt)


@router.get("/v1/me/close-friends", response_model=UserPage)
async def close_friends(c: C, me: Actor, limit: Limit = 20, cursor: Cursor = None) -> Any:
    """My close-friends list (only I can see it)."""
    rows, nxt = users_page(
        c.read, c.privacy, me, CLOSE_FRIENDS.name, {"user_id": me}, "friend_id", decode_int_cursor(cursor), limit
    )
    return page([summary(r) for r in rows], nxt)


def _count(read: ReadModel, user_id: int, column: str) -> int:
    row = read.get(GRAPH_COUNTS.name, {"user_id": user_id})
    return int(row[column] or 0) if row else 0


@router.get("/v1/users/{username}/mutuals", response_model=UserPage)
async def mutuals(username: str, c: C, me: Actor, limit: Limit = 20, cursor: Cursor = None) -> Any:
    """People I follow who follow them.

    Shown even for a private account I do not follow: each mutual is someone I
    follow, whose own following list I may already see, so nothing new is revealed.
    """
    read, privacy = c.read, c.privacy
    target = int(resolve_username(read, privacy, username, me)["user_id"])
    # Walk the shorter of the two lists and probe the other; both are ordered by user id,
    # so the cursor means the same whichever side a page walks.
    if _count(read, me, "following") <= _count(read, target, "followers"):
        table, prefix, column = FOLLOWING.name, {"follower_id": me}, "followee_id"

        def keep(u: int) -> bool:
            return privacy.follows(u, target)
    else:
        table, prefix, column = FOLLOWERS.name, {"followee_id": target}, "follower_id"

        def keep(u: int) -> bool:
            return privacy.follows(me, u)

    rows, nxt = users_page(read, privacy, me, table, prefix, column, decode_int_cursor(cursor), limit, keep)
    return page([summary(r) for r in rows], nxt)


# -- suggestions --------------------------------------------------------------


def friends_of_friends(read: ReadModel, me: int, followee_scan: int, edge_scan: int) -> dict[int, list[int]]:
    """For each account followed by people I follow: which of my followees follow it.

    Bounded: at most `followee_scan` followees, and `edge_scan` edges shared out
    evenly among them, so a user following thousands costs the same as one following hundreds.
    """
    followees = [int(r["followee_id"]) for r in read.scan(FOLLOWING.name, {"follower_id": me}, limit=followee_scan)]
    if not followees:
        return {}
    per_followee = max(1, edge_scan // len(followees))
    via: dict[int, list[int]] = {}
    for followee in followees:
        for row in read.scan(FOLLOWING.name, {"follower_id": followee}, limit=per_followee):
            via.setdefault(int(row["followee_id"]), []).append(followee)
    return via


def ranked(via: dict[int, list[int]], followers_of: Callable[[int], int]) -> Iterator[int]:
    """Candidates by how many of my followees follow them, then by popularity, then by id.

    Lazy per group of equal count, so popularity is looked up only for groups reached.
    """
    groups: dict[int, list[int]] = {}
    for user_id, through in via.items():
        groups.setdefault(len(through), []).append(user_id)
    for count in sorted(groups, reverse=True):
        yield from sorted(groups[count], key=lambda u: (-followers_of(u), u))


def reason(names: list[str], count: int) -> str:
    """'followed by alice', 'followed by alice and bob', 'followed by alice, bob and 3 others you follow'."""
    shown = names[:2]
    others = count - len(shown)
    if not shown:
        return f"followed by {count} {'person' if count == 1 else 'people'} you follow"
    if others <= 0:
        return f"followed by {' and '.join(shown)}"
    return f"followed by {', '.join(shown)} and {others} other{'s' if others > 1 else ''} you follow"


def popular(read: ReadModel, per_bucket: int) -> Iterator[int]:
    """Accounts by follower count, most followed first, merged over the ranking's buckets."""
    scans = [
        read.scan(POPULAR_ACCOUNTS.name, {"bucket": b}, desc=True, limit=per_bucket) for b in range(POPULAR_BUCKETS)
    ]
    for row in merge(*scans, key=lambda r: (-int(r["followers"]), int(r["user_id"]))):
        yield int(row["user_id"])


@dataclass
class _Suggester:
    read: ReadModel
    privacy: Privacy
    me: int

    def eligible(self, user_id: int) -> Row | None:
        """The account if it is worth suggesting: visible, and not already followed or asked."""
        if user_id == self.me or self.privacy.follows(self.me, user_id):
            return None
        if self.read.get(FOLLOW_REQUESTS.name, {"followee_id": user_id, "follower_id": self.me}):
            return None
        if not self.privacy.can_see_account(self.me, user_id):
            return None
        return self.privacy.account(user_id)

    def username(self, user_id: int) -> str | None:
        account = self.privacy.account(user_id)
        return str(account["username"]) if account else None


@router.get("/v1/me/suggestions", response_model=SuggestionPage)
async def suggestions(c: C, me: Actor, limit: Limit = 20) -> Any:
    """Whom to follow: friends of friends first, then accounts popular on Glimpse."""
    read = c.read
    s = _Suggester(read, c.privacy, me)
    via = friends_of_friends(read, me, c.settings.suggestion_followee_scan, c.settings.suggestion_edge_scan)
    items: list[Suggestion] = []
    seen: set[int] = set()
    for user_id in ranked(via, lambda u: _count(read, u, "followers")):
        if len(items) >= limit:
            break
        account = s.eligible(user_id)
        if account is None:
            continue
        through = via[user_id]
        names = [n for n in (s.username(f) for f in through[:2]) if n]
        items.append(
            Suggestion(
                **summary(account).model_dump(), reason=reason(names, len(through)), followed_by_count=len(through)
            )
        )
        seen.add(user_id)
    if len(items) < limit:
        for user_id in popular(read, per_bucket=2 * limit + 20):
            if len(items) >= limit:
                break
            if user_id in seen or user_id in via:
                continue
            account = s.eligible(user_id)
            if account is not None:
                items.append(
                    Suggestion(**summary(account).model_dump(), reason="popular on Glimpse", followed_by_count=0)
                )
                seen.add(user_id)
    return SuggestionPage(items=items)
