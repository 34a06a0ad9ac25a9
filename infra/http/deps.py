"""FastAPI dependencies shared by command routes and query routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from commands.bus import Handler
from commands.errors import Invalid, NotFound, RateLimited, Unauthorized
from infra.container import Container
from infra.media.rendition_urls import bind_rendition_urls


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    # Every route that shows media depends on this, so its views link renditions as this deployment serves them.
    bind_rendition_urls(container.media)
    return container


C = Annotated[Container, Depends(get_container)]

_bearer = HTTPBearer(auto_error=False, description="JWT from POST /v1/sessions")


async def viewer_id(c: C, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> int | None:
    if creds is None:
        return None
    user_id = c.tokens.verify(creds.credentials)
    if user_id is None or c.privacy.account(user_id) is None:
        raise Unauthorized("the access token is invalid, expired, or its account is gone", code="invalid_token")
    return user_id


async def actor_id(viewer: Annotated[int | None, Depends(viewer_id)]) -> int:
    if viewer is None:
        raise Unauthorized("this needs 'Authorization: Bearer <token>' from POST /v1/sessions")
    return viewer


Viewer = Annotated[int | None, Depends(viewer_id)]
Actor = Annotated[int, Depends(actor_id)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="a retry with the same key returns the first answer",
    ),
]


async def consistent(
    c: C,
    token: Annotated[
        str | None,
        Header(alias="X-Glimpse-Consistency", max_length=4096, description="from a write: wait until it is visible"),
    ] = None,
) -> None:
    if not token:
        return
    if not token.replace(":", "").replace(",", "").replace(".", "").replace("-", "").isalnum():
        raise Invalid("X-Glimpse-Consistency must be the value a write returned", code="invalid_consistency")
    await c.consistency.wait(token, c.settings.consistency_wait_seconds)


Consistent = Depends(consistent)


def run_command(
    c: Container,
    name: str,
    handler: Handler,
    *,
    actor: int | None,
    key: str | None,
    payload: Any = None,
    rate_key: str | None = None,
) -> Response:
    """Execute a command through the bus and turn its result into the HTTP answer."""
    limiter_key = rate_key or (f"user:{actor}" if actor is not None else None)
    if limiter_key is not None:
        wait = c.write_limiter.take(limiter_key)
        if wait:
            raise RateLimited("too many writes; slow down", retry_after=wait)
    result = c.bus.execute(name, handler, actor_id=actor, idempotency_key=key, payload=payload)
    headers = {"X-Glimpse-Consistency": result.token}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    if result.status == 204:
        return Response(status_code=204, headers=headers)
    return Response(result.body, status_code=result.status, media_type="application/json", headers=headers)


def id_path(value: str, what: str = "id") -> int:
    """Ids travel as strings; anything else is a 404 (it cannot name a thing)."""
    if not value.isdigit() or len(value) > 19:
        raise NotFound(f"no such {what}")
    return int(value)
