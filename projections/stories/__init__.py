"""The stories read model: live stories, who saw them, the tray, and what expires when.

- `stories` / `user_stories`: a story by id, and each author's live stories oldest first.
- `story_views` (story, viewer) answers "have I seen it?" and, through SetAdd/SetRemove,
  keeps `stories.viewer_count` exact under redelivery (the viewer limit reads it);
  `story_viewers` lists the same views newest first for the author.
- `story_tray`: which authors may have something for a viewer. Fanned out on write to the
  author's followers (and the author), kept in step with follows; it is only a hint, the
  read path re-checks expiry and `Privacy.can_see_story` for every story it shows.
- `story_expiry`: stories by expiry time, for the expiry job. One partition: in the scale
  stack it would be bucketed by hour, the embedded mode does not need that.

Streams are ordered per key only: a story, view or follow applied after the deletion
of an account it names (profile's `deleted_accounts`) is ignored, as the deletion
would have removed it.

A story leaves with StoryExpired (written by the job once expires_at has passed; readers
already hide it from that instant), with its author's AccountDeleted, never otherwise.
"""

from __future__ import annotations

from events.accounts import AccountDeleted
from events.graph import Blocked, Followed, Unfollowed
from events.stories import StoryExpired, StoryPosted, StoryViewed
from events.union import Event
from projections.graph import FOLLOWERS
from projections.profile import deleted
from projections.projection import Projection
from projections.store import CounterRef, Delete, Op, Put, ReadModel, SetAdd, SetRemove, Table

STORIES = Table(
    "stories",
    partition=("story_id",),
    values=("author_id", "media_id", "audience", "created_at", "expires_at", "expires_ms", "viewer_count"),
    types={"audience": str, "created_at": str, "expires_at": str},
)
USER_STORIES = Table(
    "user_stories",
    partition=("author_id",),
    clustering=("story_id",),
    values=("audience", "expires_ms"),
    types={"audience": str},
)
STORY_VIEWS = Table(
    "story_views",
    partition=("story_id",),
    clustering=("viewer_id",),
    values=("view_id",),
    indexes=(("viewer_id",),),  # the views a deleted account leaves behind
)
STORY_VIEWERS = Table(
    "story_viewers",
    partition=("story_id",),
    clustering=("view_id",),
    values=("viewer_id", "viewed_at"),
    types={"viewed_at": str},
)
STORY_TRAY = Table(
    "story_tray",
    partition=("viewer_id",),
    clustering=("author_id",),
    indexes=(("author_id",),),  # every tray an author is in, to clear when their last story goes
)
STORY_EXPIRY = Table(
    "story_expiry", partition=("bucket",), clustering=("expires_ms", "story_id"), values=("author_id",)
)
EXPIRY_BUCKET = 0


def _viewer_counter(story_id: int) -> CounterRef:
    return CounterRef(STORIES.name, {"story_id": story_id}, "viewer_count")


def _tray_entry(viewer_id: int, author_id: int) -> Put:
    return Put(STORY_TRAY.name, {"viewer_id": viewer_id, "author_id": author_id})


def _posted(event: StoryPosted, read: ReadModel) -> list[Op]:
    if deleted(read, event.author_id):
        return []  # the author's deletion overtook this story on another stream
    expires_ms = int(event.expires_at.timestamp() * 1000)
    ops: list[Op] = [
        # SetAdd, not Put: a redelivered StoryPosted must not reset viewer_count.
        SetAdd(
            STORIES.name,
            {
                "story_id": event.story_id,
                "author_id": event.author_id,
                "media_id": event.media_id,
                "audience": event.audience,
                "created_at": event.occurred_at.isoformat(),
                "expires_at": event.expires_at.isoformat(),
                "expires_ms": expires_ms,
                "viewer_count": 0,
            },
        ),
        Put(
            USER_STORIES.name,
            {
                "author_id": event.author_id,
                "story_id": event.story_id,
                "audience": event.audience,
                "expires_ms": expires_ms,
            },
        ),
        Put(
            STORY_EXPIRY.name,
            {
                "bucket": EXPIRY_BUCKET,
                "expires_ms": expires_ms,
                "story_id": event.story_id,
                "author_id": event.author_id,
            },
        ),
        _tray_entry(event.author_id, event.author_id),
    ]
    ops += [
        _tray_entry(int(f["follower_id"]), event.author_id)
        for f in read.scan(FOLLOWERS.name, {"followee_id": event.author_id})
    ]
    return ops


