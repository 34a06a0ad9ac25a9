"""The social graph over HTTP: follows, requests, blocks, lists, mutuals, suggestions, close friends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.container import Container
from tests.apphelpers import User, make_client


@pytest.fixture
def app(tmp_path: Path) -> tuple[TestClient, Container]:
    return make_client(tmp_path / "data")


@pytest.fixture
def client(app: tuple[TestClient, Container]) -> TestClient:
    return app[0]


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["username"] for item in response.json()["items"]]


def error(response: Any, status: int, code: str | None = None) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert set(body) == {"code", "message"} and body["message"]
    if code is not None:
        assert body["code"] == code
    return dict(body)


def profile(viewer: User | TestClient, username: str) -> dict[str, Any]:
    r = viewer.get(f"/v1/users/{username}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def go_private(user: User) -> None:
    assert user.patch("/v1/me", json={"private": True}).status_code == 200


# -- follow / unfollow ----------------------------------------------------------


def test_follow_a_public_account(app: tuple[TestClient, Container]) -> None:
    client, container = app
    alice, bob = User(client, "alice"), User(client, "bob")
    r = bob.post("/v1/users/alice/follow")
    assert r.status_code == 200 and r.json() == {"state": "following"}
    assert r.headers["X-Glimpse-Consistency"]
    assert profile(alice, "alice")["counts"] == {"posts": 0, "followers": 1, "following": 0}
    assert profile(client, "bob")["counts"]["following"] == 1
    seen_by_bob = profile(bob, "alice")
    assert seen_by_bob["followed_by_me"] is True and seen_by_bob["requested"] is False
    assert profile(alice, "bob")["follows_me"] is True

    head = container.log.head()
    again = bob.post("/v1/users/ALICE/follow")  # usernames are case-insensitive
    assert again.status_code == 200 and again.json() == {"state": "following"}
    assert container.log.head() == head  # nothing new appended
    assert profile(alice, "alice")["counts"]["followers"] == 1


def test_follow_needs_a_token(client: TestClient) -> None:
    User(client, "alice")
    error(client.post("/v1/users/alice/follow"), 401, "unauthenticated")
    error(client.delete("/v1/users/alice/follow"), 401)


def test_follow_self_unknown_or_deleted(client: TestClient) -> None:
    alice, bob = User(client, "alice"), User(client, "bob")
    error(alice.post("/v1/users/alice/follow"), 422, "cannot_follow_self")
    error(alice.delete("/v1/users/alice/follow"), 422, "cannot_unfollow_self")
    error(alice.post("/v1/users/nobody/follow"), 404, "not_found")
    error(alice.post(f"/v1/users/{'x' * 65}/follow"), 422, "invalid")
    assert bob.delete("/v1/me").status_code == 204
    error(alice.post("/v1/users/bob/follow"), 404, "not_found")
    error(alice.delete("/v1/users/bob/follow"), 404, "not_found")


def test_unfollow_is_idempotent(app: tuple[TestClient, Container]) -> None:
    client, container = app
    User(client, "alice")
    bob = User(client, "bob")
    bob.post("/v1/users/alice/follow")
    r = bob.delete("/v1/users/alice/follow")
    assert r.status_code == 200 and r.json() == {"state": "none"}
    assert profile(client, "alice")["counts"]["followers"] == 0
    assert profile(bob, "alice")["followed_by_me"] is False
    head = container.log.head()
    r = bob.delete("/v1/users/alice/follow")
    assert r.status_code == 200 and r.json() == {"state": "none"}
    assert container.log.head() == head


# -- private accounts and requests --------------------------------------------------


def test_private_account_request_flow(client: TestClient) -> None:
    alice, bob = User(client, "alice"), User(client, "bob")
    go_private(alice)
    r = bob.post("/v1/users/alice/follow")
    assert r.status_code == 200 and r.json() == {"state": "requested"}
    assert bob.post("/v1/users/alice/follow").json() == {"state": "requested"}
    card = profile(bob, "alice")
    assert card["requested"] is True and card["followed_by_me"] is False and card["counts"]["followers"] == 0
    error(bob.get("/v1/users/alice/followers"), 404)  # not approved yet

    pending = alice.get("/v1/me/follow-requests")
    assert pending.json() == {
        "items": [{"id": bob.id, "username": "bob", "display_name": "bob"}],
        "next_cursor": None,
    }
    r = alice.post("/v1/me/follow-requests/bob/approve")
    assert r.status_code == 200 and r.json() == {"state": "approved"}
    card = profile(bob, "alice")
    assert card["followed_by_me"] is True and card["requested"] is False and card["counts"]["followers"] == 1
    assert names(alice.get("/v1/me/follow-requests")) == []
    assert names(bob.get("/v1/users/alice/followers")) == ["bob"]
    error(alice.post("/v1/me/follow-requests/bob/approve"), 404)  # nothing pending any more
    assert bob.post("/v1/users/alice/follow").json() == {"state": "following"}


def test_deny_and_ask_again(client: TestClient) -> None:
    alice, bob = User(client, "alice"), User(client, "bob")
    go_private(alice)
    bob.post("/v1/users/alice/follow")
    r = alice.post("/v1/me/follow-requests/bob/deny")
    assert r.status_code == 200 and r.json() == {"state": "denied"}
    assert names(alice.get("/v1/me/follow-requests")) == []
    card = profile(bob, "alice")
    assert card["requested"] is False and card["followed_by_me"] is False
    error(alice.post("/v1/me/follow-requests/bob/deny"), 404)
    assert bob.post("/v1/users/alice/follow").json() == {"state": "requested"}


def test_withdraw_a_request(client: TestClient) -> None:
    alice, bob = User(client, "alice"), User(client, "bob")
    go_private(alice)
    bob.post("/v1/users/alice/follow")
    assert bob.delete("/v1/users/alice/follow").json() == {"state": "none"}
    assert names(alice.get("/v1/me/follow-requests")) == []
    assert profile(bob, "alice")["requested"] is False


def test_answering_requests_that_do_not_exist(client: TestClient) -> None:
    alice, bob = User(client, "alice"), User(client, "bob")
    go_private(alice)
    error(alice.post("/v1/me/follow-requests/bob/approve"), 404)
    error(alice.post("/v1/me/follow-requests/nobody/deny"), 404)
    error(alice.post("/v1/me/follow-requests/alice/approve"), 404)
    bob.post("/v1/users/alice/follow")
    error(bob.post("/v1/me/follow-requests/alice/approve"), 404)  # the request is to alice, not to bob
    error(client.get("/v1/me/follow-requests"), 401)


def test_approving_after_the_requester_blocked_me(client: TestClient) -> None:
    alice, bob = User(client, "alice"), User(client, "bob")
    go_private(alice)
    bob.post("/v1/users/alice/follow")
    assert bob.post("/v1/users/alice/block").status_code == 200
    assert names(alice.get("/v1/me/follow-requests")) == []
    error(alice.post("/v1/me/follow-requests/bob/approve"), 404)
    assert profile(client, "alice")["counts"]["followers"] == 0


def test_request_from_a_deleted_account_disappears(client: TestClient) -> None:
    alice, bob = User(client, "alice"), User(client, "bob")
    go_private(alice)
    bob.post("/v1/users/alice/follow")
    bob.delete("/v1/me")
    assert names(alice.get("/v1/me/follow-requests")) == []
    error(alice.post("/v1/me/follow-requests/bob/approve"), 404)


def test_going_public_lets_requests_in(client: TestClient) -> None:
    alice, bob = User(client, "alice"), User(client, "bob")
    go_private(alice)
    bob.post("/v1/users/alice/follow")
    alice.patch("/v1/me", json={"private": False})
    assert names(alice.get("/v1/me/follow-requests")) == []
    assert names(client.get("/v1/users/alice/followers")) == ["bob"]


# -- blocks -----------------------------------------------------------------------


def test_block_hides_profiles_both_ways(client: TestClient) -> None:
    alice, bob = User(client, "alice"), User(client, "bob")
    r = alice.post("/v1/users/bob/block")
    assert r.status_code == 200 and r.json() == {"blocked": True}
    error(alice.get("/v1/users/bob"), 404)
    error(bob.get("/v1/users/alice"), 404)
    profile(client, "alice")  # anonymous readers still see both
    profile(client, "bob")
    error(bob.post("/v1/users/alice/follow"), 404)
    error(alice.post("/v1/users/bob/follow"), 404)
    error(bob.get("/v1/users/alice/followers"), 404)
    error(bob.post("/v1/users/alice/block"), 404)  # cannot tell a block from a missing user
    error(bob.delete("/v1/users/alice/block"), 404)

    r = alice.delete("/v1/users/bob/block")
    assert r.status_code == 200 and r.json() == {"blocked": False}
    profile(bob, "alice")
    profile(alice, "bob")
    assert alice.delete("/v1/users/bob/block").json() == {"blocked": False}  # idempotent


def test_block_ends_follows_and_requests_both_ways(client: TestClient) -> None:
    alice, bob = User(client, "alice"), User(client, "bob")
    carol = User(client, "carol")
    alice.post("/v1/users/bob/follow")
    bob.post("/v1/users/alice/follow")
    go_private(carol)
    alice.post("/v1/users/carol/follow")
    assert profile(client, "alice")["counts"] == {"posts": 0, "followers": 1, "following": 1}

    alice.post("/v1/users/bob/block")
    assert profile(client, "alice")["counts"] == {"posts": 0, "followers": 0, "following": 0}
    assert profile(client, "bob")["counts"] == {"posts": 0, "followers": 0, "following": 0}
    carol.post("/v1/users/alice/block")
    assert names(carol.get("/v1/me/follow-requests")) == []
    # Unblocking does not bring the follows back.
    alice.delete("/v1/users/bob/block")
    assert profile(alice, "bob")["followed_by_me"] is False
    assert profile(alice, "bob")["follows_me"] is False


def test_block_again_self_and_both_ways(app: tuple[TestClient, Container]) -> None:
    client, container = app
    alice, bob = User(client, "alice"), User(client, "bob")
    error(alice.post("/v1/users/alice/block"), 422, "cannot_block_self")
    error(alice.delete("/v1/users/alice/block"), 422, "cannot_unblock_self")
    error(alice.post("/v1/users/nobody/block"), 404)
    alice.post("/v1/users/bob/block")
    head = container.log.head()
    assert alice.post("/v1/users/bob/block").json() == {"blocked": True}
    assert container.log.head() == head
    # Bob is blocked by alice; once alice unblocks, bob may block her, and after that
    # alice's view of bob is gone again.
    alice.delete("/v1/users/bob/block")
    assert bob.post("/v1/users/alice/block").json() == {"blocked": True}
    error(alice.get("/v1/users/bob"), 404)


# -- lists ------------------------------------------------------------------------


def test_followers_and_following_lists(client: TestClient) -> None:
    dave = User(client, "dave")
    fans = [User(client, f"fan{i}") for i in range(5)]
    for fan in fans:
        fan.post("/v1/users/dave/follow")
    dave.post("/v1/users/fan0/follow")
    dave.post("/v1/users/fan3/follow")
    expected = [{"id": f.id, "username": f.username, "display_name": f.username} for f in fans]

    first = client.get("/v1/users/dave/followers", params={"limit": 2}).json()
    assert first["items"] == expected[:2] and first["next_cursor"]
    second = client.get("/v1/users/dave/followers", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert second["items"] == expected[2:4] and second["next_cursor"]
    third = client.get("/v1/users/dave/followers", params={"limit": 2, "cursor": second["next_cursor"]}).json()
    assert third == {"items": expected[4:], "next_cursor": None}
    assert client.get("/v1/users/dave/followers").json() == {"items": expected, "next_cursor": None}
    assert names(client.get("/v1/users/dave/following")) == ["fan0", "fan3"]
    assert names(client.get("/v1/users/fan1/following")) == ["dave"]
    assert names(client.get("/v1/users/fan1/followers")) == []


def test_list_bad_input(client: TestClient) -> None:
    User(client, "dave")
    error(client.get("/v1/users/dave/followers", params={"limit": 0}), 422, "invalid")
    error(client.get("/v1/users/dave/followers", params={"limit": 101}), 422, "invalid")
    error(client.get("/v1/users/dave/following", params={"cursor": "not-a-cursor!"}), 422, "invalid_cursor")
    error(client.get("/v1/users/nobody/followers"), 404)
    assert client.get("/v1/users/dave/followers", params={"limit": 100}).status_code == 200


def test_lists_leave_out_users_blocked_either_way(client: TestClient) -> None:
    dave, carol, erin, frank = (User(client, n) for n in ("dave", "carol", "erin", "frank"))
    for u in (carol, erin, frank):
        u.post("/v1/users/dave/follow")
    dave.post("/v1/users/erin/follow")
    dave.post("/v1/users/frank/follow")
    erin.post("/v1/users/carol/block")  # erin blocked carol
    carol.post("/v1/users/frank/block")  # carol blocked frank
    assert names(carol.get("/v1/users/dave/followers")) == ["carol"]
    assert names(carol.get("/v1/users/dave/following")) == []
    assert names(client.get("/v1/users/dave/followers")) == ["carol", "erin", "frank"]
    assert names(dave.get("/v1/users/dave/following")) == ["erin", "frank"]


def test_lists_of_a_deleted_follower(client: TestClient) -> None:
    User(client, "dave")
    carol, erin = User(client, "carol"), User(client, "erin")
    carol.post("/v1/users/dave/follow")
    erin.post("/v1/users/dave/follow")
    carol.delete("/v1/me")
    assert names(client.get("/v1/users/dave/followers")) == ["erin"]
    assert profile(client, "dave")["counts"]["followers"] == 1


def test_private_lists_are_for_the_owner_and_followers(client: TestClient) -> None:
    alice, bob, carol = User(client, "alice"), User(client, "bob"), User(client, "carol")
    alice.post("/v1/users/carol/follow")
    go_private(alice)
    bob.post("/v1/users/alice/follow")
    for path in ("/v1/users/alice/followers", "/v1/users/alice/following"):
        error(client.get(path), 404)
        error(bob.get(path), 404)
        error(carol.get(path), 404)  # alice follows carol, but carol does not follow alice
    assert names(alice.get("/v1/users/alice/following")) == ["carol"]
    alice.post("/v1/me/follow-requests/bob/approve")
    assert names(bob.get("/v1/users/alice/following")) == ["carol"]
    assert names(bob.get("/v1/users/alice/followers")) == ["bob"]


# -- mutuals ----------------------------------------------------------------------


def test_mutuals(client: TestClient) -> None:
    me = User(client, "me")
    x, y, z = User(client, "x"), User(client, "y"), User(client, "z")
    User(client, "target")
    stranger = User(client, "stranger")
    for name in ("x", "y", "z"):
        me.post(f"/v1/users/{name}/follow")
    for u in (x, y, stranger):
        u.post("/v1/users/target/follow")
    me.post("/v1/users/target/follow")
    z.post("/v1/users/me/follow")
    assert names(me.get("/v1/users/target/mutuals")) == ["x", "y"]
    page = me.get("/v1/users/target/mutuals", params={"limit": 1}).json()
    assert [i["username"] for i in page["items"]] == ["x"] and page["next_cursor"]
    rest = me.get("/v1/users/target/mutuals", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert [i["username"] for i in rest["items"]] == ["y"]
    # Walking the other side (the target has fewer followers than I follow) gives the same answer.
    for i in range(4):
        me.post(f"/v1/users/{User(client, f'extra{i}').username}/follow")
    assert names(me.get("/v1/users/target/mutuals")) == ["x", "y"]
    assert names(me.get("/v1/users/me/mutuals")) == ["z"]
    error(client.get("/v1/users/target/mutuals"), 401)
    error(me.get("/v1/users/nobody/mutuals"), 404)
    y.post("/v1/users/me/block")
    error(me.get("/v1/users/y/mutuals"), 404)


def test_mutuals_of_a_private_account(client: TestClient) -> None:
    me, x = User(client, "me"), User(client, "x")
    target = User(client, "target")
    me.post("/v1/users/x/follow")
    x.post("/v1/users/target/follow")
    go_private(target)
    assert names(me.get("/v1/users/target/mutuals")) == ["x"]


# -- suggestions --------------------------------------------------------------------


def test_suggestions_rank_friends_of_friends_with_reasons(client: TestClient) -> None:
    me = User(client, "me")
    a, b, c, d = (User(client, n) for n in ("a", "b", "c", "d"))
    t1 = User(client, "t1")
    User(client, "t2")
    User(client, "t3")
    p, q, gone = User(client, "p"), User(client, "q"), User(client, "gone")
    for name in ("a", "b", "c", "d"):
        me.post(f"/v1/users/{name}/follow")
    for u in (a, b, c, d):
        u.post("/v1/users/t1/follow")
    for u in (a, b):
        u.post("/v1/users/t2/follow")
    a.post("/v1/users/t3/follow")
    a.post("/v1/users/me/follow")  # me: never suggested to myself
    a.post("/v1/users/b/follow")  # b: already followed
    for u in (a, b, c):
        u.post("/v1/users/p/follow")
        u.post("/v1/users/q/follow")
        u.post("/v1/users/gone/follow")
    go_private(p)
    me.post("/v1/users/p/follow")  # p: already requested
    q.post("/v1/users/me/block")  # q: blocked me
    gone.delete("/v1/me")  # gone: deleted

    r = me.get("/v1/me/suggestions")
    assert r.status_code == 200
    body = r.json()
    assert body["next_cursor"] is None
    assert [(i["username"], i["reason"], i["followed_by_count"]) for i in body["items"]] == [
        ("t1", "followed by a, b and 2 others you follow", 4),
        ("t2", "followed by a and b", 2),
        ("t3", "followed by a", 1),
    ]
    assert body["items"][0] == {
        "id": t1.id,
        "username": "t1",
        "display_name": "t1",
        "reason": "followed by a, b and 2 others you follow",
        "followed_by_count": 4,
    }
    assert [i["username"] for i in me.get("/v1/me/suggestions", params={"limit": 2}).json()["items"]] == ["t1", "t2"]
    me.post("/v1/users/t1/follow")
    assert [i["username"] for i in me.get("/v1/me/suggestions").json()["items"]] == ["t2", "t3"]


def test_suggestions_tie_break_on_popularity(client: TestClient) -> None:
    me, a = User(client, "me"), User(client, "a")
    User(client, "quiet")
    User(client, "famous")
    fan = User(client, "fan")
    me.post("/v1/users/a/follow")
    a.post("/v1/users/quiet/follow")
    a.post("/v1/users/famous/follow")
    fan.post("/v1/users/famous/follow")
    items = me.get("/v1/me/suggestions").json()["items"]
    assert [i["username"] for i in items] == ["famous", "quiet"]


def test_suggestions_fall_back_to_popular_accounts(client: TestClient) -> None:
    star = User(client, "star")
    User(client, "mid")
    User(client, "low")
    fans = [User(client, f"fan{i}") for i in range(3)]
    for fan in fans:
        fan.post("/v1/users/star/follow")
    fans[0].post("/v1/users/mid/follow")
    fans[1].post("/v1/users/mid/follow")
    fans[2].post("/v1/users/low/follow")
    blocker = User(client, "blocker")
    for fan in fans:
        fan.post("/v1/users/blocker/follow")
    newcomer = User(client, "newcomer")
    blocker.post("/v1/users/newcomer/block")
    items = newcomer.get("/v1/me/suggestions").json()["items"]
    assert [(i["username"], i["reason"], i["followed_by_count"]) for i in items] == [
        ("star", "popular on Glimpse", 0),
        ("mid", "popular on Glimpse", 0),
        ("low", "popular on Glimpse", 0),
    ]
    # The star's own suggestions leave out the star.
    assert "star" not in [i["username"] for i in star.get("/v1/me/suggestions").json()["items"]]


def test_suggestions_need_a_token_and_a_sane_limit(client: TestClient) -> None:
    me = User(client, "me")
    error(client.get("/v1/me/suggestions"), 401)
    error(me.get("/v1/me/suggestions", params={"limit": 0}), 422)
    assert me.get("/v1/me/suggestions").json() == {"items": [], "next_cursor": None}


# -- close friends ------------------------------------------------------------------


def test_close_friends_set_and_read(app: tuple[TestClient, Container]) -> None:
    client, container = app
    alice = User(client, "alice")
    bob, carol = User(client, "bob"), User(client, "carol")
    r = alice.put("/v1/me/close-friends", json={"usernames": ["Carol", "bob", "carol", " BOB "]})
    assert r.status_code == 200 and r.json() == {"usernames": ["carol", "bob"]}
    assert alice.get("/v1/me/close-friends").json() == {
        "items": [
            {"id": bob.id, "username": "bob", "display_name": "bob"},
            {"id": carol.id, "username": "carol", "display_name": "carol"},
        ],
        "next_cursor": None,
    }
    head = container.log.head()
    assert alice.put("/v1/me/close-friends", json={"usernames": ["bob", "carol"]}).status_code == 200
    assert container.log.head() == head  # same set: nothing appended
    alice.put("/v1/me/close-friends", json={"usernames": ["carol"]})
    assert names(alice.get("/v1/me/close-friends")) == ["carol"]
    assert names(bob.get("/v1/me/close-friends")) == []  # each user sees only their own list
    alice.put("/v1/me/close-friends", json={"usernames": []})
    assert names(alice.get("/v1/me/close-friends")) == []


def test_close_friends_bad_input(tmp_path: Path) -> None:
    client, _ = make_client(tmp_path / "data", max_close_friends=2)
    alice = User(client, "alice")
    for n in ("bob", "carol", "dave", "erin"):
        User(client, n)
    err = error(alice.put("/v1/me/close-friends", json={"usernames": ["bob", "ghost"]}), 422, "unknown_usernames")
    assert "ghost" in err["message"] and "bob" not in err["message"]
    err = error(alice.put("/v1/me/close-friends", json={"usernames": ["ghost", "phantom"]}), 422, "unknown_usernames")
    assert "ghost" in err["message"] and "phantom" in err["message"]
    error(
        alice.put("/v1/me/close-friends", json={"usernames": ["bob", "carol", "dave"]}), 422, "too_many_close_friends"
    )
    assert alice.put("/v1/me/close-friends", json={"usernames": ["bob", "carol", "BOB"]}).status_code == 200
    error(alice.put("/v1/me/close-friends", json={"usernames": ["alice"]}), 422, "cannot_close_friend_self")
    error(alice.put("/v1/me/close-friends", json={"usernames": "bob"}), 422, "invalid")
    error(alice.put("/v1/me/close-friends", json={"usernames": [""]}), 422, "invalid")
    error(alice.put("/v1/me/close-friends", json={"usernames": [], "extra": 1}), 422, "invalid")
    error(alice.put("/v1/me/close-friends", json={}), 422, "invalid")
    error(client.put("/v1/me/close-friends", json={"usernames": []}), 401)
    error(client.get("/v1/me/close-friends"), 401)
    assert names(alice.get("/v1/me/close-friends")) == ["bob", "carol"]  # failures changed nothing


def test_close_friends_and_blocks(client: TestClient) -> None:
    alice, bob = User(client, "alice"), User(client, "bob")
    carol = User(client, "carol")
    carol.post("/v1/users/alice/block")
    err = error(alice.put("/v1/me/close-friends", json={"usernames": ["bob", "carol"]}), 422, "unknown_usernames")
    assert "carol" in err["message"] and "bob" not in err["message"]
    alice.put("/v1/me/close-friends", json={"usernames": ["bob"]})
    bob.post("/v1/users/alice/follow")
    bob.delete("/v1/users/alice/follow")  # unfollowing someone who made you a close friend is fine
    assert names(alice.get("/v1/me/close-friends")) == ["bob"]
    alice.post("/v1/users/bob/block")
    assert names(alice.get("/v1/me/close-friends")) == []


# -- idempotency -------------------------------------------------------------------


def test_idempotency_key_replays_the_first_answer(app: tuple[TestClient, Container]) -> None:
    client, container = app
    alice, bob = User(client, "alice"), User(client, "bob")
    go_private(alice)
    key = {"Idempotency-Key": "follow-alice-1"}
    first = bob.post("/v1/users/alice/follow", headers=key)
    assert first.json() == {"state": "requested"}
    alice.post("/v1/me/follow-requests/bob/approve")
    head = container.log.head()
    replay = bob.post("/v1/users/alice/follow", headers=key)
    assert replay.status_code == 200 and replay.json() == {"state": "requested"}
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["X-Glimpse-Consistency"] == first.headers["X-Glimpse-Consistency"]
    assert container.log.head() == head
    err = error(bob.post("/v1/users/carol/follow", headers=key), 422, "idempotency_key_reused")
    assert err["message"]


def test_idempotent_approve_and_block(app: tuple[TestClient, Container]) -> None:
    client, container = app
    alice, bob = User(client, "alice"), User(client, "bob")
    go_private(alice)
    bob.post("/v1/users/alice/follow")
    key = {"Idempotency-Key": "approve-bob"}
    assert alice.post("/v1/me/follow-requests/bob/approve", headers=key).json() == {"state": "approved"}
    head = container.log.head()
    again = alice.post("/v1/me/follow-requests/bob/approve", headers=key)
    assert again.status_code == 200 and again.json() == {"state": "approved"}
    assert container.log.head() == head
    block_key = {"Idempotency-Key": "block-bob"}
    assert alice.post("/v1/users/bob/block", headers=block_key).json() == {"blocked": True}
    alice.delete("/v1/users/bob/block")
    replay = alice.post("/v1/users/bob/block", headers=block_key)
    assert replay.headers["Idempotent-Replayed"] == "true"
    profile(alice, "bob")  # the replay did not block again
    put_key = {"Idempotency-Key": "cf"}
    assert alice.put("/v1/me/close-friends", json={"usernames": ["bob"]}, headers=put_key).status_code == 200
    error(alice.put("/v1/me/close-friends", json={"usernames": []}, headers=put_key), 422, "idempotency_key_reused")
