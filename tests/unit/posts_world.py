"""A tiny in-memory world for projection tests of posts, media and feeds.

Events go through every registered projection in registry order, as the projector
does, so the feed sees the graph and posts as of each event. The feed projection
can be rebuilt with a small cap to test trimming.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from events.accounts import AccountDeleted, AccountRegistered, ProfileUpdated
from events.graph import Blocked, Followed, Unblocked, Unfollowed
from events.media import MediaProcessed, MediaUploaded, Rendition
from events.posts import PostAudience, PostCreated, PostDeleted
from events.union import Event
from infra.storage.memory_readmodel import MemoryReadModel
from projections import feed
from projections.feed import BACKFILL_LIMIT, FEED, FEED_CAP
from projections.registry import PROJECTIONS, all_tables
from projections.store import Row

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def envelope(event_id: int, aggregate_id: int, actor_id: int | None) -> dict[str, Any]:
    return {"event_id": event_id, "occurred_at": NOW, "actor_id": actor_id, "aggregate_id": aggregate_id}


class World:
    def __init__(self, feed_cap: int = FEED_CAP, backfill: int = BACKFILL_LIMIT) -> None:
        custom = feed.make_projection(feed_cap, backfill)
        self.projections = [custom if p.name == "feed" else p for p in PROJECTIONS]
        self.read = MemoryReadModel(all_tables())
        self.ids = itertools.count(1000)
        self.events: list[Event] = []
        self.usernames: dict[int, str] = {}

    def apply(self, event: Event) -> Event:
        for p in self.projections:
            self.read.apply(p.project(event, self.read))
        self.events.append(event)
        return event

    def next_id(self) -> int:
        return next(self.ids)

    # -- accounts and graph -------------------------------------------------
    def user(self, name: str, private: bool = False) -> int:
        uid = self.next_id()
        self.usernames[uid] = name
        self.apply(
            AccountRegistered(
                **envelope(uid, uid, None), user_id=uid, username=name, password_hash="x", display_name=name.title()
            )
        )
        if private:
            self.apply(ProfileUpdated(**envelope(self.next_id(), uid, uid), user_id=uid, private=True))
        return uid

    def follow(self, follower: int, followee: int) -> None:
        self.apply(Followed(**envelope(self.next_id(), follower, follower), follower_id=follower, followee_id=followee))

    def unfollow(self, follower: int, followee: int) -> None:
        self.apply(
            Unfollowed(**envelope(self.next_id(), follower, follower), follower_id=follower, followee_id=followee)
        )

    def block(self, blocker: int, blocked: int) -> None:
        # As the graph command records it: the block plus the unfollows it causes.
        self.apply(Blocked(**envelope(self.next_id(), blocker, blocker), blocker_id=blocker, blocked_id=blocked))
        for a, b in ((blocker, blocked), (blocked, blocker)):
            self.unfollow(a, b)

    def unblock(self, blocker: int, blocked: int) -> None:
        self.apply(Unblocked(**envelope(self.next_id(), blocker, blocker), blocker_id=blocker, blocked_id=blocked))

    def delete_account(self, user_id: int) -> None:
        self.apply(AccountDeleted(**envelope(self.next_id(), user_id, user_id), user_id=user_id))

    # -- media and posts ----------------------------------------------------
    def media(self, owner: int, sha: str = "a" * 64, ready: bool = True) -> int:
        """An upload, and (unless `ready` is False) the worker's renditions of it."""
        mid = self.next_id()
        self.apply(
            MediaUploaded(
                **envelope(mid, mid, owner),
                media_id=mid,
                owner_id=owner,
                storage_key=f"originals/{sha[:2]}/{sha}.png",
                content_type="image/png",
                kind="image",
                width=10,
                height=20,
                size_bytes=123,
                sha256=sha,
            )
        )
        if ready:
            self.apply(
                MediaProcessed(
                    **envelope(self.next_id(), mid, None),
                    media_id=mid,
                    owner_id=owner,
                    width=10,
                    height=20,
                    renditions=(Rendition(key=f"renditions/{sha[:2]}/{sha}.webp", width=10, height=20, format="webp"),),
                    placeholder="data:image/webp;base64,AAAA",
                )
            )
        return mid

    def post(self, author: int, audience: PostAudience = "public", media: tuple[int, ...] = ()) -> int:
        pid = self.next_id()
        self.apply(self.post_event(pid, author, audience, media))
        return pid

    @staticmethod
    def post_event(
        pid: int, author: int, audience: PostAudience = "public", media: tuple[int, ...] = ()
    ) -> PostCreated:
        return PostCreated(
            **envelope(pid, pid, author),
            post_id=pid,
            author_id=author,
            caption=f"post {pid}",
            media_ids=media or (1,),
            audience=audience,
        )

    def delete_post(self, post_id: int, author: int) -> None:
        self.apply(PostDeleted(**envelope(self.next_id(), post_id, author), post_id=post_id, author_id=author))

    # -- reading --------------------------------------------------------------
    def feed(self, user_id: int) -> list[int]:
        return [int(r["post_id"]) for r in self.read.scan(FEED.name, {"user_id": user_id}, desc=True)]

    def snapshot(self) -> dict[str, list[Row]]:
        """Every row of every table, in a stable order: equal snapshots are equal states."""
        out = {}
        for table in self.read.tables():
            rows = self.read.scan(table.name, {})
            out[table.name] = sorted(rows, key=lambda r: repr([r.get(c) for c in table.columns]))
        return out
