"""Notifications: per-recipient groups such as "A and 12 others liked your post".

Groups (type, target):
- like            (post P)     Liked of P -> P's author; Unliked takes the actor out again.
- comment         (post P)     Commented on P -> P's author; a CommentDeleted takes the
                               commenter out when it was their last comment on P.
- mention         (post P)     PostCreated.mentions -> each mentioned user.
- mention         (comment C)  Commented.mentions -> each mentioned user except the post's
                               author, who already hears of the comment itself.
- follow          (none)       Followed -> the followee; Unfollowed takes the actor out.
- follow_request  (none)       FollowRequested -> the followee; it leaves once answered
                               or withdrawn.
Nobody is notified of their own doing. PostDeleted drops the groups about the post (and
its comments), and leaves a tombstone: a like or comment applied after it (they travel
on another stream) is ignored; AccountDeleted drops the user's list and takes them out of every group
they appear in. Blocks and changed visibility are applied when reading (`views`), so a
block lifted later brings nothing back wrongly and nothing here depends on it.

The projection listener in infra/jobs.py announces new activity on the recipient's
channel (`channel_of`) so that the SSE stream can push it.
"""

from __future__ import annotations

from events.accounts import AccountDeleted
from events.engagement import CommentDeleted, Commented, Liked, Unliked
from events.graph import (
    Followed,
    FollowRequestApproved,
    FollowRequestDenied,
    FollowRequested,
    FollowRequestWithdrawn,
    Unfollowed,
)
from events.notifications import NotificationsRead
from events.posts import PostCreated, PostDeleted
from events.union import Event
from projections.notifications.groups import Group, add_actor, drop_group, group_key, remove_actor
from projections.notifications.tables import (
    NOTIFICATION_ACTORS,
    NOTIFICATION_COMMENTS,
    NOTIFICATION_FEED,
    NOTIFICATION_GONE_POSTS,
    NOTIFICATION_GROUPS,
    NOTIFICATION_READS,
    NOTIFICATION_RECENT,
    TABLES,
)
from projections.profile import deleted
from projections.projection import Projection
from projections.store import Delete, Op, Put, ReadModel

NAME = "notifications"


def channel_of(user_id: int) -> str:
    """The pub/sub channel on which a user's new notifications are announced."""
    return f"notifications:{user_id}"


def _exists(read: ReadModel, *user_ids: int) -> bool:
    """False if an account is gone: its deletion overtook this event on another stream.

    Asks for deleted accounts, not for existing ones: an event may also be applied before
    the AccountRegistered of an account it names, and must count then too."""
    return not deleted(read, *user_ids)


def _add(read: ReadModel, event: Event, group: Group, actor_id: int) -> list[Op]:
    if not _exists(read, group.user_id, actor_id):
        return []
    return add_actor(read, group, actor_id, event.event_id, event.occurred_at.isoformat())


def _unique(ids: tuple[int, ...], *excluded: int) -> list[int]:
    return sorted(set(ids) - set(excluded))


def _post_gone(read: ReadModel, post_id: int) -> bool:
    return read.get(NOTIFICATION_GONE_POSTS.name, {"post_id": post_id}) is not None


def _commented(event: Commented, read: ReadModel) -> list[Op]:
    if _post_gone(read, event.post_id) or deleted(read, event.author_id):
        return []  # the post's or the commenter's deletion overtook the comment on another stream
    ops: list[Op] = [
        Put(
            NOTIFICATION_COMMENTS.name,
            {
                "comment_id": event.comment_id,
                "post_id": event.post_id,
                "author_id": event.author_id,
                "post_author_id": event.post_author_id,
            },
        ),
        *_add(
            read, event, Group(event.post_author_id, "comment", "post", event.post_id, event.post_id), event.author_id
        ),
    ]
    for user_id in _unique(event.mentions, event.author_id, event.post_author_id):
        group = Group(user_id, "mention", "comment", event.comment_id, event.post_id)
        ops += _add(read, event, group, event.author_id)
    return ops


