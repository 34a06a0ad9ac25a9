"""The request path's speed-ups change no answer: per-request reads (query_api.request_reads),
batched get_many over SQLite, grouped Puts, and remembered token verifications."""

from __future__ import annotations

import random
import sqlite3
import time
from typing import Any

import jwt
import pytest

from infra.auth import TokenService
from infra.storage.memory_readmodel import MemoryReadModel
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.graph import BLOCKS, FOLLOWING
from projections.posts import POSTS
from projections.profile import ACCOUNTS, USERNAMES
from projections.registry import all_tables
from projections.store import Delete, Key, Put, Row
from query_api.request_reads import RequestReads


def _sqlite() -> SqliteReadModel:
    store = SqliteReadModel(sqlite3.connect(":memory:", isolation_level=None), all_tables())
    store.create_schema()
    return store


def _one_by_one(store: Any, table: str, keys: list[Key]) -> list[Row]:
    return [r for r in (store.get(table, k) for k in keys) if r is not None]


def _graph_ops(rng: random.Random) -> list[Any]:
    ops: list[Any] = []
    for u in range(20):
        ops.append(Put(ACCOUNTS.name, {"user_id": u, "username": f"u{u}", "display_name": "x", "private": u % 3 == 0}))
        ops.append(Put(USERNAMES.name, {"username": f"u{u}", "user_id": u}))
    for _ in range(60):
        ops.append(Put(FOLLOWING.name, {"follower_id": rng.randrange(20), "followee_id": rng.randrange(20)}))
        ops.append(Put(BLOCKS.name, {"blocker_id": rng.randrange(20), "blocked_id": rng.randrange(20)}))
    return ops


def test_sqlite_get_many_answers_like_gets_one_by_one() -> None:
    rng = random.Random(5)
    store = _sqlite()
    store.apply(_graph_ops(rng))
    for _ in range(200):
        keys: list[Key] = [
            {"follower_id": rng.randrange(22), "followee_id": rng.randrange(22)} for _ in range(rng.randrange(0, 300))
        ]
        if rng.random() < 0.3:
            keys.append({"follower_id": "3", "followee_id": 4})  # SQLite converts it; a batch lookup would not
        if rng.random() < 0.3:
            keys.append({"follower_id": 3})  # a partial key: the first row of that prefix, as `get`
        rng.shuffle(keys)
        assert store.get_many(FOLLOWING.name, keys) == _one_by_one(store, FOLLOWING.name, keys)
    names: list[Key] = [{"username": f"u{rng.randrange(25)}"} for _ in range(30)] + [{"username": 7}]
    assert store.get_many(USERNAMES.name, names) == _one_by_one(store, USERNAMES.name, names)
    bools: list[Key] = [{"user_id": u} for u in (0, 3, 3, 99, 1)]
    assert store.get_many(ACCOUNTS.name, bools) == _one_by_one(store, ACCOUNTS.name, bools)
    assert [r["private"] for r in store.get_many(ACCOUNTS.name, bools)] == [True, True, True, False]


