"""The graph's pure decisions: follow, unfollow, requests, blocks, close friends."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from commands.context import Meta
from commands.errors import Invalid, NotFound
from commands.graph import (
    Candidate,
    Pair,
    decide_approve,
    decide_block,
    decide_close_friends,
    decide_deny,
    decide_follow,
    decide_unblock,
    decide_unfollow,
    dedupe_usernames,
)
from events.graph import (
    Blocked,
    CloseFriendsSet,
    Followed,
    FollowRequestApproved,
    FollowRequestDenied,
    FollowRequested,
    FollowRequestWithdrawn,
    Unblocked,
    Unfollowed,
)

ME, OTHER = 10, 20


def meta(actor: int = ME) -> Meta:
    ids = itertools.count(1000)
    return Meta(actor_id=actor, now=datetime(2025, 1, 1, tzinfo=UTC), new_id=lambda: next(ids), idempotency_key="k")


def account(user_id: int = OTHER, private: bool = False) -> dict[str, Any]:
    return {"user_id": user_id, "username": f"u{user_id}", "display_name": f"U{user_id}", "private": private}


def pair(private: bool = False, **flags: bool) -> Pair:
    return Pair(ME, account(OTHER, private), **flags)


def shapes(decision: Any) -> list[tuple[str, int | None, int | None]]:
    """(type, follower/blocker, followee/blocked) of each event, in order."""
    out = []
    for e in decision.events:
        a = getattr(e, "follower_id", None) or getattr(e, "blocker_id", None)
        b = getattr(e, "followee_id", None) or getattr(e, "blocked_id", None)
        out.append((e.type, a, b))
    return out


# -- follow -------------------------------------------------------------------


def test_follow_public_account_emits_followed_keyed_by_follower() -> None:
    d = decide_follow(pair(), meta())
    assert d.body == {"state": "following"}
    assert shapes(d) == [("Followed", ME, OTHER)]
    event = d.events[0]
    assert isinstance(event, Followed)
    assert event.aggregate_id == ME and event.actor_id == ME and event.idempotency_key == "k"


def test_follow_private_account_asks() -> None:
    d = decide_follow(pair(private=True), meta())
    assert d.body == {"state": "requested"}
    assert isinstance(d.events[0], FollowRequested)
    assert shapes(d) == [("FollowRequested", ME, OTHER)]


@pytest.mark.parametrize(
    ("flags", "state"),
    [({"following": True}, "following"), ({"requested": True}, "requested")],
)
def test_follow_again_answers_the_same_without_events(flags: dict[str, bool], state: str) -> None:
    for private in (False, True):
        d = decide_follow(pair(private=private, **flags), meta())
        assert d.events == [] and d.body == {"state": state}


def test_follow_self_is_invalid() -> None:
    with pytest.raises(Invalid) as err:
        decide_follow(Pair(ME, account(ME)), meta())
    assert err.value.status == 422


@pytest.mark.parametrize("flags", [{"i_block": True}, {"blocks_me": True}])
def test_follow_across_a_block_is_not_found(flags: dict[str, bool]) -> None:
    with pytest.raises(NotFound):
        decide_follow(pair(**flags), meta())


def test_follow_missing_user_is_not_found() -> None:
    with pytest.raises(NotFound):
        decide_follow(Pair(ME, None), meta())


# -- unfollow -----------------------------------------------------------------


def test_unfollow_emits_unfollowed() -> None:
    d = decide_unfollow(pair(following=True), meta())
    assert isinstance(d.events[0], Unfollowed)
    assert shapes(d) == [("Unfollowed", ME, OTHER)] and d.body == {"state": "none"}


def test_unfollow_withdraws_a_pending_request() -> None:
    d = decide_unfollow(pair(private=True, requested=True), meta())
    assert isinstance(d.events[0], FollowRequestWithdrawn)
    assert shapes(d) == [("FollowRequestWithdrawn", ME, OTHER)]


def test_unfollow_with_nothing_to_undo_is_idempotent() -> None:
    d = decide_unfollow(pair(followed_by=True), meta())
    assert d.events == [] and d.body == {"state": "none"}


def test_unfollow_self_missing_or_blocked() -> None:
    with pytest.raises(Invalid):
        decide_unfollow(Pair(ME, account(ME)), meta())
    with pytest.raises(NotFound):
        decide_unfollow(Pair(ME, None), meta())
    with pytest.raises(NotFound):
        decide_unfollow(pair(blocks_me=True), meta())


# -- requests -----------------------------------------------------------------


def test_approve_emits_approved_then_followed_for_the_requester() -> None:
    d = decide_approve(pair(requested_by=True), meta())
    assert d.body == {"state": "approved"}
    assert shapes(d) == [("FollowRequestApproved", OTHER, ME), ("Followed", OTHER, ME)]
    assert isinstance(d.events[0], FollowRequestApproved)
    assert all(e.aggregate_id == OTHER and e.actor_id == ME for e in d.events)


def test_deny_emits_denied() -> None:
    d = decide_deny(pair(requested_by=True), meta())
    assert d.body == {"state": "denied"}
    assert isinstance(d.events[0], FollowRequestDenied)
    assert shapes(d) == [("FollowRequestDenied", OTHER, ME)]


@pytest.mark.parametrize("decide", [decide_approve, decide_deny])
@pytest.mark.parametrize(
    "p",
    [
        Pair(ME, None),  # the requester deleted their account
        Pair(ME, account(ME)),
        Pair(ME, account(OTHER)),  # no request at all
        Pair(ME, account(OTHER), requested=True),  # a request the other way round
        Pair(ME, account(OTHER), requested_by=True, blocks_me=True),  # the requester has since blocked me
        Pair(ME, account(OTHER), requested_by=True, i_block=True),
    ],
)
def test_answering_without_a_pending_request_is_not_found(decide: Any, p: Pair) -> None:
    with pytest.raises(NotFound):
        decide(p, meta())


# -- blocks -------------------------------------------------------------------


def test_block_alone() -> None:
    d = decide_block(pair(), meta())
    assert d.body == {"blocked": True}
    assert isinstance(d.events[0], Blocked)
    assert shapes(d) == [("Blocked", ME, OTHER)]


def test_block_undoes_every_follow_and_request_both_ways() -> None:
    d = decide_block(pair(following=True, followed_by=True, requested=True, requested_by=True), meta())
    assert shapes(d) == [
        ("Blocked", ME, OTHER),
        ("Unfollowed", ME, OTHER),
        ("Unfollowed", OTHER, ME),
        ("FollowRequestWithdrawn", ME, OTHER),
        ("FollowRequestDenied", OTHER, ME),
    ]
    # Follow-pair events stay keyed by their follower.
    assert [e.aggregate_id for e in d.events] == [ME, ME, OTHER, ME, OTHER]
    assert len({e.event_id for e in d.events}) == 5


def test_block_again_is_idempotent_even_when_blocked_back() -> None:
    for p in (pair(i_block=True), pair(i_block=True, blocks_me=True)):
        d = decide_block(p, meta())
        assert d.events == [] and d.body == {"blocked": True}


def test_block_someone_who_blocked_me_looks_like_a_missing_user() -> None:
    with pytest.raises(NotFound):
        decide_block(pair(blocks_me=True), meta())


def test_block_self_or_missing() -> None:
    with pytest.raises(Invalid):
        decide_block(Pair(ME, account(ME)), meta())
    with pytest.raises(NotFound):
        decide_block(Pair(ME, None), meta())


def test_unblock() -> None:
    d = decide_unblock(pair(i_block=True, blocks_me=True), meta())
    assert isinstance(d.events[0], Unblocked)
    assert shapes(d) == [("Unblocked", ME, OTHER)] and d.body == {"blocked": False}


def test_unblock_without_a_block_is_idempotent() -> None:
    d = decide_unblock(pair(), meta())
    assert d.events == [] and d.body == {"blocked": False}


def test_unblock_self_missing_or_only_blocked_by_them() -> None:
    with pytest.raises(Invalid):
        decide_unblock(Pair(ME, account(ME)), meta())
    with pytest.raises(NotFound):
        decide_unblock(Pair(ME, None), meta())
    with pytest.raises(NotFound):
        decide_unblock(pair(blocks_me=True), meta())


# -- close friends --------------------------------------------------------------


def test_dedupe_keeps_first_spelling_order_and_normalises() -> None:
    assert dedupe_usernames(["Bob", "alice", " bob ", "ALICE", "carol"]) == ["bob", "alice", "carol"]


def test_close_friends_set() -> None:
    d = decide_close_friends(ME, [Candidate("a", 1), Candidate("b", 2)], set(), 10, meta())
    event = d.events[0]
    assert isinstance(event, CloseFriendsSet)
    assert event.user_id == ME and event.friend_ids == (1, 2) and event.aggregate_id == ME
    assert d.body == {"usernames": ["a", "b"]}


def test_close_friends_unchanged_appends_nothing() -> None:
    d = decide_close_friends(ME, [Candidate("b", 2), Candidate("a", 1)], {1, 2}, 10, meta())
    assert d.events == [] and d.body == {"usernames": ["b", "a"]}


def test_close_friends_emptied() -> None:
    d = decide_close_friends(ME, [], {1}, 10, meta())
    event = d.events[0]
    assert isinstance(event, CloseFriendsSet) and event.friend_ids == ()


def test_close_friends_unknown_names_are_named() -> None:
    with pytest.raises(Invalid) as err:
        decide_close_friends(
            ME, [Candidate("a", 1), Candidate("ghost", None), Candidate("gone", None)], set(), 10, meta()
        )
    assert err.value.code == "unknown_usernames"
    assert "ghost" in err.value.message and "gone" in err.value.message and " a" not in err.value.message


def test_close_friends_limits() -> None:
    with pytest.raises(Invalid) as err:
        decide_close_friends(ME, [Candidate(str(i), i) for i in range(3)], set(), 2, meta())
    assert err.value.code == "too_many_close_friends"
    decide_close_friends(ME, [Candidate(str(i), i) for i in range(2)], set(), 2, meta())
    with pytest.raises(Invalid) as err:
        decide_close_friends(ME, [Candidate("me", ME)], set(), 2, meta())
    assert err.value.code == "cannot_close_friend_self"
