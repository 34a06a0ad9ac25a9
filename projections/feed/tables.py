"""The home feed's tables.

Two kinds, which replay treats differently (see `ACTIVITY_DEPENDENT`):

- Derived from events alone: each author's posts (`feed_author_posts`), and the posts
  that were not fanned out because their author was a celebrity when posting
  (`feed_pulled_posts`, `feed_pulled_authors`). Replaying the log gives them back
  exactly.
- The per-user materialized feeds (`feed`, its by-post index, and `feed_horizon`).
  In the hybrid strategy they depend on who was reading their feed at the time
  (operational state, not an event), and the read path writes them back when it
  rebuilds a stale feed, so they are a cache: replay may rebuild them differently,
  while what GET /v1/feed returns stays the same.
"""

from __future__ import annotations

from projections.store import Table

FEED = Table("feed", partition=("user_id",), clustering=("post_id",), values=("author_id",))
# Which feeds hold a post: PostDeleted removes it without scanning every feed.
FEED_BY_POST = Table("feed_by_post", partition=("post_id",), clustering=("user_id",))
# Where a user's durable feed stops being complete: every post of their logical feed with
# an id above the largest `horizon` row is in FEED; below it, pages are merged from the
# followees' own posts. Rows only grow (a writer adds the new maximum and deletes the old
# one), so two writers racing can only leave the larger value, never lower it.
FEED_HORIZON = Table("feed_horizon", partition=("user_id",), clustering=("horizon",))
# The feed's own list of each author's live posts (for backfill and for erasing an
# author): the posts projection drops its rows for AccountDeleted before this one runs.
FEED_AUTHOR_POSTS = Table(
    "feed_author_posts",
    partition=("author_id",),
    clustering=("post_id",),
    values=("audience",),
    types={"audience": str},
)
# Posts not fanned out (hybrid: their author had more followers than the threshold when
# posting). Readers merge them into the pages of everyone who follows the author.
FEED_PULLED_POSTS = Table(
    "feed_pulled_posts",
    partition=("author_id",),
    clustering=("post_id",),
    values=("audience",),
    types={"audience": str},
)
# The authors who have pulled posts (celebrities), in one partition: a page reads only
# its head, and looks up the reader's followees in it when there are more
# (`timelines.hybrid_feed`).
FEED_PULLED_AUTHORS = Table("feed_pulled_authors", partition=("scope",), clustering=("author_id",))
PULLED_SCOPE = 0

TABLES = (FEED, FEED_BY_POST, FEED_HORIZON, FEED_AUTHOR_POSTS, FEED_PULLED_POSTS, FEED_PULLED_AUTHORS)

# Tables whose rows depend on operational state (who was active, what the read path
# rebuilt): compare them by the feeds they serve, not row by row.
ACTIVITY_DEPENDENT = frozenset({FEED.name, FEED_BY_POST.name, FEED_HORIZON.name})
