"""Engagement: like, comment, bookmark. Pure decisions over small state.

Only someone who can see a post may engage with it; to anyone else the post is
absent (404). One like per user and post is a reservation, so that even writers
that do not share this process's lock cannot both win; liking again, or unliking
what is not liked, answers the current state and appends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from commands.context import CommandContext, Decision, Meta
from commands.errors import Forbidden, Invalid, NotFound
from commands.ports import Reservation
from commands.posts import resolve_mentions
from events.engagement import Bookmarked, CommentDeleted, Commented, Liked, Unbookmarked, Unliked
from projections.engagement.tables import BOOKMARKS, COMMENT_POSTS, ENGAGEMENT_COUNTS, LIKES
from projections.posts import POSTS
from projections.posts.views import author_view, timestamp
from projections.privacy import Privacy
from projections.store import ReadModel, Row


@dataclass(frozen=True)
class PostRef:
    post_id: int
    author_id: int


@dataclass(frozen=True)
class CommentRef:
    comment_id: int
    post_id: int
    author_id: int


# Keeps absurd bodies out before any work; settings.max_comment_chars is checked in
# `check_comment_text`, after stripping.
COMMENT_HARD_LIMIT = 10_000


class AddComment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=COMMENT_HARD_LIMIT)


def visible_post_row(read: ReadModel, privacy: Privacy, post_id: int, viewer: int | None) -> Row:
    """The post, or 404 when it does not exist or the viewer may not see it."""
    row = read.get(POSTS.name, {"post_id": post_id})
    if row is None or not privacy.can_see_post(viewer, int(row["author_id"]), str(row["audience"])):
        raise NotFound("no such post")
    return row


def visible_post(ctx: CommandContext, post_id: int) -> PostRef:
    row = visible_post_row(ctx.read, ctx.privacy, post_id, ctx.actor)
    return PostRef(post_id, int(row["author_id"]))


def _count(read: ReadModel, post_id: int, column: str) -> int:
    row = read.get(ENGAGEMENT_COUNTS.name, {"post_id": post_id}) or {}
    return max(int(row.get(column) or 0), 0)


# -- likes ------------------------------------------------------------------


def like_reservation(post_id: int, user_id: int) -> Reservation:
    return Reservation("like", f"{post_id}:{user_id}", user_id)


def like_state(post_id: int, liked: bool, like_count: int) -> dict[str, Any]:
    return {"post_id": str(post_id), "liked": liked, "like_count": like_count}


def decide_like(post: PostRef, liked: bool, like_count: int, user_id: int, meta: Meta) -> Decision:
    if liked:
        return Decision([], body=like_state(post.post_id, True, like_count))
    event = Liked(**meta.envelope(post.post_id), post_id=post.post_id, user_id=user_id, post_author_id=post.author_id)
    return Decision(
        [event],
        body=like_state(post.post_id, True, like_count + 1),
        reserve=(like_reservation(post.post_id, user_id),),
    )


def decide_unlike(post: PostRef, liked: bool, like_count: int, user_id: int, meta: Meta) -> Decision:
    if not liked:
        return Decision([], body=like_state(post.post_id, False, like_count))
    event = Unliked(**meta.envelope(post.post_id), post_id=post.post_id, user_id=user_id, post_author_id=post.author_id)
    return Decision(
        [event],
        body=like_state(post.post_id, False, max(like_count - 1, 0)),
        release=(like_reservation(post.post_id, user_id),),
    )


def _like_state(ctx: CommandContext, post_id: int) -> tuple[PostRef, bool, int]:
    post = visible_post(ctx, post_id)
    liked = ctx.read.get(LIKES.name, {"post_id": post_id, "user_id": ctx.actor}) is not None
    return post, liked, _count(ctx.read, post_id, "like_count")


def like(ctx: CommandContext, post_id: int) -> Decision:
    post, liked, count = _like_state(ctx, post_id)
    return decide_like(post, liked, count, ctx.actor, ctx.meta)


def unlike(ctx: CommandContext, post_id: int) -> Decision:
    post, liked, count = _like_state(ctx, post_id)
    return decide_unlike(post, liked, count, ctx.actor, ctx.meta)


# -- comments ---------------------------------------------------------------


def check_comment_text(raw: str, max_chars: int) -> str:
    text = raw.strip()
    if not text:
        raise Invalid("a comment needs some text", code="empty_comment")
    if len(text) > max_chars:
        raise Invalid(f"a comment may have at most {max_chars} characters", code="comment_too_long")
    return text


def comment_body(comment_id: int, post_id: int, author: Row, text: str, created_at: str) -> dict[str, Any]:
    return {
        "id": str(comment_id),
        "post_id": str(post_id),
        "author": author_view(author),
        "text": text,
        "created_at": created_at,
    }


def decide_comment(post: PostRef, author: Row, text: str, mentions: tuple[int, ...], meta: Meta) -> Decision:
    """`text` is already checked; `mentions` are the ids the commenter may mention."""
    comment_id = meta.new_id()
    author_id = int(author["user_id"])
    event = Commented(
        **meta.envelope(post.post_id, event_id=comment_id),
        comment_id=comment_id,
        post_id=post.post_id,
        author_id=author_id,
        post_author_id=post.author_id,
        text=text,
        mentions=mentions,
    )
    body = comment_body(comment_id, post.post_id, author, text, timestamp(meta.now))
    return Decision([event], body=body, status=201)


def comment(ctx: CommandContext, post_id: int, cmd: AddComment, max_chars: int, max_mentions: int) -> Decision:
    post = visible_post(ctx, post_id)
    text = check_comment_text(cmd.text, max_chars)
    author = ctx.privacy.account(ctx.actor)
    if author is None:
        raise NotFound("no such account")
    mentions = tuple(resolve_mentions(ctx, ctx.actor, text, max_mentions))
    return decide_comment(post, author, text, mentions, ctx.meta)


def decide_delete_comment(comment: CommentRef, post: PostRef, actor: int, meta: Meta) -> Decision:
    if actor not in (comment.author_id, post.author_id):
        raise Forbidden("only the comment's author or the post's author may delete it", code="not_comment_owner")
    event = CommentDeleted(
        **meta.envelope(comment.post_id), comment_id=comment.comment_id, post_id=comment.post_id, deleted_by=actor
    )
    return Decision([event], status=204)


def delete_comment(ctx: CommandContext, comment_id: int) -> Decision:
    where = ctx.read.get(COMMENT_POSTS.name, {"comment_id": comment_id})
    if where is None:
        raise NotFound("no such comment")
    ref = CommentRef(comment_id, int(where["post_id"]), int(where["author_id"]))
    try:
        post = visible_post(ctx, ref.post_id)
    except NotFound:
        raise NotFound("no such comment") from None
    if ctx.privacy.blocked_either(ctx.actor, ref.author_id):  # hidden from the actor, so absent
        raise NotFound("no such comment")
    return decide_delete_comment(ref, post, ctx.actor, ctx.meta)


# -- bookmarks --------------------------------------------------------------


def bookmark_state(post_id: int, bookmarked: bool) -> dict[str, Any]:
    return {"post_id": str(post_id), "bookmarked": bookmarked}


def decide_bookmark(post: PostRef, bookmarked: bool, user_id: int, meta: Meta) -> Decision:
    if bookmarked:
        return Decision([], body=bookmark_state(post.post_id, True))
    event = Bookmarked(**meta.envelope(user_id), post_id=post.post_id, user_id=user_id)
    return Decision([event], body=bookmark_state(post.post_id, True))


def decide_unbookmark(post: PostRef, bookmarked: bool, user_id: int, meta: Meta) -> Decision:
    if not bookmarked:
        return Decision([], body=bookmark_state(post.post_id, False))
    event = Unbookmarked(**meta.envelope(user_id), post_id=post.post_id, user_id=user_id)
    return Decision([event], body=bookmark_state(post.post_id, False))


def _bookmark_state(ctx: CommandContext, post_id: int) -> tuple[PostRef, bool]:
    post = visible_post(ctx, post_id)
    return post, ctx.read.get(BOOKMARKS.name, {"post_id": post_id, "user_id": ctx.actor}) is not None


def bookmark(ctx: CommandContext, post_id: int) -> Decision:
    post, bookmarked = _bookmark_state(ctx, post_id)
    return decide_bookmark(post, bookmarked, ctx.actor, ctx.meta)


def unbookmark(ctx: CommandContext, post_id: int) -> Decision:
    post, bookmarked = _bookmark_state(ctx, post_id)
    return decide_unbookmark(post, bookmarked, ctx.actor, ctx.meta)