def test_sqlite_grouped_puts_keep_each_tables_order() -> None:
    store, reference = _sqlite(), MemoryReadModel(all_tables())
    ops: list[Any] = [
        Put(POSTS.name, {"post_id": 1, "author_id": 1, "caption": "a", "media_ids": [], "audience": "public"}),
        Put(FOLLOWING.name, {"follower_id": 1, "followee_id": 2}),
        Put(POSTS.name, {"post_id": 1, "author_id": 1, "caption": "b"}),  # replaces the whole row
        Put(POSTS.name, {"post_id": 2, "author_id": 1, "caption": "c", "media_ids": [5], "audience": "followers"}),
        Delete(POSTS.name, {"post_id": 2}),
        Put(POSTS.name, {"post_id": 2, "author_id": 1, "caption": "d", "media_ids": [6], "audience": "public"}),
    ]
    store.apply(ops)
    reference.apply(ops)
    for key in ({"post_id": 1}, {"post_id": 2}):
        assert store.get(POSTS.name, key) == reference.get(POSTS.name, key)
    assert store.get(POSTS.name, {"post_id": 1})["caption"] == "b"
    assert store.get(POSTS.name, {"post_id": 1})["media_ids"] is None


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_request_reads_answer_like_the_read_model(backend: str) -> None:
    rng = random.Random(9)
    store: Any = MemoryReadModel(all_tables()) if backend == "memory" else _sqlite()
    store.apply(_graph_ops(rng))
    reads = RequestReads(store)
    for _ in range(300):
        keys: list[Key] = [{"blocker_id": rng.randrange(22), "blocked_id": rng.randrange(22)} for _ in range(5)]
        if rng.random() < 0.5:
            reads.prefetch(BLOCKS.name, keys)
        assert reads.get_many(BLOCKS.name, keys) == store.get_many(BLOCKS.name, keys)
        for key in keys:
            assert reads.get(BLOCKS.name, key) == store.get(BLOCKS.name, key)
        assert reads.get(ACCOUNTS.name, {"user_id": keys[0]["blocker_id"]}) == store.get(
            ACCOUNTS.name, {"user_id": keys[0]["blocker_id"]}
        )
    assert reads.scan(FOLLOWING.name, {"follower_id": 1}) == store.scan(FOLLOWING.name, {"follower_id": 1})
    assert reads.count(FOLLOWING.name, {"follower_id": 1}) == store.count(FOLLOWING.name, {"follower_id": 1})


def test_request_reads_read_each_row_once() -> None:
    store = _sqlite()
    store.apply(_graph_ops(random.Random(1)))
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    reads = RequestReads(store)
    keys: list[Key] = [{"user_id": u} for u in range(25)]  # five of them absent
    reads.prefetch(ACCOUNTS.name, keys)
    assert len(statements) == 1  # one batched statement
    for key in keys:
        reads.get(ACCOUNTS.name, key)
    assert reads.get_many(ACCOUNTS.name, keys) == _one_by_one(store, ACCOUNTS.name, keys)
    assert len(statements) == 1 + 25  # only the reference reads above reached SQLite
    # Scans are never remembered: they are cursors over what may have changed.
    reads.scan(FOLLOWING.name, {"follower_id": 1})
    reads.scan(FOLLOWING.name, {"follower_id": 1})
    assert len(statements) == 1 + 25 + 2


def test_a_remembered_token_still_expires() -> None:
    tokens = TokenService("test-secret-of-enough-length-for-hs256", ttl_seconds=2)
    token = tokens.issue(42)
    assert tokens.verify(token) == 42
    assert tokens.verify(token) == 42  # remembered
    time.sleep(2.1)
    assert tokens.verify(token) is None
    assert tokens.verify(token) is None


def test_only_valid_tokens_are_remembered() -> None:
    tokens = TokenService("test-secret-of-enough-length-for-hs256", ttl_seconds=60)
    other = TokenService("another-secret-of-enough-length-for-hs256", ttl_seconds=60)
    forged = other.issue(7)
    assert tokens.verify(forged) is None
    assert tokens.verify(forged) is None
    expired = tokens.issue(7, now=time.time() - 120)
    assert tokens.verify(expired) is None
    future = jwt.encode(
        {"sub": "7", "iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200},
        "test-secret-of-enough-length-for-hs256",
        algorithm="HS256",
    )
    assert tokens.verify(future) is None  # not valid yet: checked again next time, never remembered
    assert tokens.verify(tokens.issue(7)) == 7
    assert tokens.verify("not a token") is None


def test_the_memory_of_tokens_is_bounded() -> None:
    tokens = TokenService("test-secret-of-enough-length-for-hs256", ttl_seconds=60)
    tokens.MAX_REMEMBERED = 10
    issued = [tokens.issue(u) for u in range(25)]
    assert [tokens.verify(t) for t in issued] == list(range(25))
    assert len(tokens._verified) <= 10
