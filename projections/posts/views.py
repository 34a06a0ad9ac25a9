"""The public shape of a post, built from read-model rows (shared by commands and queries).

It lives beside the posts read model, not in query_api, because the create-post
command answers with the same shape and commands must not import the HTTP layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from projections.media import media_view
from projections.store import Row

NO_ENGAGEMENT: Mapping[str, Any] = {"like_count": 0, "comment_count": 0, "liked": False, "bookmarked": False}


def timestamp(moment: datetime) -> str:
    """How posts show times: UTC, ISO 8601 with a Z (the same text in every answer)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def author_view(account: Row) -> dict[str, Any]:
    return {
        "id": str(account["user_id"]),
        "username": account["username"],
        "display_name": account["display_name"],
    }


def post_view(
    post: Row,
    author: Row,
    media: Sequence[Row],
    engagement: Mapping[str, Any] = NO_ENGAGEMENT,
) -> dict[str, Any]:
    """`media` are the post's media rows in the post's order (absent ones already left out)."""
    return {
        "id": str(post["post_id"]),
        "author": author_view(author),
        "caption": post["caption"],
        "media": [media_view(m) for m in media],
        "audience": post["audience"],
        "created_at": post["created_at"],
        "like_count": int(engagement["like_count"]),
        "comment_count": int(engagement["comment_count"]),
        "liked": bool(engagement["liked"]),
        "bookmarked": bool(engagement["bookmarked"]),
    }
