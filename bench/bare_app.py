"""The bare-route baseline: a FastAPI app whose one route does only the store reads of a
home-feed page, with no auth, privacy, post loading or JSON of posts.

    BENCH_BARE_KIND=redis BENCH_BARE_REDIS_URL=... BENCH_BARE_PREFIX=... uvicorn bench.bare_app:app
    BENCH_BARE_KIND=sqlite GLIMPSE_DATA_DIR=<data dir> uvicorn bench.bare_app:app

redis: the cached-feed read the scale API makes for a page (infra.redis_adapters.feed_cache,
one pipelined ZRANGE BYLEX + EXPIRE), through the same synchronous client in an async
route, as the API does. sqlite: the feed-table scan the embedded API makes.
The ratio API p99 / bare p99 is then the cost of everything else a page does.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI

app = FastAPI()
_reader: Any = None


def _build() -> Any:
    from infra.storage.memory_readmodel import MemoryReadModel
    from projections.feed import FEED

    kind = os.environ.get("BENCH_BARE_KIND", "redis")
    if kind == "redis":
        from infra.redis_adapters import sync_client
        from infra.redis_adapters.feed_cache import CachedFeedReadModel

        # Nothing behind the cache: a page the cache cannot answer comes back empty
        # instead of reading Cassandra, so the route measures Redis alone.
        return CachedFeedReadModel(
            MemoryReadModel([FEED]),
            sync_client(os.environ["BENCH_BARE_REDIS_URL"]),
            prefix=os.environ["BENCH_BARE_PREFIX"],
        )
    # The read models opened as the app opens them (GLIMPSE_DATA_DIR), wherever their tables live.
    from infra.bootstrap import build_embedded
    from infra.settings import Settings

    return build_embedded(Settings()).read


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    global _reader
    if _reader is None:
        _reader = _build()
    return {"status": "ready"}


@app.get("/bare/feed")
async def bare_feed(user: int, limit: int = 10, before: int | None = None) -> dict[str, Any]:
    from projections.feed import FEED

    rows = _reader.scan(FEED.name, {"user_id": user}, before=before, desc=True, limit=limit)
    return {"items": [str(r["post_id"]) for r in rows]}
