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
from infra.http import errors
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
ROUTERS = (*COMMAND_ROUTERS, *QUERY_ROUTERS, ops_routes.router)


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

    app = FastAPI(
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
    for router in routers:
        app.include_router(router)
    return app
