"""Random histories written by the real commands, for replay properties.

`History.run(steps)` drives the command handlers (commands/*.py) through a real
`CommandBus` over a SQLite log and SQLite read models in memory, with the live
`Projector` applying every append, exactly as the embedded app does, minus HTTP.
Commands the domain refuses (404, 409, 422...) append nothing, as in production.
So the log is one a real deployment could write, keyed as the Kafka topics are,
and `live` is the incrementally built read model to compare replays with.

A step is `(kind, a, b, c)` with small ints picking users, posts, stories, flags;
`steps()` is the hypothesis strategy for lists of them.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import strategies as st

from commands import accounts, engagement, graph, media, notifications, posts, stories
from commands.bus import CommandBus
from commands.errors import DomainError
from commands.media import ProbedMedia, ProcessedFacts
from events.ids import IdGenerator
from events.media import Rendition
from events.union import Event
from infra.personal_data.codec import EventCodec
from infra.personal_data.keys import MemorySubjectKeys
from infra.personal_data.wiring import shred_on_deletion
from infra.projector import Projector
from infra.storage.sqlite_eventlog import SqliteEventLog
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.projection import Projection
from projections.registry import PROJECTIONS

N_USERS = 5
KINDS = (
    "register",
    "private",
    "bio",
    "follow",
    "unfollow",
    "approve",
    "deny",
    "block",
    "unblock",
    "close_friends",
    "post",
    "delete_post",
    "like",
    "unlike",
    "comment",
    "delete_comment",
    "bookmark",
    "unbookmark",
    "story",
    "view_story",
    "expire",
    "read_notifications",
    "media_failed",
    "delete_account",
)
# Everyday things happen more often than blocks and deletions.
WEIGHTS = {"register": 2, "follow": 5, "post": 4, "like": 5, "comment": 4, "story": 2, "view_story": 3}

Step = tuple[str, int, int, int]


def steps(max_size: int = 40) -> st.SearchStrategy[list[Step]]:
    kinds = st.sampled_from([k for k in KINDS for _ in range(WEIGHTS.get(k, 1))])
    small = st.integers(0, 7)
    return st.lists(st.tuples(kinds, small, small, small), min_size=1, max_size=max_size)


class History:
    """A log written by the commands, and the live read models they kept up to date."""

    def __init__(self, projections: Sequence[Projection] = PROJECTIONS) -> None:
        self.projections = tuple(projections)
        # Sealed as in production, and shredded when an account's deletion is applied.
        self.codec = EventCodec(MemorySubjectKeys())
        self.log = SqliteEventLog(":memory:", self.codec)
        tables = [t for p in self.projections for t in p.tables]
        self.live = SqliteReadModel(sqlite3.connect(":memory:", isolation_level=None), tables)
        self.live.create_schema()
        self.projector = Projector(self.log, self.live, self.projections)
        self.projector.subscribe(shred_on_deletion(self.codec))
        self.now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
        self.bus = CommandBus(
            self.log,
            self.live,
            IdGenerator(0, clock_ms=lambda: int(self.now.timestamp() * 1000)),
            lambda: self.now,
            after_append=lambda token: self.projector.catch_up(until=int(token)),
        )
        self.users: list[tuple[int, str]] = []  # (id, username), deleted ones included
        self.alive: list[tuple[int, str]] = []
        self.posts: list[int] = []
        self.comments: list[int] = []
        self.stories: list[int] = []
        self.refused = 0
        # What each user wrote that is theirs (marked `<name>`, or their uploads' sha256), by username.
        self.personal: dict[str, set[str]] = {}

    def events(self) -> list[tuple[int, Event]]:
        return self.log.read(0, 10**9)

    # -- running commands ---------------------------------------------------------------
    def _do(self, name: str, actor: int | None, handler: Any) -> Any:
        try:
            return self.bus.execute(name, handler, actor_id=actor)
        except DomainError:
            self.refused += 1
            return None

    def _pick(self, items: list[int], n: int) -> int | None:
        return items[n % len(items)] if items else None

    def run(self, history: Sequence[Step]) -> History:
        for step in history:
            self.step(*step)
            self.now += timedelta(seconds=7)
        return self

    def step(self, kind: str, a: int, b: int, c: int) -> None:
        if kind == "register" or len(self.alive) < 2:
            if len(self.alive) < N_USERS:
                name = f"u{len(self.users)}"
                cmd = accounts.Register(username=name, password="correct horse 1")
                result = self._do("register", None, lambda ctx: accounts.register(ctx, cmd, "hash"))
                if result is not None:
                    self.users.append((int(orjson.loads(result.body)["id"]), name))
                    self.personal[name] = {f"<{name}>"}
                    self.alive.append(self.users[-1])
            return
        actor, actor_name = self.alive[a % len(self.alive)]
        _, other_name = self.alive[b % len(self.alive)] if c % 4 else self.users[b % len(self.users)]
        if kind == "private":
            cmd = accounts.UpdateProfile(private=bool(c % 2))
            self._do("update_profile", actor, lambda ctx: accounts.update_profile(ctx, cmd))
        elif kind == "bio":
            cmd = accounts.UpdateProfile(bio=f"bio <{actor_name}> {c}", display_name=f"name <{actor_name}> {c}")
            self._do("update_profile", actor, lambda ctx: accounts.update_profile(ctx, cmd))
        elif kind in ("follow", "unfollow", "approve", "deny", "block", "unblock"):
            handler = {
                "follow": graph.follow,
                "unfollow": graph.unfollow,
                "approve": graph.approve_request,
                "deny": graph.deny_request,
                "block": graph.block,
                "unblock": graph.unblock,
            }[kind]
            self._do(kind, actor, lambda ctx: handler(ctx, other_name))
        elif kind == "close_friends":
            names = [n for i, (_, n) in enumerate(self.users) if c >> i & 1]
            cmd = graph.SetCloseFriends(usernames=names)
            self._do("close_friends", actor, lambda ctx: graph.set_close_friends(ctx, cmd, 10))
        elif kind == "post":
            media_id = self._upload(actor, c)
            if media_id is None:
                return
            mention = self.users[b % len(self.users)]
            caption = f"look @{mention[1]} <{actor_name}>" if c % 2 else f"hello <{actor_name}>"
            cmd = posts.CreatePost(caption=caption, media_ids=[str(media_id)], audience=("public", "followers")[c % 2])
            result = self._do("post", actor, lambda ctx: posts.create_post(ctx, cmd, posts.PostLimits()))
            if result is not None and result.status == 201:
                self.posts.append(int(orjson.loads(result.body)["id"]))
        elif kind == "delete_post":
            post = self._pick(self.posts, b)
            if post is not None:
                self._do("delete_post", actor, lambda ctx: posts.delete_post(ctx, post))
        elif kind in ("like", "unlike", "bookmark", "unbookmark"):
            post = self._pick(self.posts, b)
            if post is not None:
                handler = {
                    "like": engagement.like,
                    "unlike": engagement.unlike,
                    "bookmark": engagement.bookmark,
                    "unbookmark": engagement.unbookmark,
                }[kind]
                self._do(kind, actor, lambda ctx: handler(ctx, post))
        elif kind == "comment":
            post = self._pick(self.posts, b)
            if post is not None:
                mention = self.users[c % len(self.users)]
                cmd = engagement.AddComment(
                    text=f"nice @{mention[1]} <{actor_name}>" if c % 2 else f"nice <{actor_name}>"
                )
                result = self._do("comment", actor, lambda ctx: engagement.comment(ctx, post, cmd, 1000, 20))
                if result is not None and result.status == 201:
                    self.comments.append(int(orjson.loads(result.body)["id"]))
        elif kind == "delete_comment":
            comment = self._pick(self.comments, b)
            if comment is not None:
                self._do("delete_comment", actor, lambda ctx: engagement.delete_comment(ctx, comment))
        elif kind == "story":
            media_id = self._upload(actor, c)
            if media_id is None:
                return
            cmd = stories.PostStory(media_id=str(media_id), audience=("followers", "close_friends")[c % 2])
            result = self._do("story", actor, lambda ctx: stories.post_story(ctx, cmd, 60 * (c + 1)))
            if result is not None and result.status == 201:
                self.stories.append(int(orjson.loads(result.body)["id"]))
        elif kind == "view_story":
            story = self._pick(self.stories, b)
            if story is not None:
                self._do("view_story", actor, lambda ctx: stories.view_story(ctx, story, 3))
        elif kind == "expire":
            self.now += timedelta(seconds=60 * (c + 1))
            self._do("expire_stories", None, lambda ctx: stories.expire_stories(ctx))
        elif kind == "read_notifications":
            self._do("mark_read", actor, notifications.mark_read)
        elif kind == "media_failed":
            media_id = self._upload(actor, c, process=False)
            if media_id is not None:
                self._do("media_failed", None, lambda ctx: media.record_failed(ctx, media_id, "broken"))
        elif kind == "delete_account" and c % 2 and self._do("delete_account", actor, accounts.delete_account):
            self.alive.remove((actor, actor_name))

    def _upload(self, actor: int, n: int, *, process: bool = True) -> int | None:
        sha = hashlib.sha256(f"{actor}:{n}".encode()).hexdigest()
        self.personal[dict(self.users)[actor]].add(sha)
        probed = ProbedMedia("image/png", "image", 8, 8, 100, sha)
        result = self._do("upload", actor, lambda ctx: media.upload(ctx, probed))
        if result is None:
            return None
        media_id = int(orjson.loads(result.body)["id"])
        if process:
            key = f"renditions/{sha[:2]}/{sha}.webp"
            facts = ProcessedFacts(media_id, 8, 8, (Rendition(key=key, width=8, height=8, format="webp"),), "data:,")
            self._do("media_processed", None, lambda ctx: media.record_processed(ctx, facts))
        return media_id
