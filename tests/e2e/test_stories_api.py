"""Stories over HTTP: post, tray, a user's stories, view once, viewers, audiences, expiry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

import infra.auth
from infra.jobs import expire_stories
from projections.stories import STORIES, STORY_TRAY
from tests.apphelpers import User
from tests.e2e.story_app import approve, block, error, follow, go_private, items, make_app, upload

TTL = 3600


@pytest.fixture(autouse=True)
def fast_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infra.auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))


class App:
    def __init__(self, data_dir: Path, **overrides: Any) -> None:
        self.client, self.container, self.clock = make_app(data_dir, story_ttl_seconds=TTL, **overrides)

    def user(self, name: str) -> User:
        return User(self.client, name)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    a = App(tmp_path / "data")
    yield a
    a.container.close()


def post_story(user: User, audience: str = "followers", **kw: Any) -> dict[str, Any]:
    r = user.post("/v1/stories", json={"media_id": upload(user), "audience": audience}, **kw)
    assert r.status_code == 201, r.text
    return dict(r.json())


def tray(user: User) -> list[tuple[str, int, bool]]:
    return [(e["user"]["username"], e["stories_count"], e["seen"]) for e in items(user.get("/v1/stories"))]


def story_ids(user: User, of: User) -> list[str]:
    return [s["id"] for s in items(user.get(f"/v1/users/{of.username}/stories"))]


# -- posting ------------------------------------------------------------------


def test_post_a_story(app: App) -> None:
    alice = app.user("alice")
    media_id = upload(alice)
    r = alice.post("/v1/stories", json={"media_id": media_id, "audience": "followers"})
    assert r.status_code == 201, r.text
    story = r.json()
    assert set(story) == {"id", "author", "media", "audience", "created_at", "expires_at"}
    assert story["id"].isdigit() and story["audience"] == "followers"
    assert story["author"] == {"id": alice.id, "username": "alice", "display_name": "alice"}
    assert story["media"]["id"] == media_id and story["media"]["kind"] == "image"
    created, expires = datetime.fromisoformat(story["created_at"]), datetime.fromisoformat(story["expires_at"])
    assert created == app.clock.now and expires - created == timedelta(seconds=TTL)
    # What the author reads back is what the command answered, plus `seen`.
    assert alice.get(f"/v1/stories/{story['id']}").json() == story | {"seen": True}


def test_post_story_rejects_what_is_not_mine_or_malformed(app: App) -> None:
    alice, bob = app.user("alice"), app.user("bob")
    bobs_media = upload(bob)
    error(alice.post("/v1/stories", json={"media_id": bobs_media, "audience": "followers"}), 404, "media_not_found")
    error(alice.post("/v1/stories", json={"media_id": "12345", "audience": "followers"}), 404, "media_not_found")
    mine = upload(alice)
    error(alice.post("/v1/stories", json={"media_id": mine, "audience": "public"}), 422, "invalid")
    error(alice.post("/v1/stories", json={"media_id": "abc", "audience": "followers"}), 422, "invalid")
    error(alice.post("/v1/stories", json={"media_id": mine}), 422, "invalid")
    error(alice.post("/v1/stories", json={"media_id": mine, "audience": "followers", "x": 1}), 422, "invalid")
    error(app.client.post("/v1/stories", json={"media_id": mine, "audience": "followers"}), 401)
    assert story_ids(alice, alice) == []


def test_post_story_is_idempotent(app: App) -> None:
    alice = app.user("alice")
    body = {"media_id": upload(alice), "audience": "followers"}
    first = alice.post("/v1/stories", json=body, headers={"Idempotency-Key": "s1"})
    again = alice.post("/v1/stories", json=body, headers={"Idempotency-Key": "s1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert story_ids(alice, alice) == [first.json()["id"]]
    other = alice.post("/v1/stories", json=body | {"audience": "close_friends"}, headers={"Idempotency-Key": "s1"})
    error(other, 422, "idempotency_key_reused")


# -- reading --------------------------------------------------------------------


def test_tray_has_followed_users_and_me_unseen_first_then_newest(app: App) -> None:
    me, ann, ben, cat, stranger = (app.user(n) for n in ("me", "ann", "ben", "cat", "stranger"))
    for u in (ann, ben, cat):
        follow(me, u)
    anns = post_story(ann)
    app.clock.advance(1)
    post_story(ann)
    app.clock.advance(1)
    bens = post_story(ben)
    app.clock.advance(1)
    post_story(stranger)
    app.clock.advance(1)
    post_story(me)
    assert tray(me) == [("ben", 1, False), ("ann", 2, False), ("me", 1, True)]
    assert items(me.get("/v1/stories"))[0]["latest_at"] == bens["created_at"]

    assert me.post(f"/v1/stories/{bens['id']}/view").status_code == 204
    assert tray(me) == [("ann", 2, False), ("me", 1, True), ("ben", 1, True)]
    assert me.post(f"/v1/stories/{anns['id']}/view").status_code == 204
    assert tray(me)[0] == ("ann", 2, False)  # one of ann's two is still unseen

    page1 = me.get("/v1/stories", params={"limit": 2}).json()
    page2 = me.get("/v1/stories", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
    assert [e["user"]["username"] for e in page1["items"] + page2["items"]] == ["ann", "me", "ben"]
    assert page2["next_cursor"] is None


def test_user_stories_oldest_first_with_seen_and_paging(app: App) -> None:
    alice, bob = app.user("alice"), app.user("bob")
    follow(bob, alice)
    ids = []
    for _ in range(3):
        ids.append(post_story(alice)["id"])
        app.clock.advance(1)
    assert bob.post(f"/v1/stories/{ids[1]}/view").status_code == 204
    stories = items(bob.get("/v1/users/alice/stories"))
    assert [s["id"] for s in stories] == ids
    assert [s["seen"] for s in stories] == [False, True, False]

    first = bob.get("/v1/users/alice/stories", params={"limit": 2}).json()
    rest = bob.get("/v1/users/alice/stories", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [s["id"] for s in first["items"]] == ids[:2] and [s["id"] for s in rest["items"]] == ids[2:]
    assert rest["next_cursor"] is None
    error(bob.get("/v1/users/alice/stories", params={"cursor": "not-a-cursor"}), 422, "invalid_cursor")
    error(bob.get("/v1/users/nobody/stories"), 404)
    error(app.client.get("/v1/users/alice/stories"), 401)


def test_stories_are_for_followers_only(app: App) -> None:
    alice, stranger = app.user("alice"), app.user("stranger")
    story = post_story(alice)
    assert story_ids(stranger, alice) == []
    assert tray(stranger) == []
    error(stranger.get(f"/v1/stories/{story['id']}"), 404)
    error(stranger.post(f"/v1/stories/{story['id']}/view"), 404)


def test_close_friends_audience(app: App) -> None:
    alice, friend, follower = app.user("alice"), app.user("friend"), app.user("follower")
    follow(friend, alice)
    follow(follower, alice)
    assert alice.put("/v1/me/close-friends", json={"usernames": ["friend"]}).status_code == 200
    everyone = post_story(alice, "followers")
    close = post_story(alice, "close_friends")
    assert story_ids(friend, alice) == [everyone["id"], close["id"]]
    assert story_ids(follower, alice) == [everyone["id"]]
    assert tray(follower) == [("alice", 1, False)]
    assert tray(friend) == [("alice", 2, False)]
    error(follower.get(f"/v1/stories/{close['id']}"), 404)
    error(follower.post(f"/v1/stories/{close['id']}/view"), 404)
    assert friend.post(f"/v1/stories/{close['id']}/view").status_code == 204

    # Taken off the list: the close-friends story is gone for them at once.
    assert alice.put("/v1/me/close-friends", json={"usernames": []}).status_code == 200
    assert story_ids(friend, alice) == [everyone["id"]]


def test_private_author_needs_an_approved_follow(app: App) -> None:
    alice, bob = app.user("alice"), app.user("bob")
    go_private(alice)
    story = post_story(alice)
    assert bob.post("/v1/users/alice/follow").json()["state"] == "requested"
    error(bob.get("/v1/users/alice/stories"), 404)
    error(bob.get(f"/v1/stories/{story['id']}"), 404)
    assert tray(bob) == []
    approve(alice, bob)
    assert story_ids(bob, alice) == [story["id"]]
    assert tray(bob) == [("alice", 1, False)]


@pytest.mark.parametrize("blocker", ["author", "viewer"])
def test_blocks_either_way_hide_stories_everywhere(app: App, blocker: str) -> None:
    alice, bob = app.user("alice"), app.user("bob")
    follow(bob, alice)
    story = post_story(alice)
    assert tray(bob) == [("alice", 1, False)]
    if blocker == "author":
        block(alice, bob)
    else:
        block(bob, alice)
    assert tray(bob) == []
    error(bob.get("/v1/users/alice/stories"), 404)
    error(bob.get(f"/v1/stories/{story['id']}"), 404)
    error(bob.post(f"/v1/stories/{story['id']}/view"), 404)
    error(bob.get(f"/v1/stories/{story['id']}/viewers"), 404)


# -- views and viewers ------------------------------------------------------------


def test_a_view_is_recorded_once_and_never_for_the_author(app: App) -> None:
    alice, bob = app.user("alice"), app.user("bob")
    follow(bob, alice)
    story = post_story(alice)
    head = app.container.log.head()
    assert alice.post(f"/v1/stories/{story['id']}/view").status_code == 204
    assert app.container.log.head() == head  # the author's own look appends nothing
    assert bob.post(f"/v1/stories/{story['id']}/view").status_code == 204
    after_first = app.container.log.head()
    assert after_first == head + 1
    assert bob.post(f"/v1/stories/{story['id']}/view").status_code == 204
    r = bob.post(f"/v1/stories/{story['id']}/view", headers={"Idempotency-Key": "v"})
    assert r.status_code == 204
    assert app.container.log.head() == after_first
    viewers = items(alice.get(f"/v1/stories/{story['id']}/viewers"))
    assert [v["user"]["username"] for v in viewers] == ["bob"]
    assert set(viewers[0]) == {"user", "viewed_at"}
    error(bob.post("/v1/stories/123/view"), 404)
    error(bob.post("/v1/stories/abc/view"), 404)
    error(app.client.post(f"/v1/stories/{story['id']}/view"), 401)


def test_viewer_limit_accepts_but_does_not_record_further_viewers(tmp_path: Path) -> None:
    app = App(tmp_path / "data", story_viewer_limit=2)
    alice = app.user("alice")
    viewers = [app.user(f"v{i}") for i in range(3)]
    for v in viewers:
        follow(v, alice)
    story = post_story(alice)
    for v in viewers:
        assert v.post(f"/v1/stories/{story['id']}/view").status_code == 204
    assert {v["user"]["username"] for v in items(alice.get(f"/v1/stories/{story['id']}/viewers"))} == {"v0", "v1"}
    assert [s["seen"] for s in items(viewers[2].get("/v1/users/alice/stories"))] == [False]
    app.container.close()


def test_viewers_are_for_the_author_only_newest_first_without_the_blocked(app: App) -> None:
    alice, bob, carol, dave, stranger = (app.user(n) for n in ("alice", "bob", "carol", "dave", "stranger"))
    for u in (bob, carol, dave):
        follow(u, alice)
    story = post_story(alice)
    for u in (bob, carol, dave):
        app.clock.advance(1)
        assert u.post(f"/v1/stories/{story['id']}/view").status_code == 204
    path = f"/v1/stories/{story['id']}/viewers"
    error(bob.get(path), 403, "not_author")  # can see the story, but is not its author
    error(stranger.get(path), 404)  # cannot even see it
    assert [v["user"]["username"] for v in items(alice.get(path))] == ["dave", "carol", "bob"]

    first = alice.get(path, params={"limit": 2}).json()
    rest = alice.get(path, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [v["user"]["username"] for v in first["items"] + rest["items"]] == ["dave", "carol", "bob"]
    assert rest["next_cursor"] is None

    block(alice, carol)
    block(dave, alice)
    assert [v["user"]["username"] for v in items(alice.get(path))] == ["bob"]
    error(alice.get(path, params={"limit": 0}), 422)


# -- expiry --------------------------------------------------------------------------


def test_expired_stories_disappear_at_once_on_every_read(app: App) -> None:
    alice, bob = app.user("alice"), app.user("bob")
    follow(bob, alice)
    story = post_story(alice)
    assert bob.post(f"/v1/stories/{story['id']}/view").status_code == 204
    app.clock.advance(TTL - 1)
    assert story_ids(bob, alice) == [story["id"]]
    app.clock.advance(1)  # expires_at <= now
    assert story_ids(bob, alice) == []
    assert tray(bob) == [] and tray(alice) == []
    error(bob.get(f"/v1/stories/{story['id']}"), 404)
    error(bob.post(f"/v1/stories/{story['id']}/view"), 404)
    error(alice.get(f"/v1/stories/{story['id']}/viewers"), 404)
    # Not yet removed: that is the job's work.
    assert app.container.read.get(STORIES.name, {"story_id": int(story["id"])}) is not None


def test_expiry_job_removes_stories_past_their_time(app: App) -> None:
    alice, bob = app.user("alice"), app.user("bob")
    follow(bob, alice)
    old = post_story(alice)
    app.clock.advance(TTL / 2)
    new = post_story(alice)
    assert expire_stories(app.container) == 0
    app.clock.advance(TTL / 2)
    assert expire_stories(app.container) == 1
    read = app.container.read
    assert read.get(STORIES.name, {"story_id": int(old["id"])}) is None
    assert read.get(STORIES.name, {"story_id": int(new["id"])}) is not None
    assert read.get(STORY_TRAY.name, {"viewer_id": int(bob.id), "author_id": int(alice.id)}) is not None
    assert expire_stories(app.container) == 0
    app.clock.advance(TTL)
    assert expire_stories(app.container) == 1
    assert read.scan(STORY_TRAY.name, {"viewer_id": int(bob.id)}) == []
    assert read.scan(STORY_TRAY.name, {"viewer_id": int(alice.id)}) == []


def test_expiry_job_works_in_batches_and_is_scheduled(tmp_path: Path) -> None:
    app = App(tmp_path / "data", story_expiry_interval_seconds=7.5)
    alice = app.user("alice")
    for _ in range(5):
        post_story(alice)
    app.clock.advance(TTL)
    assert expire_stories(app.container, batch=2) == 5
    assert app.container.read.scan(STORIES.name, {}) == []
    [job] = [j for j in app.container.jobs if j.name == "expire_stories"]
    assert job.interval_seconds == 7.5
    app.container.close()


def log_head(client: TestClient) -> int:
    metrics = client.get("/metrics").text
    return int(next(line.split()[1] for line in metrics.splitlines() if line.startswith("glimpse_event_log_head ")))


def test_the_running_app_schedules_the_expiry_job(tmp_path: Path) -> None:
    app = App(tmp_path / "data", story_expiry_interval_seconds=0.05)
    with app.client:  # runs the lifespan, which starts the periodic jobs
        alice = app.user("alice")
        story = post_story(alice)
        deadline = time.monotonic() + 10
        while alice.get(f"/v1/media/{story['media']['id']}").json()["status"] == "processing":
            assert time.monotonic() < deadline, "the media worker did not run"  # its event would move the head
            time.sleep(0.02)
        head = log_head(app.client)
        app.clock.advance(TTL)
        deadline = time.monotonic() + 10
        while log_head(app.client) == head:  # the job appends one StoryExpired
            assert time.monotonic() < deadline, "the expiry job did not run"
            time.sleep(0.02)
    assert app.container.read.get(STORIES.name, {"story_id": int(story["id"])}) is None
    app.container.close()


def test_account_deletion_takes_its_stories_out_of_trays(app: App) -> None:
    alice, bob = app.user("alice"), app.user("bob")
    follow(bob, alice)
    post_story(alice)
    assert tray(bob) == [("alice", 1, False)]
    assert alice.delete("/v1/me").status_code == 204
    assert tray(bob) == []
    assert app.container.read.scan(STORIES.name, {}) == []
