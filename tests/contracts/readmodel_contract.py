"""Behaviour every read-model adapter must share; subclass per adapter with `make()`."""

from __future__ import annotations

from typing import Any

import pytest

from projections.store import (
    CounterRef,
    Delete,
    Gets,
    Increment,
    Patch,
    Put,
    Scan,
    SetAdd,
    SetRemove,
    Table,
    get_each,
    scan_each,
)

FEED = Table("t_feed", partition=("user_id",), clustering=("post_id",), values=("author_id",))
DOCS = Table(
    "t_docs",
    partition=("doc_id",),
    values=("title", "tags", "meta", "flag"),
    types={"title": str, "tags": list, "meta": dict, "flag": bool},
    indexes=(("title",),),
)
COUNTS = Table("t_counts", partition=("user_id",), values=("n", "m"))
PAIRS = Table("t_pairs", partition=("a",), clustering=("b", "c"), values=("v",))
TABLES = (FEED, DOCS, COUNTS, PAIRS)


class ReadModelContract:
    def make(self) -> Any:
        raise NotImplementedError

    @pytest.fixture
    def rm(self) -> Any:
        store = self.make()
        store.create_schema()
        return store

    def test_put_then_get_round_trips_types(self, rm: Any) -> None:
        rm.apply([Put("t_docs", {"doc_id": 1, "title": "hi", "tags": [1, "x"], "meta": {"k": [2]}, "flag": True})])
        assert rm.get("t_docs", {"doc_id": 1}) == {
            "doc_id": 1,
            "title": "hi",
            "tags": [1, "x"],
            "meta": {"k": [2]},
            "flag": True,
        }
        assert rm.get("t_docs", {"doc_id": 2}) is None

    def test_put_replaces_whole_row(self, rm: Any) -> None:
        rm.apply([Put("t_docs", {"doc_id": 1, "title": "a", "flag": True})])
        rm.apply([Put("t_docs", {"doc_id": 1, "title": "b"})])
        assert rm.get("t_docs", {"doc_id": 1}) == {"doc_id": 1, "title": "b", "tags": None, "meta": None, "flag": None}

    def test_patch_changes_only_existing_rows(self, rm: Any) -> None:
        rm.apply([Patch("t_docs", {"doc_id": 9}, {"title": "ghost"})])
        assert rm.get("t_docs", {"doc_id": 9}) is None
        rm.apply(
            [Put("t_docs", {"doc_id": 9, "title": "a", "flag": False}), Patch("t_docs", {"doc_id": 9}, {"flag": True})]
        )
        assert rm.get("t_docs", {"doc_id": 9})["flag"] is True
        assert rm.get("t_docs", {"doc_id": 9})["title"] == "a"

    def test_scan_orders_and_bounds_by_next_clustering_column(self, rm: Any) -> None:
        rm.apply([Put("t_feed", {"user_id": 1, "post_id": p, "author_id": 7}) for p in (5, 1, 3, 9)])
        rm.apply([Put("t_feed", {"user_id": 2, "post_id": 4, "author_id": 7})])
        ids = lambda rows: [r["post_id"] for r in rows]  # noqa: E731
        assert ids(rm.scan("t_feed", {"user_id": 1})) == [1, 3, 5, 9]
        assert ids(rm.scan("t_feed", {"user_id": 1}, desc=True)) == [9, 5, 3, 1]
        assert ids(rm.scan("t_feed", {"user_id": 1}, desc=True, before=9, limit=2)) == [5, 3]
        assert ids(rm.scan("t_feed", {"user_id": 1}, after=3)) == [5, 9]
        assert rm.count("t_feed", {"user_id": 1}) == 4
        assert rm.count("t_feed", {"user_id": 3}) == 0

    def test_scan_with_two_clustering_columns(self, rm: Any) -> None:
        rm.apply([Put("t_pairs", {"a": 1, "b": b, "c": c, "v": b * 10 + c}) for b in (2, 1) for c in (2, 1)])
        assert [r["v"] for r in rm.scan("t_pairs", {"a": 1})] == [11, 12, 21, 22]
        assert [r["v"] for r in rm.scan("t_pairs", {"a": 1, "b": 2}, desc=True)] == [22, 21]

    def test_delete_by_full_key_and_by_prefix(self, rm: Any) -> None:
        rm.apply([Put("t_feed", {"user_id": u, "post_id": p, "author_id": 1}) for u in (1, 2) for p in (1, 2)])
        rm.apply([Delete("t_feed", {"user_id": 1, "post_id": 2})])
        assert rm.count("t_feed", {"user_id": 1}) == 1
        rm.apply([Delete("t_feed", {"user_id": 2})])
        assert rm.count("t_feed", {"user_id": 2}) == 0
        assert rm.count("t_feed", {"user_id": 1}) == 1

    def test_a_key_that_is_not_a_prefix_is_refused(self, rm: Any) -> None:
        with pytest.raises(ValueError):
            rm.scan("t_feed", {"post_id": 1})

    def test_set_add_counts_once_under_redelivery(self, rm: Any) -> None:
        counter = CounterRef("t_counts", {"user_id": 1}, "n")
        op = SetAdd("t_feed", {"user_id": 1, "post_id": 5, "author_id": 2}, (counter,))
        rm.apply([op])
        rm.apply([op])
        assert rm.get("t_counts", {"user_id": 1})["n"] == 1
        remove = SetRemove("t_feed", {"user_id": 1, "post_id": 5}, (counter,))
        rm.apply([remove])
        rm.apply([remove])
        assert rm.get("t_counts", {"user_id": 1})["n"] == 0
        assert rm.get("t_feed", {"user_id": 1, "post_id": 5}) is None

    def test_increment_creates_and_adds(self, rm: Any) -> None:
        rm.apply([Increment("t_counts", {"user_id": 3}, "m", 2), Increment("t_counts", {"user_id": 3}, "m", -5)])
        assert rm.get("t_counts", {"user_id": 3}) == {"user_id": 3, "n": None, "m": -3}

    def test_scans_asked_together_answer_as_each_alone(self, rm: Any) -> None:
        rm.apply([Put("t_feed", {"user_id": u, "post_id": p, "author_id": u}) for u in (1, 2, 3) for p in range(u * 3)])
        rm.apply([Put("t_pairs", {"a": 1, "b": b, "c": c, "v": b * 10 + c}) for b in (2, 1) for c in (2, 1)])
        scans = [
            # alike but for the partition (one IN query where the backend can): some short, one empty, one twice
            *[Scan("t_feed", {"user_id": u}, before=7, desc=True, limit=4) for u in (1, 2, 3, 4, 2)],
            *[Scan("t_feed", {"user_id": u}, after=1, limit=2) for u in (3, 1)],
            Scan("t_feed", {"user_id": 3}, desc=True),
            Scan("t_feed", {"user_id": 3}, limit=0),
            Scan("t_pairs", {"a": 1}, desc=True, limit=3),
            Scan("t_pairs", {"a": 1, "b": 2}),
        ]
        alone = [rm.scan(s.table, s.prefix, before=s.before, after=s.after, desc=s.desc, limit=s.limit) for s in scans]
        assert scan_each(rm, scans) == alone
        assert [r["post_id"] for r in alone[2]] == [6, 5, 4, 3]

    def test_gets_asked_together_answer_as_each_alone(self, rm: Any) -> None:
        rm.apply([Put("t_docs", {"doc_id": i, "title": str(i)}) for i in (1, 2, 3)])
        rm.apply([Put("t_pairs", {"a": 1, "b": b, "c": c, "v": b * 10 + c}) for b in (2, 1) for c in (2, 1)])
        gets = [
            Gets("t_docs", [{"doc_id": 3}, {"doc_id": 7}, {"doc_id": 1}, {"doc_id": 3}]),  # missing, twice
            Gets("t_pairs", [{"a": 1, "b": 2, "c": 1}, {"a": 2, "b": 1, "c": 1}, {"a": 1, "b": 1, "c": 2}]),
            Gets("t_docs", []),
            Gets("t_docs", [{"doc_id": 2}]),
        ]
        alone = [rm.get_many(g.table, g.keys) for g in gets]
        together = get_each(rm, gets)
        assert together == alone
        assert [r["doc_id"] for r in together[0]] == [3, 1, 3] and [r["v"] for r in together[1]] == [21, 12]
        together[0][0]["title"] = "changed"  # each row its own dict, even for a key asked twice
        assert together[0][2]["title"] == "3"

    def test_get_many_keeps_order_and_skips_missing(self, rm: Any) -> None:
        rm.apply([Put("t_docs", {"doc_id": i, "title": str(i)}) for i in (1, 2, 3)])
        rows = rm.get_many("t_docs", [{"doc_id": 3}, {"doc_id": 7}, {"doc_id": 1}])
        assert [r["doc_id"] for r in rows] == [3, 1]

    def test_find_by_value_column(self, rm: Any) -> None:
        rm.apply([Put("t_docs", {"doc_id": i, "title": "x" if i % 2 else "y"}) for i in range(6)])
        assert sorted(r["doc_id"] for r in rm.find("t_docs", {"title": "x"})) == [1, 3, 5]
        assert len(rm.find("t_docs", {"title": "y"}, limit=2)) == 2
