"""The FastAPI application: routers, error format, background jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import FastAPI

from commands.http import accounts as accounts_commands
from commands.http import engagement as engagement_commands
from commands.http import graph as graph_commands
from commands.http import media as media_commands
from commands.http import notifications as notification_commands
from commands.http import posts as post_commands
from commands.http import stories as story_commands
from infra.container import Container, PeriodicJob
from infra.http import errors, fast_routes
from infra.http.fast_app import FastApp
from query_api import accounts, feed, graph, media, notifications, posts, stories
from query_api import engagement as engagement_queries
from query_api import ops as ops_routes

log = logging.getLogger(__name__)

Role = Literal["all", "command", "query"]

COMMAND_ROUTERS = (
    accounts_commands.router,
    graph_commands.router,
    media_commands.router,
    post_commands.router,
    story_commands.router,
    engagement_commands.router,
    notification_commands.router,
)
QUERY_ROUTERS = (
    accounts.router,
    graph.router,
    media.router,
    posts.router,
    feed.router,
    stories.router,
    engagement_queries.router,
    notifications.router,
)
# The order in which a request is matched against the routers. FastAPI tries routes one by
# one, so the first ones are cheapest to reach: the home feed and the posts queries (90 % of
# a DeathStarBench mix) come first. The order must select the same route, 405 or 404 for
# every request as "commands, then queries" does, which tests/unit/test_app_routing.py checks
# for every route's path and method. (GET and HEAD routes are all queries, the others all
# commands; a command sharing a path with a moved query, like DELETE /v1/posts/{post_id},
# must stay ahead of it, or a wrong-method request would get another 405 Allow header.)
_HOT_FIRST = (feed.router, post_commands.router, posts.router)
ROUTERS = (
    *_HOT_FIRST,
    *(r for r in COMMAND_ROUTERS if r not in _HOT_FIRST),
    *(r for r in QUERY_ROUTERS if r not in _HOT_FIRST),
    ops_routes.router,
)


async def _every(job: PeriodicJob) -> None:
    while True:
        await asyncio.sleep(job.interval_seconds)
        try:
            job.run()
        except Exception:  # keep the schedule; the next run retries
            log.exception("periodic job %s failed", job.name)


def create_app(container: Container, role: Role = "all") -> FastAPI:
    """One app for everything (embedded), or the command or the query service (scale)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_every(job)) for job in container.jobs]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    app = FastApp(
        title="Glimpse",
        version="1",
        description="Event-sourced backend for photo and video sharing: posts, feed, stories, notifications.",
        lifespan=lifespan,
    )
    app.state.container = container
    errors.install(app)
    routers = {
        "all": ROUTERS,
        "command": (*COMMAND_ROUTERS, ops_routes.router),
        "query": (*QUERY_ROUTERS, ops_routes.router),
    }[role]
    fast_routes.install(routers)
    for router in routers:
        app.include_router(router)
    return app
