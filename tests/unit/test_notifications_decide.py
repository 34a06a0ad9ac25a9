"""Pure notification decisions: mark read."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from commands.context import Meta
from commands.notifications import decide_mark_read
from events.notifications import NotificationsRead

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def meta() -> Meta:
    ids = itertools.count(500)
    return Meta(actor_id=7, now=NOW, new_id=lambda: next(ids))


def test_mark_read_moves_the_watermark_to_the_newest_notification() -> None:
    decision = decide_mark_read(7, newest_id=120, watermark=100, meta=meta())
    assert decision.status == 204
    [event] = decision.events
    assert isinstance(event, NotificationsRead)
    assert (event.user_id, event.up_to_id, event.aggregate_id) == (7, 120, 7)


def test_mark_read_with_nothing_new_appends_nothing() -> None:
    assert decide_mark_read(7, newest_id=None, watermark=0, meta=meta()).events == []
    assert decide_mark_read(7, newest_id=100, watermark=100, meta=meta()).events == []
    assert decide_mark_read(7, newest_id=90, watermark=100, meta=meta()).status == 204
