"""The notifications projection and the viewer's reading of it, over the in-memory read model."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from events.graph import FollowRequestApproved, FollowRequestDenied
from events.notifications import NotificationsRead
from projections.notifications.tables import (
    NOTIFICATION_ACTORS,
    NOTIFICATION_COMMENTS,
    NOTIFICATION_FEED,
    NOTIFICATION_GROUPS,
    NOTIFICATION_RECENT,
)
from projections.notifications.views import Reader
from projections.store import Row
from tests.unit.stories_world import World


def groups(w: World, user: int) -> dict[str, Row]:
    return {str(r["group_key"]): r for r in w.read.scan(NOTIFICATION_GROUPS.name, {"user_id": user})}


def listing(w: World, user: int) -> list[dict[str, Any]]:
    return [item for _, item in Reader.load(w.read, user).newest_first()]


def names(item: dict[str, Any]) -> list[str]:
    return [a["username"] for a in item["actors"]]


def test_likes_group_per_post_with_count_and_the_three_newest_actors() -> None:
    w = World()
    alice = w.user("alice")
    likers = [w.user(f"u{i}") for i in range(5)]
    post = w.post(alice)
    other = w.post(alice)
    events = [w.like(u, post) for u in likers]
    w.like(likers[0], other)

    g = groups(w, alice)
    assert set(g) == {f"like:post:{post.post_id}", f"like:post:{other.post_id}"}
    row = g[f"like:post:{post.post_id}"]
    assert row["count"] == 5 and row["latest_id"] == events[-1].event_id

    items = listing(w, alice)
    assert [i["target"] for i in items] == [
        {"type": "post", "id": str(other.post_id)},
        {"type": "post", "id": str(post.post_id)},
    ]
    likes = items[1]
    assert likes["type"] == "like" and likes["count"] == 5
    assert names(likes) == ["u4", "u3", "u2"]
    assert likes["id"] == str(events[-1].event_id) and likes["read"] is False
    assert likes["created_at"] == events[-1].occurred_at.isoformat()


def test_duplicate_delivery_changes_nothing() -> None:
    w = World()
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    post = w.post(alice)
    first = w.like(bob, post)
    second = w.like(carol, post)
    before = (groups(w, alice), w.read.scan(NOTIFICATION_FEED.name, {"user_id": alice}))
    w.redeliver(first)
    w.redeliver(second)
    w.redeliver(first)
    assert (groups(w, alice), w.read.scan(NOTIFICATION_FEED.name, {"user_id": alice})) == before
    assert groups(w, alice)[f"like:post:{post.post_id}"]["count"] == 2


def test_a_late_redelivery_of_older_activity_does_not_move_the_group_back() -> None:
    w = World()
    alice, bob = w.user("alice"), w.user("bob")
    post = w.post(alice)
    older = w.comment(bob, post)
    newer = w.comment(bob, post)
    w.redeliver(older)
    row = groups(w, alice)[f"comment:post:{post.post_id}"]
    assert row["count"] == 1 and row["latest_id"] == newer.event_id
    [recent] = w.read.scan(NOTIFICATION_RECENT.name, {"user_id": alice, "group_key": row["group_key"]})
    assert recent["activity_id"] == newer.event_id


def test_never_notify_yourself() -> None:
    w = World()
    alice = w.user("alice")
    post = w.post(alice, mentions=(alice,))
    w.like(alice, post)
    w.comment(alice, post, mentions=(alice,))
    assert groups(w, alice) == {}


def test_unlike_takes_the_actor_out_and_the_group_goes_at_zero() -> None:
    w = World()
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    post = w.post(alice)
    bobs = w.like(bob, post)
    w.like(carol, post)
    unliked = w.unlike(carol, post)
    w.redeliver(unliked)

    row = groups(w, alice)[f"like:post:{post.post_id}"]
    assert row["count"] == 1
    assert row["latest_id"] == bobs.event_id  # falls back to the newest remaining activity
    assert [r["latest_id"] for r in w.read.scan(NOTIFICATION_FEED.name, {"user_id": alice})] == [bobs.event_id]
    assert names(listing(w, alice)[0]) == ["bob"]

    w.unlike(bob, post)
    assert groups(w, alice) == {}
    assert w.read.scan(NOTIFICATION_FEED.name, {"user_id": alice}) == []
    assert w.read.scan(NOTIFICATION_ACTORS.name, {"user_id": alice}) == []
    assert w.read.scan(NOTIFICATION_RECENT.name, {"user_id": alice}) == []


def test_new_activity_moves_an_old_group_to_the_top() -> None:
    w = World()
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    old, new = w.post(alice), w.post(alice)
    w.like(bob, old)
    w.like(bob, new)
    assert [i["target"]["id"] for i in listing(w, alice)] == [str(new.post_id), str(old.post_id)]
    w.like(carol, old)
    assert [i["target"]["id"] for i in listing(w, alice)] == [str(old.post_id), str(new.post_id)]
    assert len(w.read.scan(NOTIFICATION_FEED.name, {"user_id": alice})) == 2


def test_comments_group_distinct_commenters_and_deletion_of_the_last_comment_takes_one_out() -> None:
    w = World()
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    post = w.post(alice)
    first = w.comment(bob, post)
    w.comment(bob, post)
    w.comment(carol, post)
    key = f"comment:post:{post.post_id}"
    assert groups(w, alice)[key]["count"] == 2

    w.delete_comment(first, bob)  # bob still has another comment there
    assert groups(w, alice)[key]["count"] == 2
    w.delete_comment(w.comment(carol, post), carol)  # carol too
    assert groups(w, alice)[key]["count"] == 2


def test_comment_deletion_of_the_only_comment_takes_the_commenter_out() -> None:
    w = World()
    alice, bob = w.user("alice"), w.user("bob")
    post = w.post(alice)
    comment = w.comment(bob, post)
    w.delete_comment(comment, alice)
    assert groups(w, alice) == {}
    assert w.read.get(NOTIFICATION_COMMENTS.name, {"comment_id": comment.comment_id}) is None


def test_mentions_in_posts_and_comments() -> None:
    w = World()
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    post = w.post(alice, mentions=(bob, bob, carol))
    comment = w.comment(bob, post, mentions=(carol, alice))

    assert set(groups(w, bob)) == {f"mention:post:{post.post_id}"}
    assert set(groups(w, carol)) == {f"mention:post:{post.post_id}", f"mention:comment:{comment.comment_id}"}
    # The post's author hears of the comment, not also of the mention in it.
    assert set(groups(w, alice)) == {f"comment:post:{post.post_id}"}
    [newest, older] = listing(w, carol)
    assert newest["type"] == "mention" and newest["target"] == {"type": "comment", "id": str(comment.comment_id)}
    assert older["target"] == {"type": "post", "id": str(post.post_id)}

    w.delete_comment(comment, bob)
    assert set(groups(w, carol)) == {f"mention:post:{post.post_id}"}


def test_post_deletion_drops_every_group_about_it() -> None:
    w = World()
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    post = w.post(alice, mentions=(bob,))
    keep = w.post(alice)
    w.like(bob, post)
    w.like(bob, keep)
    w.comment(bob, post, mentions=(carol,))
    w.delete_post(post)
    assert set(groups(w, alice)) == {f"like:post:{keep.post_id}"}
    assert groups(w, bob) == {} and groups(w, carol) == {}
    assert w.read.find(NOTIFICATION_COMMENTS.name, {"post_id": post.post_id}) == []
    assert len(w.read.scan(NOTIFICATION_FEED.name, {"user_id": alice})) == 1


def test_follow_and_follow_request_groups() -> None:
    w = World()
    alice, bob, carol, dave = w.user("alice", private=True), w.user("bob"), w.user("carol"), w.user("dave")
    w.request(bob, alice)
    w.request(carol, alice)
    w.request(dave, alice)
    assert groups(w, alice)["follow_request"]["count"] == 3
    w.apply(FollowRequestApproved(**w.env(bob, alice), follower_id=bob, followee_id=alice))
    w.follow(bob, alice)
    w.apply(FollowRequestDenied(**w.env(carol, alice), follower_id=carol, followee_id=alice))
    g = groups(w, alice)
    assert g["follow_request"]["count"] == 1 and g["follow"]["count"] == 1
    [follow, request] = listing(w, alice)
    assert follow == follow | {"type": "follow", "target": None, "count": 1}
    assert names(follow) == ["bob"] and names(request) == ["dave"]
    w.unfollow(bob, alice)
    assert set(groups(w, alice)) == {"follow_request"}


def test_read_watermark_only_moves_forward() -> None:
    w = World()
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    post = w.post(alice)
    first = w.like(bob, post)
    w.follow(carol, alice)
    read_all = NotificationsRead(**w.env(alice, alice), user_id=alice, up_to_id=first.event_id)
    w.apply(read_all)
    assert [i["read"] for i in listing(w, alice)] == [False, True]
    w.apply(NotificationsRead(**w.env(alice, alice), user_id=alice, up_to_id=first.event_id - 1))
    assert [i["read"] for i in listing(w, alice)] == [False, True]


def test_account_deletion_drops_the_list_and_every_appearance() -> None:
    w = World()
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    post = w.post(alice)
    bobs_post = w.post(bob)
    w.like(carol, post)
    w.like(bob, post)
    w.follow(bob, alice)
    w.like(alice, bobs_post)
    w.comment(bob, post, mentions=(carol,))

    w.delete_account(bob)
    g = groups(w, alice)
    assert set(g) == {f"like:post:{post.post_id}"} and g[f"like:post:{post.post_id}"]["count"] == 1
    assert names(listing(w, alice)[0]) == ["carol"]
    assert groups(w, bob) == {} and groups(w, carol) == {}
    assert w.read.find(NOTIFICATION_ACTORS.name, {"actor_id": bob}) == []
    assert w.read.scan(NOTIFICATION_FEED.name, {"user_id": bob}) == []


def test_events_after_an_account_is_gone_notify_nobody() -> None:
    w = World()
    alice, bob = w.user("alice"), w.user("bob")
    post = w.post(alice)
    w.delete_account(bob)
    w.like(bob, post)  # raced the deletion on another stream
    assert groups(w, alice) == {}


def test_reading_leaves_out_actors_blocked_either_way_and_adjusts_the_count() -> None:
    w = World()
    alice, bob, carol, dave = w.user("alice"), w.user("bob"), w.user("carol"), w.user("dave")
    post = w.post(alice)
    for u in (bob, carol, dave):
        w.like(u, post)
    w.block(alice, dave)  # alice blocked dave
    w.block(carol, alice)  # carol blocked alice
    [likes] = listing(w, alice)
    assert likes["count"] == 1 and names(likes) == ["bob"]
    w.block(alice, bob)
    assert listing(w, alice) == []  # no visible actor left: the group disappears


def test_reading_drops_targets_the_viewer_can_no_longer_see() -> None:
    w = World()
    alice, bob, carol = w.user("alice", private=True), w.user("bob"), w.user("carol")
    w.follow(bob, alice)
    post = w.post(alice, audience="followers", mentions=(bob,))
    w.comment(carol, w.post(carol), mentions=(bob,))
    assert [i["target"]["type"] for i in listing(w, bob)] == ["comment", "post"]
    w.unfollow(bob, alice)  # alice is private: her post is no longer for bob
    assert [i["target"]["type"] for i in listing(w, bob)] == ["comment"]
    w.delete_post(post)
    w.block(bob, carol)
    assert listing(w, bob) == []


@given(st.lists(st.tuples(st.integers(0, 4), st.booleans(), st.booleans()), max_size=30))
def test_like_group_count_is_the_number_of_current_likers_whatever_the_redelivery(
    steps: list[tuple[int, bool, bool]],
) -> None:
    w = World()
    alice = w.user("alice")
    users = [w.user(f"u{i}") for i in range(5)]
    post = w.post(alice)
    liking: set[int] = set()
    for who, like, again in steps:
        user = users[who]
        if like and user not in liking:
            event = w.like(user, post)
            liking.add(user)
        elif not like and user in liking:
            event = w.unlike(user, post)
            liking.discard(user)
        else:
            continue
        if again:
            w.redeliver(event)
    row = groups(w, alice).get(f"like:post:{post.post_id}")
    assert (row["count"] if row else 0) == len(liking)
    actors = {int(r["actor_id"]) for r in w.read.scan(NOTIFICATION_ACTORS.name, {"user_id": alice})}
    recent = {int(r["actor_id"]) for r in w.read.scan(NOTIFICATION_RECENT.name, {"user_id": alice})}
    assert actors == recent == liking
    assert len(w.read.scan(NOTIFICATION_FEED.name, {"user_id": alice})) == (1 if liking else 0)
