"""Demo data for a fresh embedded install, written through the public API.

Users and their friendships come from the real socfb-Reed98 graph (each
friendship becomes two follows, the DeathStarBench way, with some left
one-sided); a share of accounts is private. Posts carry generated photos,
captions with @mentions; followers like, comment, bookmark; some users post
stories. Everything goes through the same HTTP routes a client uses (in
process, no sockets), so the demo is built from ordinary events and replays
like any other history.

Registration alone bypasses HTTP: hashing a password with argon2 hundreds of
times would dominate start-up, so every demo account shares one hash.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import orjson

from commands import accounts
from infra.app import create_app
from infra.auth import hash_password
from infra.container import Container
from infra.demo.images import demo_image
from infra.demo.social_graph import load_edges

DEMO_PASSWORD = "glimpse-demo"

FIRST = [
    "ada",
    "alan",
    "grace",
    "linus",
    "barbara",
    "ken",
    "dennis",
    "margaret",
    "edsger",
    "donald",
    "frances",
    "john",
    "radia",
    "tim",
    "katherine",
    "guido",
    "yukihiro",
    "bjarne",
    "hedy",
    "annie",
    "sophie",
    "carl",
    "marie",
    "niels",
    "lise",
    "emmy",
    "rosalind",
    "srinivasa",
    "hypatia",
    "jocelyn",
    "vera",
    "chien",
    "mae",
    "sally",
    "anita",
    "shafi",
    "leslie",
    "whitfield",
]
PLACES = [
    "the lake",
    "the old harbour",
    "the hills",
    "downtown",
    "the market",
    "the coast",
    "the forest",
    "the rooftop",
]
MOODS = ["golden hour", "first light", "quiet morning", "after the rain", "long walk", "weekend", "sunday", "road trip"]
TAGS = ["#nofilter", "#sunset", "#travel", "#weekend", "#nature", "#city", "#friends", "#photography"]
COMMENTS = ("Love this!", "Wow 😍", "Where is this?", "Beautiful light", "Take me there", "So good", "🔥🔥")


@dataclass
class SeedReport:
    users: int = 0
    follows: int = 0
    requests: int = 0
    posts: int = 0
    likes: int = 0
    comments: int = 0
    bookmarks: int = 0
    stories: int = 0
    story_views: int = 0
    seconds: float = 0.0
    demo_username: str = ""
    failures: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"seeded {self.users} users, {self.follows} follows (+{self.requests} pending requests), "
            f"{self.posts} posts, {self.likes} likes, {self.comments} comments, {self.bookmarks} bookmarks, "
            f"{self.stories} stories ({self.story_views} views) in {self.seconds:.1f}s"
        )


def _username(i: int) -> str:
    return f"{FIRST[i % len(FIRST)]}_{i}"


class _Api:
    """Calls the app in process as a given user, counting failures instead of stopping."""

    def __init__(self, client: httpx.AsyncClient, container: Container, report: SeedReport) -> None:
        self._client = client
        self._container = container
        self._report = report
        self._tokens: dict[int, str] = {}

    def as_user(self, user_id: int) -> dict[str, str]:
        if user_id not in self._tokens:
            self._tokens[user_id] = self._container.tokens.issue(user_id)
        return {"Authorization": f"Bearer {self._tokens[user_id]}"}

    async def call(self, method: str, path: str, user_id: int, **kw: Any) -> Any:
        r = await self._client.request(method, path, headers=self.as_user(user_id), **kw)
        if r.status_code >= 400:
            key = f"{method} {path.split('/')[2]} {r.status_code}"
            self._report.failures[key] = self._report.failures.get(key, 0) + 1
            return None
        return r.json() if r.content else {}


def seed(container: Container, users: int = 300, rng_seed: int = 7) -> SeedReport:
    return asyncio.run(_seed(container, users, rng_seed))


async def _seed(container: Container, users: int, rng_seed: int) -> SeedReport:
    started = time.monotonic()
    rng = random.Random(rng_seed)
    report = SeedReport()
    edges = load_edges(users)
    ids = _register_users(container, users, report)
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://seed") as client:
        api = _Api(client, container, report)
        private = {i for i in range(users) if rng.random() < 0.1}
        for i in sorted(private):
            await api.call("PATCH", "/v1/me", ids[i], json={"private": True, "bio": "close friends only"})
        for i in range(users):
            if i not in private and rng.random() < 0.5:
                await api.call("PATCH", "/v1/me", ids[i], json={"bio": f"{rng.choice(MOODS)} at {rng.choice(PLACES)}"})
        friends = await _follow(api, ids, edges, rng, report)
        posts = await _post(api, ids, friends, rng, report)
        await _engage(api, ids, friends, posts, rng, report)
        await _stories(api, ids, friends, rng, report)
    demo = max(range(users), key=lambda i: (i not in private, len(friends.get(i, ()))))
    report.demo_username = _username(demo)
    (container.settings.data_dir / "demo-login.txt").write_text(f"{_username(demo)} / {DEMO_PASSWORD}\n")
    report.seconds = time.monotonic() - started
    return report


def _register_users(container: Container, users: int, report: SeedReport) -> list[int]:
    password_hash = hash_password(DEMO_PASSWORD)
    ids = []
    for i in range(users):
        cmd = accounts.Register(username=_username(i), password=DEMO_PASSWORD, display_name=_username(i).title())
        result = container.bus.execute(
            "register", partial(accounts.register, cmd=cmd, password_hash=password_hash), actor_id=None
        )
        ids.append(int(orjson.loads(result.body)["id"]))
        report.users += 1
    return ids


async def _follow(
    api: _Api, ids: list[int], edges: list[tuple[int, int]], rng: random.Random, report: SeedReport
) -> dict[int, set[int]]:
    """Follow both ways along each friendship, leaving about one in eight one-sided."""
    following: dict[int, set[int]] = {}
    for a, b in edges:
        pairs = [(a, b), (b, a)]
        if rng.random() < 0.125:
            pairs.pop(rng.randrange(2))
        for follower, followee in pairs:
            answer = await api.call("POST", f"/v1/users/{_username(followee)}/follow", ids[follower])
            if answer and answer.get("state") == "following":
                following.setdefault(follower, set()).add(followee)
                report.follows += 1
            elif answer:
                report.requests += 1
    # Private accounts approve most of their requests.
    for i, user_id in enumerate(ids):
        pending = await api.call("GET", "/v1/me/follow-requests?limit=100", user_id) or {"items": []}
        for item in pending["items"]:
            if rng.random() >= 0.8:
                continue
            if await api.call("POST", f"/v1/me/follow-requests/{item['username']}/approve", user_id) is not None:
                following.setdefault(_index(item["username"]), set()).add(i)
                report.follows += 1
                report.requests -= 1
    return following


def _index(username: str) -> int:
    return int(username.rsplit("_", 1)[1])


async def _post(
    api: _Api, ids: list[int], following: dict[int, set[int]], rng: random.Random, report: SeedReport
) -> list[tuple[int, str]]:
    posts = []
    for i, user_id in enumerate(ids):
        for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
            media = await api.call(
                "POST", "/v1/media", user_id, files={"file": ("photo.jpg", demo_image(rng, 480, 480), "image/jpeg")}
            )
            if media is None:
                continue
            friends = sorted(following.get(i, ()))
            mention = f" with @{_username(rng.choice(friends))}" if friends and rng.random() < 0.4 else ""
            caption = f"{rng.choice(MOODS).capitalize()} at {rng.choice(PLACES)}{mention} {rng.choice(TAGS)}"
            audience = "followers" if rng.random() < 0.15 else "public"
            post = await api.call(
                "POST",
                "/v1/posts",
                user_id,
                json={"caption": caption, "media_ids": [media["id"]], "audience": audience},
            )
            if post is not None:
                posts.append((i, post["id"]))
                report.posts += 1
    return posts


async def _engage(
    api: _Api,
    ids: list[int],
    following: dict[int, set[int]],
    posts: list[tuple[int, str]],
    rng: random.Random,
    report: SeedReport,
) -> None:
    followers: dict[int, list[int]] = {}
    for follower, followees in following.items():
        for followee in followees:
            followers.setdefault(followee, []).append(follower)
    for author, post_id in posts:
        fans = followers.get(author, [])
        for fan in rng.sample(fans, k=min(len(fans), rng.randint(0, 12))):
            if await api.call("POST", f"/v1/posts/{post_id}/like", ids[fan]) is not None:
                report.likes += 1
        for fan in rng.sample(fans, k=min(len(fans), rng.randint(0, 3))):
            if await api.call("POST", f"/v1/posts/{post_id}/comments", ids[fan], json={"text": rng.choice(COMMENTS)}):
                report.comments += 1
        if (
            fans
            and rng.random() < 0.2
            and await api.call("POST", f"/v1/posts/{post_id}/bookmark", ids[rng.choice(fans)])
        ):
            report.bookmarks += 1


async def _stories(
    api: _Api, ids: list[int], following: dict[int, set[int]], rng: random.Random, report: SeedReport
) -> None:
    followers: dict[int, list[int]] = {}
    for follower, followees in following.items():
        for followee in followees:
            followers.setdefault(followee, []).append(follower)
    for i, user_id in enumerate(ids):
        if rng.random() >= 0.2:
            continue
        media = await api.call(
            "POST", "/v1/media", user_id, files={"file": ("story.jpg", demo_image(rng, 360, 640), "image/jpeg")}
        )
        if media is None:
            continue
        story = await api.call("POST", "/v1/stories", user_id, json={"media_id": media["id"], "audience": "followers"})
        if story is None:
            continue
        report.stories += 1
        for fan in rng.sample(followers.get(i, []), k=min(len(followers.get(i, [])), rng.randint(0, 8))):
            if await api.call("POST", f"/v1/stories/{story['id']}/view", ids[fan]) is not None:
                report.story_views += 1