def _comment_deleted(event: CommentDeleted, read: ReadModel) -> list[Op]:
    ops: list[Op] = []
    for row in read.find(NOTIFICATION_GROUPS.name, {"target_type": "comment", "target_id": event.comment_id}):
        ops += drop_group(row)
    comment = read.get(NOTIFICATION_COMMENTS.name, {"comment_id": event.comment_id})
    if comment is None:
        return ops
    ops.append(Delete(NOTIFICATION_COMMENTS.name, {"comment_id": event.comment_id}))
    author = int(comment["author_id"])
    others = read.find(NOTIFICATION_COMMENTS.name, {"post_id": event.post_id, "author_id": author}, limit=2)
    if not any(int(c["comment_id"]) != event.comment_id for c in others):
        ops += remove_actor(read, int(comment["post_author_id"]), group_key("comment", "post", event.post_id), author)
    return ops


def _post_deleted(event: PostDeleted, read: ReadModel) -> list[Op]:
    ops: list[Op] = []
    for row in read.find(NOTIFICATION_GROUPS.name, {"post_id": event.post_id}):
        ops += drop_group(row)
    for row in read.find(NOTIFICATION_COMMENTS.name, {"post_id": event.post_id}):
        ops.append(Delete(NOTIFICATION_COMMENTS.name, {"comment_id": row["comment_id"]}))
    ops.append(Put(NOTIFICATION_GONE_POSTS.name, {"post_id": event.post_id}))
    return ops


def _read(event: NotificationsRead, read: ReadModel) -> list[Op]:
    if deleted(read, event.user_id):
        return []  # the reader's deletion overtook this on another stream
    row = read.get(NOTIFICATION_READS.name, {"user_id": event.user_id})
    if row is not None and int(row["up_to_id"]) >= event.up_to_id:
        return []  # the watermark never moves back
    return [Put(NOTIFICATION_READS.name, {"user_id": event.user_id, "up_to_id": event.up_to_id})]


def _forget_user(user_id: int, read: ReadModel) -> list[Op]:
    ops: list[Op] = []
    for row in read.find(NOTIFICATION_ACTORS.name, {"actor_id": user_id}):
        if int(row["user_id"]) != user_id:
            ops += remove_actor(read, int(row["user_id"]), str(row["group_key"]), user_id)
    for row in read.find(NOTIFICATION_COMMENTS.name, {"author_id": user_id}):
        ops.append(Delete(NOTIFICATION_COMMENTS.name, {"comment_id": row["comment_id"]}))
    mine = {"user_id": user_id}
    ops += [
        Delete(NOTIFICATION_GROUPS.name, mine),
        Delete(NOTIFICATION_FEED.name, mine),
        Delete(NOTIFICATION_ACTORS.name, mine),
        Delete(NOTIFICATION_RECENT.name, mine),
        Delete(NOTIFICATION_READS.name, mine),
    ]
    return ops


def _request_answered(read: ReadModel, follower: int, followee: int) -> list[Op]:
    return remove_actor(read, followee, group_key("follow_request", None, None), follower)


def project(event: Event, read: ReadModel) -> list[Op]:
    match event:
        case Liked():
            if _post_gone(read, event.post_id):
                return []
            group = Group(event.post_author_id, "like", "post", event.post_id, event.post_id)
            return _add(read, event, group, event.user_id)
        case Unliked():
            return remove_actor(read, event.post_author_id, group_key("like", "post", event.post_id), event.user_id)
        case Commented():
            return _commented(event, read)
        case CommentDeleted():
            return _comment_deleted(event, read)
        case PostCreated():
            ops: list[Op] = []
            for user_id in _unique(event.mentions, event.author_id):
                ops += _add(
                    read, event, Group(user_id, "mention", "post", event.post_id, event.post_id), event.author_id
                )
            return ops
        case PostDeleted():
            return _post_deleted(event, read)
        case Followed():
            return _request_answered(read, event.follower_id, event.followee_id) + _add(
                read, event, Group(event.followee_id, "follow"), event.follower_id
            )
        case Unfollowed():
            return remove_actor(read, event.followee_id, group_key("follow", None, None), event.follower_id)
        case FollowRequested():
            return _add(read, event, Group(event.followee_id, "follow_request"), event.follower_id)
        case FollowRequestApproved() | FollowRequestDenied() | FollowRequestWithdrawn():
            return _request_answered(read, event.follower_id, event.followee_id)
        case NotificationsRead():
            return _read(event, read)
        case AccountDeleted():
            return _forget_user(event.user_id, read)
    return []


PROJECTION = Projection(NAME, 2, TABLES, project)  # 2: deleted accounts, not unknown ones, are skipped