def _viewed(event: StoryViewed, read: ReadModel) -> list[Op]:
    if read.get(STORIES.name, {"story_id": event.story_id}) is None:
        return []  # expired or gone: a counter bump would resurrect a half row
    if deleted(read, event.viewer_id):
        return []  # the viewer's deletion overtook the view on another stream
    existing = read.get(STORY_VIEWS.name, {"story_id": event.story_id, "viewer_id": event.viewer_id})
    if existing is not None:
        return []
    return [
        SetAdd(
            STORY_VIEWS.name,
            {"story_id": event.story_id, "viewer_id": event.viewer_id, "view_id": event.event_id},
            (_viewer_counter(event.story_id),),
        ),
        Put(
            STORY_VIEWERS.name,
            {
                "story_id": event.story_id,
                "view_id": event.event_id,
                "viewer_id": event.viewer_id,
                "viewed_at": event.occurred_at.isoformat(),
            },
        ),
    ]


def _story_gone(story_id: int, author_id: int, read: ReadModel) -> list[Op]:
    """The story and its views; not the tray (the caller knows whether the author has more)."""
    ops: list[Op] = []
    story = read.get(STORIES.name, {"story_id": story_id})
    if story is not None:
        ops.append(
            Delete(
                STORY_EXPIRY.name, {"bucket": EXPIRY_BUCKET, "expires_ms": story["expires_ms"], "story_id": story_id}
            )
        )
    key = {"story_id": story_id}
    return [
        *ops,
        Delete(STORIES.name, key),
        Delete(STORY_VIEWS.name, key),
        Delete(STORY_VIEWERS.name, key),
        Delete(USER_STORIES.name, {"author_id": author_id, "story_id": story_id}),
    ]


def _leave_trays(author_id: int, read: ReadModel) -> list[Op]:
    return [
        Delete(STORY_TRAY.name, {"viewer_id": row["viewer_id"], "author_id": author_id})
        for row in read.find(STORY_TRAY.name, {"author_id": author_id})
    ]


def _expired(event: StoryExpired, read: ReadModel) -> list[Op]:
    ops = _story_gone(event.story_id, event.author_id, read)
    remaining = [
        r for r in read.scan(USER_STORIES.name, {"author_id": event.author_id}) if r["story_id"] != event.story_id
    ]
    if not remaining:
        ops += _leave_trays(event.author_id, read)
    return ops


def _followed(event: Followed, read: ReadModel) -> list[Op]:
    if deleted(read, event.follower_id, event.followee_id):
        return []
    if read.scan(USER_STORIES.name, {"author_id": event.followee_id}, limit=1):
        return [_tray_entry(event.follower_id, event.followee_id)]
    return []


def _forget_user(user_id: int, read: ReadModel) -> list[Op]:
    own = {int(r["story_id"]) for r in read.scan(USER_STORIES.name, {"author_id": user_id})}
    ops: list[Op] = []
    for story_id in sorted(own):
        ops += _story_gone(story_id, user_id, read)
    for view in read.find(STORY_VIEWS.name, {"viewer_id": user_id}):
        story_id = int(view["story_id"])
        if story_id in own:
            continue
        ops.append(
            SetRemove(STORY_VIEWS.name, {"story_id": story_id, "viewer_id": user_id}, (_viewer_counter(story_id),))
        )
        ops.append(Delete(STORY_VIEWERS.name, {"story_id": story_id, "view_id": view["view_id"]}))
    ops += _leave_trays(user_id, read)
    ops += [Delete(USER_STORIES.name, {"author_id": user_id}), Delete(STORY_TRAY.name, {"viewer_id": user_id})]
    return ops


def project(event: Event, read: ReadModel) -> list[Op]:
    match event:
        case StoryPosted():
            return _posted(event, read)
        case StoryViewed():
            return _viewed(event, read)
        case StoryExpired():
            return _expired(event, read)
        case Followed():
            return _followed(event, read)
        case Unfollowed():
            return [Delete(STORY_TRAY.name, {"viewer_id": event.follower_id, "author_id": event.followee_id})]
        case Blocked():
            a, b = event.blocker_id, event.blocked_id
            return [
                Delete(STORY_TRAY.name, {"viewer_id": a, "author_id": b}),
                Delete(STORY_TRAY.name, {"viewer_id": b, "author_id": a}),
            ]
        case AccountDeleted():
            return _forget_user(event.user_id, read)
    return []


PROJECTION = Projection(
    "stories",
    2,  # 2: events naming a deleted account are ignored whenever they arrive (was: unless registered)
    (STORIES, USER_STORIES, STORY_VIEWS, STORY_VIEWERS, STORY_TRAY, STORY_EXPIRY),
    project,
)
