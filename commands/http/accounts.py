"""Command routes: register, sign in, update or delete my account."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from commands import accounts
from commands.errors import RateLimited, Unauthorized
from infra.auth import DUMMY_HASH, hash_password, verify_password
from infra.http.deps import Actor, C, Consistent, IdempotencyKey, run_command
from projections.profile import USERNAMES

router = APIRouter(tags=["accounts"], dependencies=[Consistent])


class AccountCreated(BaseModel):
    id: str
    username: str


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=30)
    password: str = Field(min_length=1, max_length=128)


class SessionToken(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class ProfileFields(BaseModel):
    id: str
    username: str
    display_name: str
    bio: str
    private: bool


@router.post("/v1/accounts", status_code=201, response_model=AccountCreated)
async def register(body: accounts.Register, c: C, request: Request, key: IdempotencyKey = None) -> Response:
    accounts.check_username(body.username)  # fail fast, before the deliberately slow hash
    password_hash = await run_in_threadpool(hash_password, body.password)
    client = request.client.host if request.client else "unknown"
    return run_command(
        c,
        "register",
        lambda ctx: accounts.register(ctx, body, password_hash),
        actor=None,
        key=key,
        payload=body.model_dump(exclude={"password"}),
        rate_key=f"register:{client}",
    )


@router.post("/v1/sessions", response_model=SessionToken)
async def sign_in(body: SessionRequest, c: C, request: Request) -> SessionToken:
    username = accounts.normalize_username(body.username)
    client = request.client.host if request.client else "unknown"
    wait = c.login_limiter.take(f"login:{client}:{username}")
    if wait:
        raise RateLimited("too many sign-in attempts; try again later", retry_after=wait)
    entry = c.read.get(USERNAMES.name, {"username": username})
    account = c.privacy.account(int(entry["user_id"])) if entry else None
    stored_hash = account["password_hash"] if account else DUMMY_HASH
    ok = await run_in_threadpool(verify_password, stored_hash, body.password)
    if not ok or account is None:
        raise Unauthorized("wrong username or password", code="invalid_credentials")
    token = c.tokens.issue(int(account["user_id"]))
    return SessionToken(access_token=token, expires_in=c.tokens.ttl_seconds)


@router.patch("/v1/me", response_model=ProfileFields)
async def update_me(body: accounts.UpdateProfile, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    return run_command(
        c,
        "update_profile",
        lambda ctx: accounts.update_profile(ctx, body),
        actor=actor,
        key=key,
        payload=body.model_dump(),
    )


@router.delete("/v1/me", status_code=204)
async def delete_me(actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    return run_command(c, "delete_account", accounts.delete_account, actor=actor, key=key)
