"""An in-memory world for projection tests of stories and notifications.

Events go through every registered projection in registry order, as the projector
does, so the stories and notifications projections see the graph, profiles, posts
and engagement as of each event. `redeliver` applies an event again, as at-least-once
delivery may.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from events.accounts import AccountDeleted, AccountRegistered, ProfileUpdated
from events.engagement import CommentDeleted, Commented, Liked, Unliked
from events.graph import Blocked, CloseFriendsSet, Followed, FollowRequested, Unfollowed
from events.media import MediaUploaded
from events.posts import PostAudience, PostCreated, PostDeleted
from events.stories import StoryAudience, StoryExpired, StoryPosted, StoryViewed
from events.union import Event
from infra.storage.memory_readmodel import MemoryReadModel
from projections.registry import PROJECTIONS, all_tables

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


class World:
    def __init__(self) -> None:
        self.read = MemoryReadModel(all_tables())
        self.ids = itertools.count(1000)
        self.now = T0

    def next_id(self) -> int:
        return next(self.ids)

    def env(self, aggregate_id: int, actor_id: int | None, event_id: int | None = None) -> dict[str, Any]:
        return {
            "event_id": event_id if event_id is not None else self.next_id(),
            "occurred_at": self.now,
            "actor_id": actor_id,
            "aggregate_id": aggregate_id,
        }

    def apply(self, event: Event) -> Event:
        for p in PROJECTIONS:
            self.read.apply(p.project(event, self.read))
        return event

    def redeliver(self, event: Event) -> None:
        self.apply(event)

    def tick(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)

    # -- accounts and graph -------------------------------------------------
    def user(self, name: str, private: bool = False) -> int:
        uid = self.next_id()
        self.apply(
            AccountRegistered(
                **self.env(uid, None, uid), user_id=uid, username=name, password_hash="x", display_name=name.title()
            )
        )
        if private:
            self.apply(ProfileUpdated(**self.env(uid, uid), user_id=uid, private=True))
        return uid

    def follow(self, follower: int, followee: int) -> Event:
        return self.apply(Followed(**self.env(follower, follower), follower_id=follower, followee_id=followee))

    def request(self, follower: int, followee: int) -> Event:
        return self.apply(FollowRequested(**self.env(follower, follower), follower_id=follower, followee_id=followee))

    def unfollow(self, follower: int, followee: int) -> Event:
        return self.apply(Unfollowed(**self.env(follower, follower), follower_id=follower, followee_id=followee))

    def block(self, blocker: int, blocked: int) -> None:
        self.apply(Blocked(**self.env(blocker, blocker), blocker_id=blocker, blocked_id=blocked))
        for a, b in ((blocker, blocked), (blocked, blocker)):
            self.unfollow(a, b)

    def close_friends(self, user: int, *friends: int) -> None:
        self.apply(CloseFriendsSet(**self.env(user, user), user_id=user, friend_ids=friends))

    def delete_account(self, user: int) -> None:
        row = self.read.get("accounts", {"user_id": user})
        assert row is not None
        self.apply(AccountDeleted(**self.env(user, user), user_id=user))

    # -- media, posts, engagement -------------------------------------------
    def media(self, owner: int) -> int:
        mid = self.next_id()
        self.apply(
            MediaUploaded(
                **self.env(mid, owner, mid),
                media_id=mid,
                owner_id=owner,
                storage_key=f"originals/aa/{mid}.png",
                content_type="image/png",
                kind="image",
                width=10,
                height=10,
                size_bytes=100,
                sha256="a" * 64,
            )
        )
        return mid

    def post(self, author: int, audience: PostAudience = "public", mentions: tuple[int, ...] = ()) -> PostCreated:
        pid = self.next_id()
        event = PostCreated(
            **self.env(pid, author, pid),
            post_id=pid,
            author_id=author,
            caption="hi",
            media_ids=(),
            audience=audience,
            mentions=mentions,
        )
        self.apply(event)
        return event

    def delete_post(self, post: PostCreated) -> Event:
        return self.apply(
            PostDeleted(**self.env(post.post_id, post.author_id), post_id=post.post_id, author_id=post.author_id)
        )

    def like(self, user: int, post: PostCreated) -> Event:
        return self.apply(
            Liked(**self.env(post.post_id, user), post_id=post.post_id, user_id=user, post_author_id=post.author_id)
        )

    def unlike(self, user: int, post: PostCreated) -> Event:
        return self.apply(
            Unliked(**self.env(post.post_id, user), post_id=post.post_id, user_id=user, post_author_id=post.author_id)
        )

    def comment(self, user: int, post: PostCreated, mentions: tuple[int, ...] = ()) -> Commented:
        cid = self.next_id()
        event = Commented(
            **self.env(post.post_id, user, cid),
            comment_id=cid,
            post_id=post.post_id,
            author_id=user,
            post_author_id=post.author_id,
            text="nice",
            mentions=mentions,
        )
        self.apply(event)
        return event

    def delete_comment(self, comment: Commented, by: int) -> Event:
        return self.apply(
            CommentDeleted(
                **self.env(comment.post_id, by), comment_id=comment.comment_id, post_id=comment.post_id, deleted_by=by
            )
        )

    # -- stories --------------------------------------------------------------
    def story(self, author: int, audience: StoryAudience = "followers", ttl: float = 3600) -> StoryPosted:
        sid = self.next_id()
        event = StoryPosted(
            **self.env(sid, author, sid),
            story_id=sid,
            author_id=author,
            media_id=self.media(author),
            audience=audience,
            expires_at=self.now + timedelta(seconds=ttl),
        )
        self.apply(event)
        return event

    def view(self, viewer: int, story: StoryPosted) -> StoryViewed:
        event = StoryViewed(
            **self.env(story.story_id, viewer), story_id=story.story_id, author_id=story.author_id, viewer_id=viewer
        )
        self.apply(event)
        return event

    def expire(self, story: StoryPosted) -> StoryExpired:
        event = StoryExpired(**self.env(story.story_id, None), story_id=story.story_id, author_id=story.author_id)
        self.apply(event)
        return event
