"""Likes, comments, bookmarks and their exact counts.

Counts move only through SetAdd/SetRemove on the membership tables, so a
redelivered Liked or Commented never counts twice and an Unliked without its
Liked never goes below zero. A deleted post or account removes its rows through
the indexes in `tables`, and leaves a tombstone so that an engagement event that
raced it on another stream cannot bring them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from events.accounts import AccountDeleted
from events.engagement import Bookmarked, CommentDeleted, Commented, Liked, Unbookmarked, Unliked
from events.posts import PostCreated, PostDeleted
from events.union import Event
from projections.engagement.cascade import comment_counter, forget_post, forget_user, like_counter
from projections.engagement.tables import (
    AUTHOR_POSTS,
    BOOKMARKS,
    COMMENT_POSTS,
    COMMENTS,
    ENGAGEMENT_COUNTS,
    GONE_POSTS,
    GONE_USERS,
    LIKES,
    POST_LIKERS,
    TABLES,
    USER_BOOKMARKS,
    USER_COMMENTS,
    USER_LIKES,
)
from projections.posts.views import timestamp
from projections.projection import Projection
from projections.store import Delete, Op, Put, ReadModel, SetAdd, SetRemove


class PostEngagement(TypedDict):
    like_count: int
    comment_count: int
    liked: bool
    bookmarked: bool


def post_engagement(read: ReadModel, post_ids: Sequence[int], viewer: int | None) -> dict[int, PostEngagement]:
    """Counts and the viewer's own flags for each post, for post responses."""
    result: dict[int, PostEngagement] = {}
    for post_id in post_ids:
        counts = read.get(ENGAGEMENT_COUNTS.name, {"post_id": post_id}) or {}
        mine = {"post_id": post_id, "user_id": viewer}
        result[post_id] = PostEngagement(
            like_count=max(int(counts.get("like_count") or 0), 0),
            comment_count=max(int(counts.get("comment_count") or 0), 0),
            liked=viewer is not None and read.get(LIKES.name, mine) is not None,
            bookmarked=viewer is not None and read.get(BOOKMARKS.name, mine) is not None,
        )
    return result


def _gone(read: ReadModel, *, posts: Sequence[int] = (), users: Sequence[int] = ()) -> bool:
    return any(read.get(GONE_POSTS.name, {"post_id": p}) is not None for p in posts) or any(
        read.get(GONE_USERS.name, {"user_id": u}) is not None for u in users
    )


def _authored(author_id: int, post_id: int) -> Op:
    return SetAdd(AUTHOR_POSTS.name, {"author_id": author_id, "post_id": post_id})


def _liked(event: Liked, read: ReadModel) -> list[Op]:
    post, user = event.post_id, event.user_id
    if _gone(read, posts=[post], users=[user, event.post_author_id]):
        return []
    existing = read.get(LIKES.name, {"post_id": post, "user_id": user})
    ops: list[Op] = [
        SetAdd(LIKES.name, {"post_id": post, "user_id": user, "like_id": event.event_id}, (like_counter(post),)),
        SetAdd(USER_LIKES.name, {"user_id": user, "post_id": post, "like_id": event.event_id}),
        _authored(event.post_author_id, post),
    ]
    if existing is None:  # a second Liked of a standing like must not list the user twice
        ops.append(Put(POST_LIKERS.name, {"post_id": post, "like_id": event.event_id, "user_id": user}))
    return ops


def _unliked(event: Unliked, read: ReadModel) -> list[Op]:
    post, user = event.post_id, event.user_id
    existing = read.get(LIKES.name, {"post_id": post, "user_id": user})
    ops: list[Op] = [
        SetRemove(LIKES.name, {"post_id": post, "user_id": user}, (like_counter(post),)),
        Delete(USER_LIKES.name, {"user_id": user, "post_id": post}),
    ]
    if existing is not None:
        ops.append(Delete(POST_LIKERS.name, {"post_id": post, "like_id": existing["like_id"]}))
    return ops


def _commented(event: Commented, read: ReadModel) -> list[Op]:
    post, author = event.post_id, event.author_id
    if _gone(read, posts=[post], users=[author, event.post_author_id]):
        return []
    row = {
        "post_id": post,
        "comment_id": event.comment_id,
        "author_id": author,
        "text": event.text,
        "created_at": timestamp(event.occurred_at),
    }
    return [
        SetAdd(COMMENTS.name, row, (comment_counter(post),)),
        Put(COMMENT_POSTS.name, {"comment_id": event.comment_id, "post_id": post, "author_id": author}),
        Put(USER_COMMENTS.name, {"author_id": author, "comment_id": event.comment_id, "post_id": post}),
        _authored(event.post_author_id, post),
    ]


def _comment_deleted(event: CommentDeleted, read: ReadModel) -> list[Op]:
    ops: list[Op] = [
        SetRemove(
            COMMENTS.name, {"post_id": event.post_id, "comment_id": event.comment_id}, (comment_counter(event.post_id),)
        ),
        Delete(COMMENT_POSTS.name, {"comment_id": event.comment_id}),
    ]
    where = read.get(COMMENT_POSTS.name, {"comment_id": event.comment_id})
    if where is not None:
        ops.append(Delete(USER_COMMENTS.name, {"author_id": where["author_id"], "comment_id": event.comment_id}))
    return ops


def _bookmarked(event: Bookmarked, read: ReadModel) -> list[Op]:
    post, user = event.post_id, event.user_id
    if _gone(read, posts=[post], users=[user]):
        return []
    existing = read.get(BOOKMARKS.name, {"post_id": post, "user_id": user})
    ops: list[Op] = [SetAdd(BOOKMARKS.name, {"post_id": post, "user_id": user, "bookmark_id": event.event_id})]
    if existing is None:
        ops.append(Put(USER_BOOKMARKS.name, {"user_id": user, "bookmark_id": event.event_id, "post_id": post}))
    return ops


def _unbookmarked(event: Unbookmarked, read: ReadModel) -> list[Op]:
    existing = read.get(BOOKMARKS.name, {"post_id": event.post_id, "user_id": event.user_id})
    if existing is None:
        return []
    return [
        SetRemove(BOOKMARKS.name, {"post_id": event.post_id, "user_id": event.user_id}),
        Delete(USER_BOOKMARKS.name, {"user_id": event.user_id, "bookmark_id": existing["bookmark_id"]}),
    ]


def project(event: Event, read: ReadModel) -> list[Op]:
    match event:
        case Liked():
            return _liked(event, read)
        case Unliked():
            return _unliked(event, read)
        case Commented():
            return _commented(event, read)
        case CommentDeleted():
            return _comment_deleted(event, read)
        case Bookmarked():
            return _bookmarked(event, read)
        case Unbookmarked():
            return _unbookmarked(event, read)
        case PostCreated():
            if _gone(read, users=[event.author_id]):
                # Bookmarked names no author, so one may have come in before this post
                # of a deleted author: clear the post as its author's deletion would have.
                return forget_post(event.post_id, read)
            if _gone(read, posts=[event.post_id]):
                return []
            return [_authored(event.author_id, event.post_id)]
        case PostDeleted():
            return [
                *forget_post(event.post_id, read),
                Delete(AUTHOR_POSTS.name, {"author_id": event.author_id, "post_id": event.post_id}),
            ]
        case AccountDeleted():
            return forget_user(event.user_id, read)
    return []


PROJECTION = Projection("engagement", 1, TABLES, project)
