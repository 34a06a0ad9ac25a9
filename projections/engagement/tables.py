"""The engagement read model: likes, comments, bookmarks, their counts, and the indexes
that let a deleted post or account take its traces with it without a full scan.

Each fact is kept twice where two orders are needed: by (post, user) for "did I like
it?" and exact counts, and by time (the event id) for newest/oldest-first pages.
"""

from __future__ import annotations

from projections.store import Table

# Membership: the source of truth for `liked` and, through SetAdd/SetRemove, like_count.
LIKES = Table("likes", partition=("post_id",), clustering=("user_id",), values=("like_id",))
# Who liked a post, newest first (like_id is the Liked event id, so it sorts by time).
POST_LIKERS = Table("post_likers", partition=("post_id",), clustering=("like_id",), values=("user_id",))
# A user's likes, so that deleting the account can remove them and lower the counts.
USER_LIKES = Table("user_likes", partition=("user_id",), clustering=("post_id",), values=("like_id",))

# A post's comments, oldest first (comment ids are time-sortable event ids).
COMMENTS = Table(
    "comments",
    partition=("post_id",),
    clustering=("comment_id",),
    values=("author_id", "text", "created_at"),
    types={"text": str, "created_at": str},
)
# Where a comment lives, for DELETE /v1/comments/{id}.
COMMENT_POSTS = Table("comment_posts", partition=("comment_id",), values=("post_id", "author_id"))
# A user's comments, so that deleting the account can remove them and lower the counts.
USER_COMMENTS = Table("user_comments", partition=("author_id",), clustering=("comment_id",), values=("post_id",))

# Membership: `bookmarked`, and who to clean up when the post goes.
BOOKMARKS = Table("bookmarks", partition=("post_id",), clustering=("user_id",), values=("bookmark_id",))
# A user's bookmarks, newest first.
USER_BOOKMARKS = Table("user_bookmarks", partition=("user_id",), clustering=("bookmark_id",), values=("post_id",))

# Exact counts per post, moved only by SetAdd/SetRemove on LIKES and COMMENTS.
ENGAGEMENT_COUNTS = Table("engagement_counts", partition=("post_id",), values=("like_count", "comment_count"))

# Posts per author: the posts projection forgets an author's posts before this one
# runs, so deleting an account needs its own list to clear the engagement on them.
AUTHOR_POSTS = Table("engagement_author_posts", partition=("author_id",), clustering=("post_id",))

# Tombstones: streams are ordered per key only, so a Liked may arrive after the
# PostDeleted or AccountDeleted it raced with; it must not bring the rows back.
GONE_POSTS = Table("engagement_gone_posts", partition=("post_id",))
GONE_USERS = Table("engagement_gone_users", partition=("user_id",))

TABLES = (
    LIKES,
    POST_LIKERS,
    USER_LIKES,
    COMMENTS,
    COMMENT_POSTS,
    USER_COMMENTS,
    BOOKMARKS,
    USER_BOOKMARKS,
    ENGAGEMENT_COUNTS,
    AUTHOR_POSTS,
    GONE_POSTS,
    GONE_USERS,
)
