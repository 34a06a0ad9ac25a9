"""Notifications over HTTP: grouped list, privacy, mark read, and the live SSE stream.

The stream is tested against a real uvicorn server on a free port, run as a task in
the test's own event loop (so the container is only ever used from that one thread),
read with httpx; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from argon2 import PasswordHasher

import infra.auth
from infra.app import create_app
from infra.bootstrap import build_embedded
from infra.container import Container
from projections.notifications import channel_of
from tests.apphelpers import User
from tests.e2e.story_app import app_settings, approve, block, error, follow, go_private, items, make_app, png, upload

DEADLINE = 10.0


@pytest.fixture(autouse=True)
def fast_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infra.auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))


class App:
    def __init__(self, data_dir: Path) -> None:
        self.client, self.container, self.clock = make_app(data_dir)

    def user(self, name: str) -> User:
        return User(self.client, name)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    a = App(tmp_path / "data")
    yield a
    a.container.close()


def new_post(user: User, caption: str = "hello", audience: str = "public") -> str:
    r = user.post("/v1/posts", json={"caption": caption, "media_ids": [upload(user)], "audience": audience})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def like(user: User, post_id: str) -> None:
    assert user.post(f"/v1/posts/{post_id}/like").status_code == 200


def unlike(user: User, post_id: str) -> None:
    assert user.delete(f"/v1/posts/{post_id}/like").status_code == 200


def comment(user: User, post_id: str, text: str) -> str:
    r = user.post(f"/v1/posts/{post_id}/comments", json={"text": text})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def notes(user: User, **params: Any) -> list[dict[str, Any]]:
    return items(user.get("/v1/notifications", params=params))


def summary(user: User) -> list[tuple[str, list[str], int]]:
    return [(n["type"], [a["username"] for a in n["actors"]], n["count"]) for n in notes(user)]


# -- the list -----------------------------------------------------------------------


def test_likes_are_grouped_per_post_and_unlike_takes_the_actor_out(app: App) -> None:
    alice, bob, carol = app.user("alice"), app.user("bob"), app.user("carol")
    post = new_post(alice)
    like(bob, post)
    like(carol, post)
    like(alice, post)  # never notified of your own doing
    [note] = notes(alice)
    assert set(note) == {"id", "type", "actors", "count", "target", "created_at", "read"}
    assert note["type"] == "like" and note["count"] == 2 and note["read"] is False
    assert note["actors"] == [
        {"id": carol.id, "username": "carol", "display_name": "carol"},
        {"id": bob.id, "username": "bob", "display_name": "bob"},
    ]
    assert note["target"] == {"type": "post", "id": post}
    unlike(carol, post)
    assert summary(alice) == [("like", ["bob"], 1)]
    unlike(bob, post)
    assert notes(alice) == []


def test_many_likers_show_the_three_newest(app: App) -> None:
    alice = app.user("alice")
    post = new_post(alice)
    for i in range(5):
        like(app.user(f"fan{i}"), post)
    assert summary(alice) == [("like", ["fan4", "fan3", "fan2"], 5)]


def test_comments_mentions_follows_and_requests(app: App) -> None:
    alice, bob, carol = app.user("alice"), app.user("bob"), app.user("carol")
    post = new_post(alice, "look @bob")
    comment_id = comment(carol, post, "hi @bob and @alice")
    follow(carol, bob)
    go_private(bob)
    assert alice.post("/v1/users/bob/follow").json()["state"] == "requested"

    assert summary(alice) == [("comment", ["carol"], 1)]  # not also a mention by the same comment
    bobs = notes(bob)
    assert [(n["type"], n["target"]) for n in bobs] == [
        ("follow_request", None),
        ("follow", None),
        ("mention", {"type": "comment", "id": comment_id}),
        ("mention", {"type": "post", "id": post}),
    ]
    approve(bob, alice)
    assert [(n["type"], [a["username"] for a in n["actors"]]) for n in notes(bob)][:2] == [
        ("follow", ["alice", "carol"]),
        ("mention", ["carol"]),
    ]
    assert "follow_request" not in {n["type"] for n in notes(bob)}


def test_paging_newest_first(app: App) -> None:
    alice = app.user("alice")
    posts = [new_post(alice) for _ in range(3)]
    fan = app.user("fan")
    for p in posts:
        like(fan, p)
    first = alice.get("/v1/notifications", params={"limit": 2}).json()
    rest = alice.get("/v1/notifications", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [n["target"]["id"] for n in first["items"] + rest["items"]] == posts[::-1]
    assert rest["next_cursor"] is None
    error(alice.get("/v1/notifications", params={"cursor": "zzz"}), 422, "invalid_cursor")
    error(alice.get("/v1/notifications", params={"limit": 101}), 422)
    error(app.client.get("/v1/notifications"), 401)


def test_mark_read(app: App) -> None:
    alice, bob, carol = app.user("alice"), app.user("bob"), app.user("carol")
    post = new_post(alice)
    like(bob, post)
    follow(bob, alice)
    r = alice.post("/v1/notifications/read", headers={"Idempotency-Key": "r1"})
    assert r.status_code == 204 and r.content == b""
    assert [n["read"] for n in notes(alice)] == [True, True]
    head = app.container.log.head()
    assert alice.post("/v1/notifications/read").status_code == 204
    assert app.container.log.head() == head  # nothing new: nothing appended
    replay = alice.post("/v1/notifications/read", headers={"Idempotency-Key": "r1"})
    assert replay.status_code == 204 and replay.headers.get("Idempotent-Replayed") == "true"

    like(carol, post)  # new activity: the group is new and unread again
    assert [(n["type"], n["read"]) for n in notes(alice)] == [("like", False), ("follow", True)]
    error(app.client.post("/v1/notifications/read"), 401)


def test_blocked_actors_are_left_out_either_way(app: App) -> None:
    alice, bob, carol, dave = app.user("alice"), app.user("bob"), app.user("carol"), app.user("dave")
    post = new_post(alice)
    for u in (bob, carol, dave):
        like(u, post)
    follow(carol, alice)
    block(alice, carol)  # alice blocked carol
    block(dave, alice)  # dave blocked alice
    assert summary(alice) == [("like", ["bob"], 1)]  # the follow group had only carol: gone
    block(alice, bob)
    assert notes(alice) == []
    assert alice.delete("/v1/users/carol/block").status_code == 200
    assert summary(alice) == [("like", ["carol"], 1)]


def test_targets_the_viewer_can_no_longer_see_disappear(app: App) -> None:
    alice, bob, carol = app.user("alice"), app.user("bob"), app.user("carol")
    go_private(alice)
    bob.post("/v1/users/alice/follow")
    approve(alice, bob)
    secret = new_post(alice, "for @bob", audience="followers")
    public = new_post(carol, "hey @bob")
    assert [n["target"]["id"] for n in notes(bob) if n["type"] == "mention"] == [public, secret]
    assert bob.delete("/v1/users/alice/follow").status_code == 200
    assert [n["target"]["id"] for n in notes(bob) if n["type"] == "mention"] == [public]
    assert carol.delete(f"/v1/posts/{public}").status_code == 204
    assert [n for n in notes(bob) if n["type"] == "mention"] == []


def test_deleted_account_leaves_no_trace(app: App) -> None:
    alice, bob, carol = app.user("alice"), app.user("bob"), app.user("carol")
    post = new_post(alice)
    like(bob, post)
    like(carol, post)
    follow(alice, bob)
    assert bob.delete("/v1/me").status_code == 204
    assert summary(alice) == [("like", ["carol"], 1)]


# -- the stream ----------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class LiveServer:
    """The embedded app served by uvicorn on a free port, in the running event loop."""

    def __init__(self, data_dir: Path, **overrides: Any) -> None:
        self.container: Container = build_embedded(app_settings(data_dir, **overrides))
        self._server = uvicorn.Server(uvicorn.Config(create_app(self.container), log_level="warning", lifespan="on"))
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LiveServer:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        async with asyncio.timeout(DEADLINE):
            while not self._server.started:
                await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *_: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            async with asyncio.timeout(DEADLINE):
                await self._task
        self.container.close()


class Client:
    """A signed-in user over real HTTP."""

    def __init__(self, http: httpx.AsyncClient, name: str, user_id: str, token: str) -> None:
        self.http, self.name, self.id = http, name, user_id
        self.headers = {"Authorization": f"Bearer {token}"}

    @classmethod
    async def signup(cls, http: httpx.AsyncClient, name: str) -> Client:
        credentials = {"username": name, "password": "correct horse 1"}
        r = await http.post("/v1/accounts", json=credentials)
        assert r.status_code == 201, r.text
        s = await http.post("/v1/sessions", json=credentials)
        return cls(http, name, r.json()["id"], s.json()["access_token"])

    async def post(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.post(path, headers=self.headers | kw.pop("headers", {}), **kw)

    async def new_post(self) -> str:
        files = {"file": ("p.png", png(), "image/png")}
        media = await self.post("/v1/media", files=files)
        assert media.status_code == 202, media.text
        r = await self.post(
            "/v1/posts", json={"caption": "hi", "media_ids": [media.json()["id"]], "audience": "public"}
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


class Stream:
    """Parsed Server-Sent Events of one open response: comments and events."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self) -> dict[str, str]:
        """The next event or comment, as its fields (a comment is {"comment": text})."""
        fields: dict[str, str] = {}
        async with asyncio.timeout(DEADLINE):
            async for line in self._lines:
                if line == "":
                    if fields:
                        return fields
                    continue
                if line.startswith(":"):
                    fields["comment"] = line[1:].strip()
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        raise AssertionError("the stream ended")

    async def next_notification(self) -> dict[str, Any]:
        while True:
            fields = await self.next()
            if fields.get("event") == "notification":
                item = orjson.loads(fields["data"])
                assert fields["id"] == item["id"]
                return dict(item)

    async def until_connected(self) -> None:
        while (await self.next()).get("comment") != "connected":
            pass


