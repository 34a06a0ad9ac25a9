"""Reading notifications as one viewer may see them now.

What the projection stored is filtered here, at read time, so that it is always
current: actors blocked either way with the viewer (or gone) are left out of the
actors and the count, a group with no visible actor disappears, and a group whose
target the viewer can no longer see (post deleted, made followers-only, author
blocked or private) disappears too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from projections.graph import BLOCKED_BY, BLOCKS
from projections.notifications.tables import (
    NOTIFICATION_ACTORS,
    NOTIFICATION_COMMENTS,
    NOTIFICATION_FEED,
    NOTIFICATION_GROUPS,
    NOTIFICATION_READS,
    NOTIFICATION_RECENT,
)
from projections.posts import POSTS
from projections.posts.views import author_view
from projections.privacy import Privacy
from projections.store import ReadModel, Row

SHOWN_ACTORS = 3


@dataclass(frozen=True)
class Reader:
    """One viewer's reading of their list: who they cannot see and their watermark."""

    read: ReadModel
    privacy: Privacy
    viewer: int
    hidden: frozenset[int]
    read_up_to: int

    @classmethod
    def load(cls, read: ReadModel, viewer: int) -> Reader:
        blocked = {int(r["blocked_id"]) for r in read.scan(BLOCKS.name, {"blocker_id": viewer})}
        blocked |= {int(r["blocker_id"]) for r in read.scan(BLOCKED_BY.name, {"blocked_id": viewer})}
        mark = read.get(NOTIFICATION_READS.name, {"user_id": viewer})
        return cls(read, Privacy(read), viewer, frozenset(blocked), int(mark["up_to_id"]) if mark else 0)

    def _post_visible(self, post_id: int) -> bool:
        post = self.read.get(POSTS.name, {"post_id": post_id})
        return post is not None and self.privacy.can_see_post(
            self.viewer, int(post["author_id"]), str(post["audience"])
        )

    def _target(self, group: Row) -> dict[str, str] | bool | None:
        """The target to show, None for a group without one, False if the viewer cannot see it."""
        kind, target_id = group["target_type"], group["target_id"]
        if kind is None:
            return None
        if kind == "comment":
            comment = self.read.get(NOTIFICATION_COMMENTS.name, {"comment_id": target_id})
            if comment is None or int(comment["author_id"]) in self.hidden:
                return False
        if group["post_id"] is not None and not self._post_visible(int(group["post_id"])):
            return False
        return {"type": str(kind), "id": str(target_id)}

    def _hidden_in(self, group: Row) -> int:
        """How many of the group's actors the viewer cannot see, by the cheaper of two ways."""
        key = {"user_id": self.viewer, "group_key": group["group_key"]}
        if not self.hidden:
            return 0
        if int(group["count"]) <= len(self.hidden):
            rows = self.read.scan(NOTIFICATION_ACTORS.name, key)
            return sum(1 for r in rows if int(r["actor_id"]) in self.hidden)
        return sum(
            1 for h in self.hidden if self.read.get(NOTIFICATION_ACTORS.name, {**key, "actor_id": h}) is not None
        )

    def _actors(self, group: Row, hidden: int) -> list[dict[str, Any]]:
        key = {"user_id": self.viewer, "group_key": group["group_key"]}
        # At most `hidden` rows are skipped for blocks; accounts gone are already out.
        rows = self.read.scan(NOTIFICATION_RECENT.name, key, desc=True, limit=SHOWN_ACTORS + hidden)
        actors = []
        for row in rows:
            actor_id = int(row["actor_id"])
            account = self.privacy.account(actor_id) if actor_id not in self.hidden else None
            if account is not None:
                actors.append(author_view(account))
            if len(actors) == SHOWN_ACTORS:
                break
        return actors

    def render(self, group: Row) -> dict[str, Any] | None:
        """The notification as the viewer sees it, or None if nothing of it is visible."""
        target = self._target(group)
        if target is False:
            return None
        hidden = self._hidden_in(group)
        count = int(group["count"]) - hidden
        actors = self._actors(group, hidden) if count > 0 else []
        if not actors:
            return None
        latest_id = int(group["latest_id"])
        return {
            "id": str(latest_id),
            "type": group["kind"],
            "actors": actors,
            "count": count,
            "target": target,
            "created_at": group["created_at"],
            "read": latest_id <= self.read_up_to,
        }

    def group(self, key: str) -> Row | None:
        return self.read.get(NOTIFICATION_GROUPS.name, {"user_id": self.viewer, "group_key": key})

    def newest_first(self, before: int | None = None, chunk: int = 50) -> Iterator[tuple[int, dict[str, Any]]]:
        """(position, item) of every visible notification older than `before`, newest first."""
        while True:
            rows = self.read.scan(
                NOTIFICATION_FEED.name, {"user_id": self.viewer}, before=before, desc=True, limit=chunk
            )
            for row in rows:
                before = int(row["latest_id"])
                group = self.group(str(row["group_key"]))
                item = self.render(group) if group is not None else None
                if item is not None:
                    yield before, item
            if len(rows) < chunk:
                return


def newest_notification_id(read: ReadModel, user_id: int) -> int | None:
    rows = read.scan(NOTIFICATION_FEED.name, {"user_id": user_id}, desc=True, limit=1)
    return int(rows[0]["latest_id"]) if rows else None


def read_watermark(read: ReadModel, user_id: int) -> int:
    row = read.get(NOTIFICATION_READS.name, {"user_id": user_id})
    return int(row["up_to_id"]) if row else 0
