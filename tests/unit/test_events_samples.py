"""Serialized samples of every version of every event load, forever.

tests/fixtures/events/<Type>/v<N>.json holds an event exactly as version N was
written. Samples are added, never edited or removed: the log keeps old events for
good, so the code must keep reading them. For the current version the sample must
also re-encode byte for byte, so a shape change without a new version (and an
upcaster) fails here rather than in production.

A new event type or version needs its sample: write it with
    .venv/bin/python -m tests.unit.test_events_samples --add-missing
and check the new file in.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from events import accounts, engagement, graph, media, notifications, posts, stories
from events.union import CURRENT_VERSIONS, Event, decode, encode
from events.upcasting import UPCASTERS, UnknownEventType, UnknownEventVersion

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "events"

WHEN = datetime(2025, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)


def _env(event_id: int, aggregate_id: int, actor_id: int | None = 11) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "occurred_at": WHEN,
        "actor_id": actor_id,
        "aggregate_id": aggregate_id,
        "causation_id": 7,
        "correlation_id": 8,
        "idempotency_key": "sample-key",
    }


def current_samples() -> list[Event]:
    """One event of every type in its current version, every field set to something."""
    rendition = media.Rendition(key="renditions/ab/ab12.webp", width=640, height=480, format="webp")
    return [
        accounts.AccountRegistered(
            **_env(100, 100, None), user_id=100, username="ada", password_hash="$argon2id$x", display_name="Ada"
        ),
        accounts.ProfileUpdated(**_env(101, 100), user_id=100, display_name="Ada L.", bio="maths", private=True),
        accounts.AccountDeleted(**_env(102, 100), user_id=100),
        graph.Followed(**_env(103, 11), follower_id=11, followee_id=100),
        graph.Unfollowed(**_env(104, 11), follower_id=11, followee_id=100),
        graph.FollowRequested(**_env(105, 11), follower_id=11, followee_id=100),
        graph.FollowRequestApproved(**_env(106, 11), follower_id=11, followee_id=100),
        graph.FollowRequestDenied(**_env(107, 11), follower_id=11, followee_id=100),
        graph.FollowRequestWithdrawn(**_env(108, 11), follower_id=11, followee_id=100),
        graph.Blocked(**_env(109, 11), blocker_id=11, blocked_id=100),
        graph.Unblocked(**_env(110, 11), blocker_id=11, blocked_id=100),
        graph.CloseFriendsSet(**_env(111, 11), user_id=11, friend_ids=(100, 12)),
        media.MediaUploaded(
            **_env(112, 112),
            media_id=112,
            owner_id=11,
            storage_key="originals/cd/cd34.jpg",
            content_type="image/jpeg",
            kind="image",
            width=4032,
            height=3024,
            size_bytes=2_345_678,
            sha256="cd34" * 16,
        ),
        media.MediaProcessed(
            **_env(113, 112, None),
            media_id=112,
            owner_id=11,
            width=3024,
            height=4032,
            renditions=(rendition,),
            placeholder="data:image/webp;base64,AAAA",
            duration_ms=1500,
        ),
        media.MediaFailed(**_env(114, 112, None), media_id=112, reason="truncated file"),
        posts.PostCreated(
            **_env(115, 115),
            post_id=115,
            author_id=11,
            caption="hi @ada",
            media_ids=(112,),
            audience="followers",
            mentions=(100,),
        ),
        posts.PostDeleted(**_env(116, 115), post_id=115, author_id=11),
        engagement.Liked(**_env(117, 115), post_id=115, user_id=11, post_author_id=12, reaction="love"),
        engagement.Unliked(**_env(118, 115), post_id=115, user_id=11, post_author_id=12),
        engagement.Commented(
            **_env(119, 115),
            comment_id=119,
            post_id=115,
            author_id=11,
            post_author_id=12,
            text="nice @ada",
            mentions=(100,),
        ),
        engagement.CommentDeleted(**_env(120, 115), comment_id=119, post_id=115, deleted_by=12),
        engagement.Bookmarked(**_env(121, 11), post_id=115, user_id=11),
        engagement.Unbookmarked(**_env(122, 11), post_id=115, user_id=11),
        stories.StoryPosted(
            **_env(123, 123),
            story_id=123,
            author_id=11,
            media_id=112,
            audience="close_friends",
            expires_at=WHEN + timedelta(days=1),
        ),
        stories.StoryViewed(**_env(124, 123), story_id=123, author_id=11, viewer_id=100),
        stories.StoryExpired(**_env(125, 123, None), story_id=123, author_id=11),
        notifications.NotificationsRead(**_env(126, 11), user_id=11, up_to_id=125),
    ]


def sample_path(kind: str, version: int) -> Path:
    return SAMPLES / kind / f"v{version}.json"


def all_samples() -> list[tuple[str, int, Path]]:
    found = []
    for path in sorted(SAMPLES.glob("*/v*.json")):
        found.append((path.parent.name, int(path.stem[1:]), path))
    return found


def add_missing() -> list[Path]:
    written = []
    for event in current_samples():
        path = sample_path(event.type, event.version)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode(event) + b"\n")
            written.append(path)
    return written


# -- the tests ----------------------------------------------------------------------


def test_every_event_type_has_a_sample_builder() -> None:
    built = {e.type for e in current_samples()}
    assert built == set(CURRENT_VERSIONS), "add the new event type to current_samples()"


def test_every_version_of_every_event_has_a_sample() -> None:
    have = {(kind, version) for kind, version, _ in all_samples()}
    for kind, current in CURRENT_VERSIONS.items():
        missing = [v for v in range(1, current + 1) if (kind, v) not in have]
        assert not missing, (
            f"no sample of {kind} version(s) {missing}: run `.venv/bin/python -m tests.unit.test_events_samples "
            "--add-missing` for the current version (older ones must have been kept)"
        )


# Fields a later version removes on purpose, with the reason (each upcaster documents it).
DROPPED_ON_PURPOSE = {("AccountDeleted", "username"): "personal data must not outlive the erasure this event starts"}


@pytest.mark.parametrize(("kind", "version", "path"), all_samples(), ids=lambda v: str(v))
def test_every_sample_loads_as_the_current_version(kind: str, version: int, path: Path) -> None:
    data = path.read_bytes().strip()
    event = decode(data)
    assert event.type == kind
    assert event.version == CURRENT_VERSIONS[kind]
    assert decode(encode(event)) == event
    raw = orjson.loads(data)
    for field, value in raw.items():
        if field != "version" and (kind, field) not in DROPPED_ON_PURPOSE:
            # Upcasting adds and converts; it never silently drops what the old event said.
            assert field in type(event).model_fields, f"{kind} v{version}: {field} was dropped"
            assert value is None or getattr(event, field) is not None


@pytest.mark.parametrize(
    ("kind", "version", "path"),
    [s for s in all_samples() if s[1] == CURRENT_VERSIONS.get(s[0])],  # old versions are upcast, not re-encoded
    ids=lambda v: str(v),
)
def test_current_samples_re_encode_byte_for_byte(kind: str, version: int, path: Path) -> None:
    data = path.read_bytes().strip()
    assert encode(decode(data)) == data, (
        f"{kind} v{version} no longer serializes as it did: a changed shape needs a new version and an upcaster"
    )


def test_the_sample_builders_match_the_stored_current_samples() -> None:
    for event in current_samples():
        path = sample_path(event.type, event.version)
        assert path.exists(), f"missing {path}"
        assert decode(path.read_bytes()) == event


def test_every_upcaster_starts_from_a_sampled_version() -> None:
    have = {(kind, version) for kind, version, _ in all_samples()}
    for kind, version in UPCASTERS:
        assert (kind, version) in have, f"an upcaster from {kind} v{version} needs a sample of that version"


def test_a_version_1_like_is_upcast_to_a_plain_like() -> None:
    old = orjson.loads(sample_path("Liked", 1).read_bytes())
    assert old["version"] == 1 and "reaction" not in old
    event = decode(orjson.dumps(old))
    assert isinstance(event, engagement.Liked)
    assert event.version == 2 and event.reaction == "like"
    assert (event.post_id, event.user_id, event.post_author_id) == (
        old["post_id"],
        old["user_id"],
        old["post_author_id"],
    )
    assert event.event_id == old["event_id"]


@pytest.mark.parametrize("version", [3, 99])
def test_a_future_version_is_refused_loudly(version: int) -> None:
    raw = orjson.loads(sample_path("Liked", 2).read_bytes()) | {"version": version}
    with pytest.raises(UnknownEventVersion, match="newer than this code knows"):
        decode(orjson.dumps(raw))


@pytest.mark.parametrize("version", [0, -1, "2", None])
def test_a_version_that_is_not_a_version_is_refused(version: Any) -> None:
    raw = orjson.loads(sample_path("PostCreated", 1).read_bytes()) | {"version": version}
    with pytest.raises(UnknownEventVersion):
        decode(orjson.dumps(raw))


def test_an_unknown_type_is_refused() -> None:
    raw = orjson.loads(sample_path("Liked", 2).read_bytes()) | {"type": "Poked"}
    with pytest.raises(UnknownEventType):
        decode(orjson.dumps(raw))


def test_a_malformed_event_is_refused_after_upcasting() -> None:
    raw = orjson.loads(sample_path("Liked", 2).read_bytes()) | {"reaction": "meh"}
    with pytest.raises(ValueError):
        decode(orjson.dumps(raw))
    raw = orjson.loads(sample_path("Liked", 1).read_bytes())
    raw.pop("post_id")
    with pytest.raises(ValueError):
        decode(orjson.dumps(raw))


if __name__ == "__main__":
    if sys.argv[1:] != ["--add-missing"]:
        sys.exit("usage: python -m tests.unit.test_events_samples --add-missing")
    for p in add_missing():
        print(f"wrote {p}")