@asynccontextmanager
async def open_stream(
    http: httpx.AsyncClient, user: Client, headers: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    """The user's notification stream, once it is subscribed (everything after is delivered)."""
    async with http.stream("GET", "/v1/notifications/stream", headers=user.headers | (headers or {})) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        stream = Stream(r)
        await stream.until_connected()
        yield stream


@pytest.mark.anyio
async def test_stream_sends_each_new_notification_to_its_recipient_only(tmp_path: Path) -> None:
    async with LiveServer(tmp_path / "data") as server, httpx.AsyncClient(base_url=server.url) as http:
        alice, bob, carol = [await Client.signup(http, n) for n in ("alice", "bob", "carol")]
        post = await alice.new_post()
        async with open_stream(http, alice) as alices, open_stream(http, bob) as bobs:
            assert (await bob.post(f"/v1/posts/{post}/like")).status_code == 200
            note = await alices.next_notification()
            assert note["type"] == "like" and note["count"] == 1 and note["read"] is False
            assert [a["username"] for a in note["actors"]] == ["bob"]
            assert note["target"] == {"type": "post", "id": post}

            assert (await alice.post(f"/v1/posts/{post}/like")).status_code == 200  # own: no event
            assert (await carol.post(f"/v1/posts/{post}/like")).status_code == 200
            note = await alices.next_notification()
            assert note["count"] == 2 and [a["username"] for a in note["actors"]] == ["carol", "bob"]

            # Bob's stream had nothing of alice's: his first event is his own new follower.
            assert (await alice.post("/v1/users/bob/follow")).status_code == 200
            mine = await bobs.next_notification()
            assert mine["type"] == "follow" and [a["username"] for a in mine["actors"]] == ["alice"]


@pytest.mark.anyio
async def test_stream_applies_blocks_when_sending(tmp_path: Path) -> None:
    async with LiveServer(tmp_path / "data") as server, httpx.AsyncClient(base_url=server.url) as http:
        alice, bob, carol, dave = [await Client.signup(http, n) for n in ("alice", "bob", "carol", "dave")]
        post = await alice.new_post()
        async with open_stream(http, alice) as alices:
            assert (await carol.post(f"/v1/posts/{post}/like")).status_code == 200
            await alices.next_notification()
            assert (await bob.post(f"/v1/posts/{post}/like")).status_code == 200
            bobs_like = await alices.next_notification()
            assert [a["username"] for a in bobs_like["actors"]] == ["bob", "carol"]
            assert (await alice.post("/v1/users/bob/block")).status_code == 200
            # Bob's like announced again (as a slow or repeated delivery would): he is blocked
            # now, so nothing is sent, although the group still has carol to show.
            announcement = {"group_key": f"like:post:{post}", "id": int(bobs_like["id"])}
            server.container.pubsub.publish(channel_of(int(alice.id)), announcement)
            assert (await dave.post(f"/v1/posts/{post}/like")).status_code == 200
            note = await alices.next_notification()
            assert [a["username"] for a in note["actors"]] == ["dave", "carol"] and note["count"] == 2


@pytest.mark.anyio
async def test_stream_keeps_alive_and_unsubscribes_on_disconnect(tmp_path: Path) -> None:
    async with (
        LiveServer(tmp_path / "data", notification_keepalive_seconds=0.1) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        alice = await Client.signup(http, "alice")
        channel = channel_of(int(alice.id))
        async with open_stream(http, alice) as stream:
            assert server.container.pubsub.subscriber_count(channel) == 1
            assert await stream.next() == {"comment": "keep-alive"}
            assert await stream.next() == {"comment": "keep-alive"}
        async with asyncio.timeout(DEADLINE):
            while server.container.pubsub.subscriber_count(channel) != 0:
                await asyncio.sleep(0.01)


@pytest.mark.anyio
async def test_stream_replays_what_was_missed_after_last_event_id(tmp_path: Path) -> None:
    async with LiveServer(tmp_path / "data") as server, httpx.AsyncClient(base_url=server.url) as http:
        alice, bob, carol = [await Client.signup(http, n) for n in ("alice", "bob", "carol")]
        post = await alice.new_post()
        assert (await bob.post(f"/v1/posts/{post}/like")).status_code == 200
        seen = orjson.loads((await http.get("/v1/notifications", headers=alice.headers)).content)["items"][0]
        assert (await carol.post("/v1/users/alice/follow")).status_code == 200
        async with open_stream(http, alice, {"Last-Event-ID": seen["id"]}) as stream:
            missed = await stream.next_notification()
            assert missed["type"] == "follow" and [a["username"] for a in missed["actors"]] == ["carol"]
            assert (await carol.post(f"/v1/posts/{post}/like")).status_code == 200
            live = await stream.next_notification()
            assert live["type"] == "like" and live["count"] == 2


@pytest.mark.anyio
async def test_stream_needs_a_token(tmp_path: Path) -> None:
    async with LiveServer(tmp_path / "data") as server, httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get("/v1/notifications/stream")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
