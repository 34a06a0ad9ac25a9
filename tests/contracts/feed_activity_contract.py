"""The contract of every `ActivityStore` (projections/feed/activity.py): subclass it with a
`store` fixture giving a fresh, empty store."""

from __future__ import annotations

from projections.feed.activity import ActivityStore


class ActivityStoreContract:
    def test_a_user_never_seen_is_not_active_and_gets_marked(self, store: ActivityStore) -> None:
        assert store.active_among([1, 2], since_ms=0) == []
        assert store.record_read(1, 5_000) is True

    def test_a_first_read_asks_for_a_rebuild_once(self, store: ActivityStore) -> None:
        assert store.record_read(7, 1_000) is True
        store.clear_missed(7)
        assert store.record_read(7, 2_000) is False

    def test_the_mark_stays_until_cleared(self, store: ActivityStore) -> None:
        assert store.record_read(7, 1_000) is True
        assert store.record_read(7, 1_500) is True  # the rebuild failed: the next read tries again
        store.clear_missed(7)
        assert store.record_read(7, 2_000) is False

    def test_readers_within_the_window_are_active_in_the_given_order(self, store: ActivityStore) -> None:
        for user, at in ((3, 1_000), (1, 2_000), (2, 500)):
            store.record_read(user, at)
            store.clear_missed(user)
        assert store.active_among([1, 2, 3, 4], since_ms=1_000) == [1, 3]
        assert store.record_read(1, 2_500) is False
        assert store.record_read(3, 2_500) is False
        assert store.record_read(2, 2_500) is True  # skipped above: read before the window
        assert store.record_read(4, 2_500) is True  # never seen

    def test_the_last_read_counts(self, store: ActivityStore) -> None:
        store.record_read(1, 9_000)
        store.record_read(1, 100)  # a backdated read (or an older one landing late) replaces it
        store.clear_missed(1)
        assert store.active_among([1], since_ms=1_000) == []
        assert store.active_among([1], since_ms=100) == [1]

    def test_a_mark_after_a_clear_asks_again(self, store: ActivityStore) -> None:
        store.record_read(1, 1_000)
        store.clear_missed(1)
        assert store.active_among([1], since_ms=5_000) == []
        assert store.record_read(1, 6_000) is True

    def test_big_chunks(self, store: ActivityStore) -> None:
        users = list(range(10_000, 11_500))
        for u in users[::2]:
            store.record_read(u, 1_000)
        assert store.active_among(users, since_ms=1_000) == users[::2]
        assert all(store.record_read(u, 2_000) for u in users[1::2][:50])
