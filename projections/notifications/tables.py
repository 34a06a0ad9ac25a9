"""The notification tables: one list of groups per recipient.

A group is one (type, target) of one recipient, e.g. "likes of post 7 for user 3",
and its key is a string naming both (`group_key`). A group's `latest_id` is the event
id of its newest activity; it is what the client sees as the notification `id`, what
the list is ordered by, and what the read watermark is compared with. New activity in
an old group therefore moves it to the top as a new, unread notification.
"""

from __future__ import annotations

from projections.store import Table

NOTIFICATION_GROUPS = Table(
    "notification_groups",
    partition=("user_id",),
    clustering=("group_key",),
    values=("kind", "target_type", "target_id", "post_id", "count", "latest_id", "created_at"),
    types={"group_key": str, "kind": str, "target_type": str, "created_at": str},
    # Groups about a post or comment that is deleted go with it.
    indexes=(("post_id",), ("target_type", "target_id")),
)
# A recipient's groups, newest activity first. One event adds at most one activity to a
# recipient's list, so `latest_id` alone is unique per user; the group key in the key
# only makes that an invariant of the table rather than of the projection.
NOTIFICATION_FEED = Table(
    "notification_feed",
    partition=("user_id",),
    clustering=("latest_id", "group_key"),
    types={"group_key": str},
)
# Who is in a group (one row per actor, with their newest activity in it).
NOTIFICATION_ACTORS = Table(
    "notification_actors",
    partition=("user_id", "group_key"),
    clustering=("actor_id",),
    values=("activity_id", "occurred_at"),
    types={"group_key": str, "occurred_at": str},
    indexes=(("actor_id",),),  # every group a deleted account appears in
)
# The same actors ordered by activity, for "the 3 newest".
NOTIFICATION_RECENT = Table(
    "notification_recent",
    partition=("user_id", "group_key"),
    clustering=("activity_id",),
    values=("actor_id", "occurred_at"),
    types={"group_key": str, "occurred_at": str},
)
# The read watermark: every notification with an id up to this is read.
NOTIFICATION_READS = Table("notification_reads", partition=("user_id",), values=("up_to_id",))
# Comments seen by this projection: a CommentDeleted names neither its author nor the
# post's author, and the engagement tables have already forgotten it by then.
NOTIFICATION_COMMENTS = Table(
    "notification_comments",
    partition=("comment_id",),
    values=("post_id", "author_id", "post_author_id"),
    indexes=(("post_id", "author_id"), ("author_id",)),
)

# Deleted posts: a like or comment of one applied after its PostDeleted (which the posts
# stream carries, not the engagement stream) must not bring its notification back.
NOTIFICATION_GONE_POSTS = Table("notification_gone_posts", partition=("post_id",))

TABLES = (
    NOTIFICATION_GROUPS,
    NOTIFICATION_FEED,
    NOTIFICATION_ACTORS,
    NOTIFICATION_RECENT,
    NOTIFICATION_READS,
    NOTIFICATION_COMMENTS,
    NOTIFICATION_GONE_POSTS,
)
