"""The posts read model: posts by id, posts by author, live post counts, media in posts.

USER_POST_COUNTS moves only with USER_POSTS membership (SetAdd/SetRemove), so a
redelivered PostCreated or PostDeleted never counts twice. A PostCreated applied after
its author's AccountDeleted (another stream, so possible in the scale stack) is ignored,
as the deletion would have removed the post.
"""

from __future__ import annotations

from events.accounts import AccountDeleted
from events.posts import PostCreated, PostDeleted
from events.union import Event
from projections.posts.views import timestamp
from projections.profile import deleted
from projections.projection import Projection
from projections.store import CounterRef, Delete, Op, Put, ReadModel, SetAdd, SetRemove, Table

POSTS = Table(
    "posts",
    partition=("post_id",),
    values=("author_id", "caption", "media_ids", "audience", "mentions", "created_at"),
    types={"caption": str, "media_ids": list, "audience": str, "mentions": list, "created_at": str},
)
USER_POSTS = Table(
    "user_posts", partition=("author_id",), clustering=("post_id",), values=("audience",), types={"audience": str}
)
# Read by the profile query: number of live posts per author.
USER_POST_COUNTS = Table("user_post_counts", partition=("user_id",), values=("posts",))
# Which live posts show a media item: lets GET /v1/media/{id} ask "is it in a post you may see?".
MEDIA_POSTS = Table("media_posts", partition=("media_id",), clustering=("post_id",), values=("author_id",))


def _count(author_id: int) -> CounterRef:
    return CounterRef(USER_POST_COUNTS.name, {"user_id": author_id}, "posts")


def _created(event: PostCreated) -> list[Op]:
    ops: list[Op] = [
        Put(
            POSTS.name,
            {
                "post_id": event.post_id,
                "author_id": event.author_id,
                "caption": event.caption,
                "media_ids": list(event.media_ids),
                "audience": event.audience,
                "mentions": list(event.mentions),
                "created_at": timestamp(event.occurred_at),
            },
        ),
        SetAdd(
            USER_POSTS.name,
            {"author_id": event.author_id, "post_id": event.post_id, "audience": event.audience},
            (_count(event.author_id),),
        ),
    ]
    ops += [
        Put(MEDIA_POSTS.name, {"media_id": m, "post_id": event.post_id, "author_id": event.author_id})
        for m in event.media_ids
    ]
    return ops


def _removed(post_id: int, author_id: int, read: ReadModel) -> list[Op]:
    ops: list[Op] = []
    row = read.get(POSTS.name, {"post_id": post_id})
    if row is not None:
        ops += [Delete(MEDIA_POSTS.name, {"media_id": m, "post_id": post_id}) for m in row["media_ids"]]
    ops.append(Delete(POSTS.name, {"post_id": post_id}))
    ops.append(SetRemove(USER_POSTS.name, {"author_id": author_id, "post_id": post_id}, (_count(author_id),)))
    return ops


def _forget_author(author_id: int, read: ReadModel) -> list[Op]:
    ops: list[Op] = []
    for entry in read.scan(USER_POSTS.name, {"author_id": author_id}):
        ops += _removed(int(entry["post_id"]), author_id, read)
    ops += [Delete(USER_POSTS.name, {"author_id": author_id}), Delete(USER_POST_COUNTS.name, {"user_id": author_id})]
    return ops


def project(event: Event, read: ReadModel) -> list[Op]:
    match event:
        case PostCreated():
            if deleted(read, event.author_id):
                return []  # the author's deletion overtook the post on another stream
            return _created(event)
        case PostDeleted():
            return _removed(event.post_id, event.author_id, read)
        case AccountDeleted():
            return _forget_author(event.user_id, read)
    return []


# 2: a post applied after its author's deletion is ignored
PROJECTION = Projection("posts", 2, (POSTS, USER_POSTS, USER_POST_COUNTS, MEDIA_POSTS), project)
