"""What a deleted post or account takes with it from the engagement tables.

Scans are bounded by the thing deleted (one post's likes, one user's comments),
never by the whole table: that is what the per-user and per-author indexes are for.
"""

from __future__ import annotations

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
    USER_BOOKMARKS,
    USER_COMMENTS,
    USER_LIKES,
)
from projections.store import CounterRef, Delete, Op, Put, ReadModel, SetRemove


def like_counter(post_id: int) -> CounterRef:
    return CounterRef(ENGAGEMENT_COUNTS.name, {"post_id": post_id}, "like_count")


def comment_counter(post_id: int) -> CounterRef:
    return CounterRef(ENGAGEMENT_COUNTS.name, {"post_id": post_id}, "comment_count")


def forget_post(post_id: int, read: ReadModel) -> list[Op]:
    """Every like, comment and bookmark of the post, their per-user index rows, its counts."""
    ops: list[Op] = []
    for like in read.scan(LIKES.name, {"post_id": post_id}):
        ops.append(Delete(USER_LIKES.name, {"user_id": like["user_id"], "post_id": post_id}))
    for comment in read.scan(COMMENTS.name, {"post_id": post_id}):
        ops.append(Delete(USER_COMMENTS.name, {"author_id": comment["author_id"], "comment_id": comment["comment_id"]}))
        ops.append(Delete(COMMENT_POSTS.name, {"comment_id": comment["comment_id"]}))
    for bookmark in read.scan(BOOKMARKS.name, {"post_id": post_id}):
        ops.append(
            Delete(USER_BOOKMARKS.name, {"user_id": bookmark["user_id"], "bookmark_id": bookmark["bookmark_id"]})
        )
    key = {"post_id": post_id}
    ops += [
        Delete(LIKES.name, key),
        Delete(POST_LIKERS.name, key),
        Delete(COMMENTS.name, key),
        Delete(BOOKMARKS.name, key),
        Delete(ENGAGEMENT_COUNTS.name, key),
        Put(GONE_POSTS.name, key),
    ]
    return ops


def forget_user(user_id: int, read: ReadModel) -> list[Op]:
    """The user's likes and comments (lowering the counts they added), their bookmarks,
    and all engagement on the posts they wrote."""
    ops: list[Op] = []
    for like in read.scan(USER_LIKES.name, {"user_id": user_id}):
        post_id = like["post_id"]
        ops.append(SetRemove(LIKES.name, {"post_id": post_id, "user_id": user_id}, (like_counter(post_id),)))
        ops.append(Delete(POST_LIKERS.name, {"post_id": post_id, "like_id": like["like_id"]}))
    for comment in read.scan(USER_COMMENTS.name, {"author_id": user_id}):
        post_id = comment["post_id"]
        ops.append(
            SetRemove(
                COMMENTS.name,
                {"post_id": post_id, "comment_id": comment["comment_id"]},
                (comment_counter(post_id),),
            )
        )
        ops.append(Delete(COMMENT_POSTS.name, {"comment_id": comment["comment_id"]}))
    for bookmark in read.scan(USER_BOOKMARKS.name, {"user_id": user_id}):
        ops.append(Delete(BOOKMARKS.name, {"post_id": bookmark["post_id"], "user_id": user_id}))
    for post in read.scan(AUTHOR_POSTS.name, {"author_id": user_id}):
        ops += forget_post(post["post_id"], read)
    ops += [
        Delete(USER_LIKES.name, {"user_id": user_id}),
        Delete(USER_COMMENTS.name, {"author_id": user_id}),
        Delete(USER_BOOKMARKS.name, {"user_id": user_id}),
        Delete(AUTHOR_POSTS.name, {"author_id": user_id}),
        Put(GONE_USERS.name, {"user_id": user_id}),
    ]
    return ops
