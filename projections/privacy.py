"""The one privacy policy: may viewer V see, or interact with, something of owner O?

Every command and every read path asks here. It is a pure function of the graph
and profile read models, so it lives beside the projections that build them.

Rules
- Blocks are two-way: if either blocked the other, each is invisible to the other.
- A deleted (or unknown) account is invisible.
- A private account shows its profile card, but its content (posts, stories,
  follower lists, likes by it) only to itself and approved followers.
- A post with audience "followers" is for the author and followers only.
- A story is for the author and followers; "close_friends" narrows it to the
  author's close friends list.
- Anonymous viewers (None) see public accounts' public posts only.
"""

from __future__ import annotations

from projections.graph import BLOCKS, CLOSE_FRIENDS, FOLLOWING
from projections.profile import ACCOUNTS
from projections.store import ReadModel, Row


class Privacy:
    def __init__(self, read: ReadModel) -> None:
        self._read = read

    def account(self, user_id: int) -> Row | None:
        return self._read.get(ACCOUNTS.name, {"user_id": user_id})

    def blocked_either(self, a: int | None, b: int) -> bool:
        if a is None or a == b:
            return False
        return (
            self._read.get(BLOCKS.name, {"blocker_id": a, "blocked_id": b}) is not None
            or self._read.get(BLOCKS.name, {"blocker_id": b, "blocked_id": a}) is not None
        )

    def follows(self, follower: int | None, followee: int) -> bool:
        if follower is None:
            return False
        return self._read.get(FOLLOWING.name, {"follower_id": follower, "followee_id": followee}) is not None

    def can_see_account(self, viewer: int | None, owner: int) -> bool:
        """The profile card: exists and no block either way."""
        return self.account(owner) is not None and not self.blocked_either(viewer, owner)

    def can_see_content(self, viewer: int | None, owner: int) -> bool:
        """Posts, stories, lists of the owner: the private-account gate on top of blocks."""
        account = self.account(owner)
        if account is None or self.blocked_either(viewer, owner):
            return False
        return viewer == owner or not account["private"] or self.follows(viewer, owner)

    def can_see_post(self, viewer: int | None, author_id: int, audience: str) -> bool:
        if not self.can_see_content(viewer, author_id):
            return False
        return audience == "public" or viewer == author_id or self.follows(viewer, author_id)

    def can_see_story(self, viewer: int | None, author_id: int, audience: str) -> bool:
        if viewer is None or not self.can_see_content(viewer, author_id):
            return False
        if viewer == author_id:
            return True
        if not self.follows(viewer, author_id):
            return False
        if audience == "close_friends":
            return self._read.get(CLOSE_FRIENDS.name, {"user_id": author_id, "friend_id": viewer}) is not None
        return True

    def can_interact(self, actor: int, owner: int) -> bool:
        """Follow, like, comment, mention: never across a block, never with the absent."""
        return self.account(actor) is not None and self.can_see_account(actor, owner)
