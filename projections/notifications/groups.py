"""Moving actors in and out of one notification group, as read-model operations.

Each function reads the group as it stands before the event and returns the
operations that bring it to the state after it. An event touches each group at most
once, and an activity already applied (same or newer activity id for that actor)
yields nothing, so redelivery changes nothing and counts stay exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from projections.notifications.tables import (
    NOTIFICATION_ACTORS,
    NOTIFICATION_FEED,
    NOTIFICATION_GROUPS,
    NOTIFICATION_RECENT,
)
from projections.store import Delete, Op, Put, ReadModel, Row

Kind = Literal["like", "comment", "follow", "follow_request", "mention"]
TargetType = Literal["post", "comment", "user"]


@dataclass(frozen=True)
class Group:
    """Which group of which recipient: the recipient, the type and what it is about."""

    user_id: int
    kind: Kind
    target_type: TargetType | None = None
    target_id: int | None = None
    post_id: int | None = None  # the post the target belongs to, for visibility and deletion

    @property
    def key(self) -> str:
        return group_key(self.kind, self.target_type, self.target_id)


def group_key(kind: str, target_type: str | None, target_id: int | None) -> str:
    return kind if target_type is None else f"{kind}:{target_type}:{target_id}"


def _key(user_id: int, key: str) -> dict[str, object]:
    return {"user_id": user_id, "group_key": key}


def _group_row(group: Group, count: int, latest_id: int, created_at: str) -> Row:
    return {
        "user_id": group.user_id,
        "group_key": group.key,
        "kind": group.kind,
        "target_type": group.target_type,
        "target_id": group.target_id,
        "post_id": group.post_id,
        "count": count,
        "latest_id": latest_id,
        "created_at": created_at,
    }


def _feed_moves(user_id: int, key: str, old_latest: int | None, new_latest: int) -> list[Op]:
    if old_latest == new_latest:
        return []
    ops: list[Op] = []
    if old_latest is not None:
        ops.append(Delete(NOTIFICATION_FEED.name, {"user_id": user_id, "latest_id": old_latest, "group_key": key}))
    ops.append(Put(NOTIFICATION_FEED.name, {"user_id": user_id, "latest_id": new_latest, "group_key": key}))
    return ops


def add_actor(read: ReadModel, group: Group, actor_id: int, activity_id: int, occurred_at: str) -> list[Op]:
    user_id, key = group.user_id, group.key
    if actor_id == user_id:
        return []  # never notify yourself
    existing = read.get(NOTIFICATION_ACTORS.name, {**_key(user_id, key), "actor_id": actor_id})
    if existing is not None and int(existing["activity_id"]) >= activity_id:
        return []  # already applied (redelivery) or superseded
    ops: list[Op] = []
    if existing is not None:
        ops.append(Delete(NOTIFICATION_RECENT.name, {**_key(user_id, key), "activity_id": existing["activity_id"]}))
    ops += [
        Put(
            NOTIFICATION_ACTORS.name,
            {**_key(user_id, key), "actor_id": actor_id, "activity_id": activity_id, "occurred_at": occurred_at},
        ),
        Put(
            NOTIFICATION_RECENT.name,
            {**_key(user_id, key), "activity_id": activity_id, "actor_id": actor_id, "occurred_at": occurred_at},
        ),
    ]
    row = read.get(NOTIFICATION_GROUPS.name, _key(user_id, key))
    count = (int(row["count"]) if row else 0) + (0 if existing else 1)
    old_latest = int(row["latest_id"]) if row else None
    if old_latest is not None and old_latest > activity_id:
        latest, created_at = old_latest, str(row["created_at"]) if row else ""
    else:
        latest, created_at = activity_id, occurred_at
    ops.append(Put(NOTIFICATION_GROUPS.name, _group_row(group, count, latest, created_at)))
    ops += _feed_moves(user_id, key, old_latest, latest)
    return ops


def drop_group(row: Row) -> list[Op]:
    """`row` is the group's NOTIFICATION_GROUPS row."""
    user_id, key = int(row["user_id"]), str(row["group_key"])
    return [
        Delete(NOTIFICATION_GROUPS.name, _key(user_id, key)),
        Delete(NOTIFICATION_FEED.name, {"user_id": user_id, "latest_id": row["latest_id"], "group_key": key}),
        Delete(NOTIFICATION_ACTORS.name, _key(user_id, key)),
        Delete(NOTIFICATION_RECENT.name, _key(user_id, key)),
    ]


def remove_actor(read: ReadModel, user_id: int, key: str, actor_id: int) -> list[Op]:
    existing = read.get(NOTIFICATION_ACTORS.name, {**_key(user_id, key), "actor_id": actor_id})
    row = read.get(NOTIFICATION_GROUPS.name, _key(user_id, key))
    if existing is None or row is None:
        return []
    count = int(row["count"]) - 1
    if count <= 0:
        return drop_group(row)
    gone = int(existing["activity_id"])
    ops: list[Op] = [
        Delete(NOTIFICATION_ACTORS.name, {**_key(user_id, key), "actor_id": actor_id}),
        Delete(NOTIFICATION_RECENT.name, {**_key(user_id, key), "activity_id": gone}),
    ]
    latest, created_at = int(row["latest_id"]), str(row["created_at"])
    if latest == gone:  # the group falls back to its newest remaining activity
        newest = read.scan(NOTIFICATION_RECENT.name, _key(user_id, key), before=gone, desc=True, limit=1)
        if newest:
            latest, created_at = int(newest[0]["activity_id"]), str(newest[0]["occurred_at"])
    ops.append(Put(NOTIFICATION_GROUPS.name, row | {"count": count, "latest_id": latest, "created_at": created_at}))
    ops += _feed_moves(user_id, key, int(row["latest_id"]), latest)
    return ops
