"""Posts: create (with media and @mentions) and delete. Pure decisions over small state."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from commands.accounts import USERNAME_RE
from commands.context import CommandContext, Decision, Meta
from commands.errors import Forbidden, Invalid, NotFound
from commands.media import check_usable_media, load_media, parse_media_ids
from events.posts import PostAudience, PostCreated, PostDeleted
from projections.posts import POSTS
from projections.posts.views import post_view, timestamp
from projections.profile import USERNAMES
from projections.store import Row

# Hard bounds that keep absurd bodies out before any work; the configured limits
# (Settings.max_caption_chars, max_media_per_post) are checked in the decision.
CAPTION_HARD_LIMIT = 10_000
MEDIA_HARD_LIMIT = 10

# An @name not glued to a word before it (so e-mail addresses are not mentions) and
# ending where a username must end; a trailing '.' is punctuation, not part of it.
MENTION_RE = re.compile(r"(?<![\w@.])@([A-Za-z0-9._]{1,30})(?![A-Za-z0-9_])")


class CreatePost(BaseModel):
    model_config = ConfigDict(extra="forbid")
    caption: str = Field(default="", max_length=CAPTION_HARD_LIMIT)
    media_ids: list[Annotated[str, Field(max_length=20)]] = Field(min_length=1, max_length=MEDIA_HARD_LIMIT)
    audience: PostAudience = "public"


@dataclass(frozen=True)
class PostLimits:
    max_caption_chars: int = 2200
    max_media: int = 10
    max_mentions: int = 20


def mention_names(caption: str) -> list[str]:
    """Distinct, valid-looking usernames mentioned in `caption`, in order of appearance."""
    names: list[str] = []
    for match in MENTION_RE.finditer(caption):
        name = match.group(1).lower().rstrip(".")
        if USERNAME_RE.match(name) and name not in names:
            names.append(name)
    return names


def decide_create_post(
    author: Row | None,
    cmd: CreatePost,
    media: list[Row],
    mentions: list[int],
    limits: PostLimits,
    meta: Meta,
) -> Decision:
    """`media` are the rows found for the command's ids (any order, absent ones missing)."""
    if author is None:
        raise NotFound("no such account")
    author_id = int(author["user_id"])
    caption = cmd.caption.strip()
    if len(caption) > limits.max_caption_chars:
        raise Invalid(f"caption is longer than {limits.max_caption_chars} characters", code="caption_too_long")
    media_ids = parse_media_ids(cmd.media_ids)
    if len(media_ids) > limits.max_media:
        raise Invalid(f"a post has at most {limits.max_media} media", code="too_many_media")
    ordered = check_usable_media(author_id, media_ids, media)
    post_id = meta.new_id()
    event = PostCreated(
        **meta.envelope(post_id, event_id=post_id),
        post_id=post_id,
        author_id=author_id,
        caption=caption,
        media_ids=tuple(media_ids),
        audience=cmd.audience,
        mentions=tuple(mentions[: limits.max_mentions]),
    )
    post = {
        "post_id": post_id,
        "author_id": author_id,
        "caption": caption,
        "audience": cmd.audience,
        "created_at": timestamp(meta.now),
    }
    return Decision([event], body=post_view(post, author, ordered), status=201)


def resolve_mentions(ctx: CommandContext, author_id: int, caption: str, limit: int) -> list[int]:
    """User ids for the caption's @names the author may interact with; unknown names stay text."""
    found: list[int] = []
    for name in mention_names(caption):
        if len(found) >= limit:
            break
        entry = ctx.read.get(USERNAMES.name, {"username": name})
        if entry is None:
            continue
        user_id = int(entry["user_id"])
        if user_id != author_id and ctx.privacy.can_interact(author_id, user_id):
            found.append(user_id)
    return found


def create_post(ctx: CommandContext, cmd: CreatePost, limits: PostLimits) -> Decision:
    author_id = ctx.actor
    ids = [int(m) for m in cmd.media_ids if m.isdigit() and len(m) <= 19]
    mentions = resolve_mentions(ctx, author_id, cmd.caption, limits.max_mentions)
    return decide_create_post(
        ctx.privacy.account(author_id), cmd, load_media(ctx.read, ids), mentions, limits, ctx.meta
    )


def decide_delete_post(post: Row | None, actor_id: int, visible_to_actor: bool, meta: Meta) -> Decision:
    if post is None:
        raise NotFound("no such post")
    author_id = int(post["author_id"])
    if author_id != actor_id:
        if not visible_to_actor:
            raise NotFound("no such post")
        raise Forbidden("only the author can delete a post", code="not_author")
    post_id = int(post["post_id"])
    event = PostDeleted(**meta.envelope(post_id), post_id=post_id, author_id=author_id)
    return Decision([event], status=204)


def delete_post(ctx: CommandContext, post_id: int) -> Decision:
    actor = ctx.actor
    post = ctx.read.get(POSTS.name, {"post_id": post_id})
    visible = post is not None and ctx.privacy.can_see_post(actor, int(post["author_id"]), str(post["audience"]))
    return decide_delete_post(post, actor, visible, ctx.meta)
