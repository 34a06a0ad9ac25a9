"""Query routes: profiles."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from commands.accounts import normalize_username
from commands.errors import NotFound
from infra.http.deps import Actor, C, Consistent, Viewer
from projections.graph import FOLLOW_REQUESTS, GRAPH_COUNTS
from projections.posts import USER_POST_COUNTS
from projections.privacy import Privacy
from projections.profile import USERNAMES
from projections.store import ReadModel, Row

router = APIRouter(tags=["accounts"], dependencies=[Consistent])


class Counts(BaseModel):
    posts: int
    followers: int
    following: int


class Profile(BaseModel):
    id: str
    username: str
    display_name: str
    bio: str
    private: bool
    counts: Counts
    followed_by_me: bool | None = None
    follows_me: bool | None = None
    requested: bool | None = None


def resolve_username(read: ReadModel, privacy: Privacy, username: str, viewer: int | None) -> Row:
    """The account behind a username, or 404 if absent or invisible to the viewer."""
    entry = read.get(USERNAMES.name, {"username": normalize_username(username)})
    if entry is None:
        raise NotFound("no such user")
    account = privacy.account(int(entry["user_id"]))
    if account is None or not privacy.can_see_account(viewer, int(account["user_id"])):
        raise NotFound("no such user")
    return account


def profile_of(read: ReadModel, privacy: Privacy, account: Row, viewer: int | None) -> Profile:
    user_id = int(account["user_id"])
    graph = read.get(GRAPH_COUNTS.name, {"user_id": user_id}) or {}
    posts = read.get(USER_POST_COUNTS.name, {"user_id": user_id}) or {}
    profile = Profile(
        id=str(user_id),
        username=account["username"],
        display_name=account["display_name"],
        bio=account["bio"] or "",
        private=bool(account["private"]),
        counts=Counts(
            posts=posts.get("posts") or 0,
            followers=graph.get("followers") or 0,
            following=graph.get("following") or 0,
        ),
    )
    if viewer is not None and viewer != user_id:
        profile.followed_by_me = privacy.follows(viewer, user_id)
        profile.follows_me = privacy.follows(user_id, viewer)
        profile.requested = read.get(FOLLOW_REQUESTS.name, {"followee_id": user_id, "follower_id": viewer}) is not None
    return profile


@router.get("/v1/users/{username}", response_model=Profile)
async def get_profile(username: str, c: C, viewer: Viewer) -> Profile:
    privacy = c.privacy
    account = resolve_username(c.read, privacy, username, viewer)
    return profile_of(c.read, privacy, account, viewer)


@router.get("/v1/me", response_model=Profile)
async def get_me(c: C, me: Actor) -> Profile:
    account = c.privacy.account(me)
    if account is None:
        raise NotFound("no such user")
    return profile_of(c.read, c.privacy, account, me)
