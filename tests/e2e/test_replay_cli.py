"""`glimpse replay` and `glimpse digest` as commands, on a data dir nothing serves.

The history is written through the HTTP API (in process), then the commands run as
their own processes: a replay gives the digests of the live read models, a second
replay gives them again, one read model can be replayed alone, and the app then
serves the switched read models exactly as before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra import readmodel_generations as generations
from infra.storage.sqlite_eventlog import connect
from tests.apphelpers import User, make_client
from tests.e2e.posts_support import follow, make_post

ROOT = Path(__file__).resolve().parents[2]


def glimpse(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def digest(data_dir: Path, *extra: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(glimpse("digest", "--data-dir", str(data_dir), "--json", *extra).stdout)
    return found


def summary(found: dict[str, Any]) -> dict[str, str]:
    return {name: d["digest"] for name, d in found.items()}


def _views(alice: User, bob: User, post_ids: list[str]) -> list[Any]:
    return [
        bob.get("/v1/feed").json(),
        alice.get(f"/v1/users/{bob.username}").json(),
        [bob.get(f"/v1/posts/{p}").json() for p in post_ids],
        alice.get("/v1/notifications").json(),
        bob.get(f"/v1/posts/{post_ids[0]}/comments").json(),
        bob.get("/v1/stories").json(),
    ]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any], list[str], tuple[str, str]]:
    data_dir = tmp_path_factory.mktemp("replay-cli") / "data"
    client, container = make_client(data_dir)
    with client:
        alice, bob, carol = User(client, "alice"), User(client, "bob"), User(client, "carol")
        follow(bob, alice)
        follow(carol, alice)
        follow(alice, bob)
        posts = [make_post(alice, caption=f"hello @bob #{i}")["id"] for i in range(3)]
        posts.append(make_post(bob, audience="followers")["id"])
        for p in posts[:3]:
            assert bob.post(f"/v1/posts/{p}/like").status_code == 200
            assert carol.post(f"/v1/posts/{p}/comments", json={"text": "nice @alice"}).status_code == 201
        assert carol.post(f"/v1/users/{bob.username}/block").status_code == 200
        views = _views(alice, bob, posts)
    container.close()
    return data_dir, views, posts, ("alice", "bob")


def test_a_replay_gives_the_live_digests_and_a_second_replay_the_same(
    history: tuple[Path, list[Any], list[str], tuple[str, str]],
) -> None:
    data_dir = history[0]
    live = digest(data_dir)
    first = glimpse("replay", "--data-dir", str(data_dir), "--json", "--grace-seconds", "0")
    out = json.loads(first.stdout)
    assert sorted(out["report"]["projections"]) == sorted(live)
    assert summary(out["digests"]) == summary(live)
    assert "events/s" in first.stderr and "ETA" in first.stderr  # the progress line
    assert summary(digest(data_dir)) == summary(live)
    second = json.loads(glimpse("replay", "--data-dir", str(data_dir), "--json").stdout)
    assert second["report"]["build_id"] == out["report"]["build_id"] + 1
    assert summary(second["digests"]) == summary(live)


def test_one_read_model_can_be_replayed_alone(history: tuple[Path, list[Any], list[str], tuple[str, str]]) -> None:
    data_dir = history[0]
    before = digest(data_dir)
    out = json.loads(glimpse("replay", "--data-dir", str(data_dir), "--projection", "stories", "--json").stdout)
    assert out["report"]["projections"] == ["stories"]
    assert out["report"]["helpers"] == ["profile", "graph"]
    assert summary(digest(data_dir)) == summary(before)
    conn = connect(data_dir / "readmodels.db")
    assert generations.active(conn)["stories"][0] == f"rm{out['report']['build_id']}_"
    conn.close()


def test_the_app_serves_the_replayed_read_models_as_before(
    history: tuple[Path, list[Any], list[str], tuple[str, str]],
) -> None:
    data_dir, views, posts, (alice_name, bob_name) = history
    glimpse("replay", "--data-dir", str(data_dir), "--grace-seconds", "0")
    client, container = make_client(data_dir)
    with client:
        sessions = {}
        for name in (alice_name, bob_name):
            r = client.post("/v1/sessions", json={"username": name, "password": "correct horse 1"})
            assert r.status_code == 200, r.text
            sessions[name] = r.json()["access_token"]
        alice = _Signed(client, alice_name, sessions[alice_name])
        bob = _Signed(client, bob_name, sessions[bob_name])
        assert _views(alice, bob, posts) == views  # type: ignore[arg-type]
        # ...and keeps writing into them.
        assert bob.post(f"/v1/posts/{posts[3]}/like").status_code == 200
        assert bob.get(f"/v1/posts/{posts[3]}").json()["like_count"] == 1
    container.close()
    assert summary(digest(data_dir)) == summary(
        json.loads(glimpse("replay", "--data-dir", str(data_dir), "--json").stdout)["digests"]
    )


class _Signed:
    """A user signing in again (User registers, which a second run of the app must not)."""

    def __init__(self, client: Any, username: str, token: str) -> None:
        self.client, self.username, self.headers = client, username, {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> Any:
        return self.client.get(path, headers=self.headers)

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post(path, headers=self.headers, **kw)


def test_digest_lists_tables_and_marks_caches(history: tuple[Path, list[Any], list[str], tuple[str, str]]) -> None:
    out = glimpse("digest", "--data-dir", str(history[0]), "--tables").stdout
    assert "feed_author_posts" in out and "(cache: not in the read model's digest)" in out
    found = digest(history[0], "--projection", "graph")
    assert list(found) == ["graph"]
    assert found["graph"]["tables"]["followers"]["rows"] >= 3


def test_mistakes_are_reported_plainly(
    tmp_path: Path, history: tuple[Path, list[Any], list[str], tuple[str, str]]
) -> None:
    done = glimpse("replay", "--data-dir", str(history[0]), "--projection", "nope", check=False)
    assert done.returncode == 1 and "no projection named nope" in done.stderr
    done = glimpse("replay", "--data-dir", str(tmp_path / "empty"), check=False)
    assert done.returncode == 1 and "no event log" in done.stderr
    done = glimpse("digest", "--data-dir", str(tmp_path / "empty"), check=False)
    assert done.returncode == 1 and "no read models" in done.stderr
