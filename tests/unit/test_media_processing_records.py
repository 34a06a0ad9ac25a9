"""Recording the worker's outcome: decisions, the media projection, the public view, posts' use."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from commands.context import Meta
from commands.errors import Invalid
from commands.media import MAX_REASON_CHARS, ProcessedFacts, check_usable_media, decide_failed, decide_processed
from events.accounts import AccountDeleted
from events.media import MediaFailed, MediaProcessed, Rendition
from events.union import decode, encode
from infra.media.collector import released_keys
from projections.media import MEDIA, MEDIA_BY_KEY, media_view, rendition_key
from projections.media import PROJECTION as MEDIA_PROJECTION
from tests.unit.posts_world import NOW, World, envelope

WEBP = Rendition(key=rendition_key("c" * 64, "webp"), width=640, height=480, format="webp")
JPEG = Rendition(key=rendition_key("d" * 64, "jpeg"), width=640, height=480, format="jpeg")
FACTS = ProcessedFacts(
    media_id=77, width=640, height=480, renditions=(WEBP, JPEG), placeholder="data:image/webp;base64,AA"
)


def meta() -> Meta:
    ids = itertools.count(9000)
    return Meta(actor_id=None, now=NOW, new_id=lambda: next(ids))


def row(status: str, **extra: Any) -> dict[str, Any]:
    return {"media_id": 77, "owner_id": 7, "status": status, "kind": "image", "width": 1, "height": 1} | extra


# -- decisions --------------------------------------------------------------------------------


def test_processed_is_recorded_while_processing_and_round_trips_through_the_union() -> None:
    d = decide_processed(row("processing"), FACTS, meta())
    [event] = d.events
    assert isinstance(event, MediaProcessed)
    assert (event.media_id, event.aggregate_id, event.actor_id) == (77, 77, None)
    assert event.renditions == (WEBP, JPEG) and event.duration_ms is None
    assert d.body == {"id": "77", "recorded": True}
    assert decode(encode(event)) == event


@pytest.mark.parametrize("status", ["ready", "failed"])
def test_a_second_outcome_is_not_recorded(status: str) -> None:
    assert decide_processed(row(status), FACTS, meta()).events == []
    assert decide_failed(row(status), 77, "late", meta()).events == []


def test_an_outcome_for_a_row_not_in_this_read_model_is_recorded_for_the_projection_to_judge() -> None:
    assert len(decide_processed(None, FACTS, meta()).events) == 1
    assert len(decide_failed(None, 77, "bad", meta()).events) == 1


def test_failed_keeps_a_readable_bounded_reason() -> None:
    [event] = decide_failed(row("processing"), 77, "  image data\nis   truncated ", meta()).events
    assert isinstance(event, MediaFailed) and event.reason == "image data is truncated"
    [long] = decide_failed(row("processing"), 77, "x" * 5000, meta()).events
    assert len(long.reason) == MAX_REASON_CHARS  # type: ignore[union-attr]
    [empty] = decide_failed(row("processing"), 77, "   ", meta()).events
    assert empty.reason  # type: ignore[union-attr]
    assert decode(encode(event)) == event


def test_processed_needs_renditions() -> None:
    with pytest.raises(Invalid):
        decide_processed(row("processing"), ProcessedFacts(77, 1, 1, (), "p"), meta())


def test_posts_take_media_still_processing_but_never_failed_media() -> None:
    rows = [row("processing", media_id=1), row("ready", media_id=2)]
    assert [r["media_id"] for r in check_usable_media(7, [2, 1], rows)] == [2, 1]
    with pytest.raises(Invalid) as err:
        check_usable_media(7, [3], [row("failed", media_id=3, reason="image data is truncated")])
    assert err.value.code == "media_failed" and "truncated" in err.value.message
    with pytest.raises(Invalid) as err:
        check_usable_media(8, [1], rows)
    assert err.value.code == "unknown_media"


# -- the projection ----------------------------------------------------------------------------


def processed(w: World, media_id: int, *renditions: Rendition, placeholder: str = "data:x") -> MediaProcessed:
    event = MediaProcessed(
        **envelope(w.next_id(), media_id, None),
        media_id=media_id,
        owner_id=None,
        width=640,
        height=480,
        renditions=renditions or (WEBP, JPEG),
        placeholder=placeholder,
    )
    w.apply(event)
    return event


def failed(w: World, media_id: int, reason: str = "image data is truncated") -> MediaFailed:
    event = MediaFailed(**envelope(w.next_id(), media_id, None), media_id=media_id, reason=reason)
    w.apply(event)
    return event


def test_upload_is_processing_then_ready_with_servable_renditions() -> None:
    w = World()
    alice = w.user("alice")
    m = w.media(alice, ready=False)
    media = w.read.get(MEDIA.name, {"media_id": m})
    assert media is not None and media["status"] == "processing"
    assert media_view(media)["renditions"] == [] and media_view(media)["placeholder"] is None
    assert w.read.count(MEDIA_BY_KEY.name, {"storage_key": WEBP.key}) == 0
    processed(w, m)
    media = w.read.get(MEDIA.name, {"media_id": m})
    assert media is not None
    view = media_view(media)
    assert (view["status"], view["width"], view["height"]) == ("ready", 640, 480)
    assert view["renditions"] == [
        {"url": "/media/" + "c" * 64 + ".webp", "width": 640, "height": 480, "format": "webp"},
        {"url": "/media/" + "d" * 64 + ".jpg", "width": 640, "height": 480, "format": "jpeg"},
    ]
    assert view["placeholder"] == "data:x" and "reason" not in view
    by_key = w.read.scan(MEDIA_BY_KEY.name, {"storage_key": JPEG.key})
    assert [(r["media_id"], r["content_type"], r["sha256"]) for r in by_key] == [(m, "image/jpeg", "d" * 64)]


def test_failed_shows_the_reason_and_releases_the_refused_original() -> None:
    w = World()
    m = w.media(w.user("alice"), ready=False)
    original = w.read.get(MEDIA.name, {"media_id": m})["storage_key"]  # type: ignore[index]
    event = MediaFailed(**envelope(w.next_id(), m, None), media_id=m, reason="image data is truncated")
    ops = MEDIA_PROJECTION.project(event, w.read)
    assert released_keys(event, MEDIA_PROJECTION.name, ops) == [original]
    w.apply(event)
    media = w.read.get(MEDIA.name, {"media_id": m})
    assert media is not None
    view = media_view(media)
    assert (view["status"], view["reason"], view["renditions"]) == ("failed", "image data is truncated", [])
    assert w.read.count(MEDIA_BY_KEY.name, {"storage_key": original}) == 0


def test_the_first_outcome_wins_and_redelivery_changes_nothing() -> None:
    w = World()
    m = w.media(w.user("alice"), ready=False)
    first = processed(w, m)
    before = w.snapshot()
    w.apply(first)  # redelivered
    failed(w, m)  # late
    processed(w, m, WEBP, placeholder="other")  # a second worker's answer
    upload = next(e for e in w.events if getattr(e, "media_id", None) == m and e.type == "MediaUploaded")
    w.apply(upload)  # the upload redelivered must not reset the row
    assert w.snapshot() == before


def test_a_late_outcome_for_erased_media_writes_nothing() -> None:
    w = World()
    alice = w.user("alice")
    m = w.media(alice, ready=False)
    w.delete_account(alice)
    before = w.snapshot()
    processed(w, m)
    failed(w, m)
    assert w.snapshot() == before
    assert w.read.count(MEDIA_BY_KEY.name, {"storage_key": WEBP.key}) == 0


def test_erasure_releases_originals_and_renditions() -> None:
    w = World()
    alice = w.user("alice")
    m = w.media(alice, ready=False)
    processed(w, m)
    event = AccountDeleted(**envelope(w.next_id(), alice, alice), user_id=alice)
    ops = MEDIA_PROJECTION.project(event, w.read)
    keys = released_keys(event, MEDIA_PROJECTION.name, ops)
    media = w.read.get(MEDIA.name, {"media_id": m})
    assert media is not None
    assert sorted(keys) == sorted([media["storage_key"], WEBP.key, JPEG.key])
    w.read.apply(ops)
    assert w.read.scan(MEDIA_BY_KEY.name, {}) == []


def test_the_owner_sees_unready_media_in_a_post_and_others_only_ready_media() -> None:
    from projections.privacy import Privacy
    from query_api.post_views import post_views

    w = World()
    alice, bob = w.user("alice"), w.user("bob")
    ready, waiting, broken = w.media(alice), w.media(alice, ready=False), w.media(alice, ready=False)
    failed(w, broken)
    pid = w.post(alice, media=(waiting, ready, broken))
    rows = w.read.get_many("posts", [{"post_id": pid}])
    [mine] = post_views(w.read, Privacy(w.read), rows, alice)
    assert [(m["id"], m["status"]) for m in mine["media"]] == [
        (str(waiting), "processing"),
        (str(ready), "ready"),
        (str(broken), "failed"),
    ]
    for viewer in (bob, None):
        [theirs] = post_views(w.read, Privacy(w.read), rows, viewer)
        assert [m["id"] for m in theirs["media"]] == [str(ready)]
    processed(w, waiting)
    [theirs] = post_views(w.read, Privacy(w.read), rows, bob)
    assert [m["id"] for m in theirs["media"]] == [str(waiting), str(ready)]
