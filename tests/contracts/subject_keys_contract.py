"""Behaviour every `SubjectKeys` adapter (infra/personal_data/keys.py) must share; subclass
per adapter with `make()`. Subjects are random, so a store shared by tests stays clean."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest


def subject() -> int:
    return random.randrange(1, 2**62)


class SubjectKeysContract:
    def make(self) -> Any:
        raise NotImplementedError

    @pytest.fixture
    def keys(self) -> Any:
        return self.make()

    def test_a_key_is_made_once_and_kept(self, keys: Any) -> None:
        s = subject()
        assert keys.key(s, create=False) is None
        first = keys.key(s, create=True)
        assert isinstance(first, bytes) and len(first) == 32
        assert keys.key(s, create=True) == first
        assert keys.key(s, create=False) == first
        assert keys.key(subject(), create=True) != first

    def test_erasure_is_final(self, keys: Any) -> None:
        s = subject()
        keys.key(s, create=True)
        keys.erase(s)
        assert keys.key(s, create=False) is None
        assert keys.key(s, create=True) is None  # never a new key for an erased person
        keys.erase(s)  # idempotent
        assert keys.key(s, create=True) is None

    def test_erasing_someone_without_a_key_still_bars_one(self, keys: Any) -> None:
        s = subject()
        keys.erase(s)
        assert keys.key(s, create=True) is None

    def test_others_keep_their_keys(self, keys: Any) -> None:
        a, b = subject(), subject()
        key_b = keys.key(b, create=True)
        keys.key(a, create=True)
        keys.erase(a)
        assert keys.key(b, create=False) == key_b

    def test_concurrent_first_uses_agree_on_one_key(self, keys: Any) -> None:
        s = subject()
        got: list[bytes | None] = []
        threads = [threading.Thread(target=lambda: got.append(keys.key(s, create=True))) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(got)) == 1 and got[0] is not None

    def test_many_answers_as_one_by_one(self, keys: Any) -> None:
        kept, erased, new, never = subject(), subject(), subject(), subject()
        key_kept = keys.key(kept, create=True)
        keys.key(erased, create=True)
        keys.erase(erased)
        assert keys.many([kept, erased, never], create=False) == {kept: key_kept, erased: None, never: None}
        assert keys.key(never, create=False) is None  # asking without `create` made nothing
        made = keys.many([kept, erased, new, new], create=True)
        assert set(made) == {kept, erased, new}
        assert made[kept] == key_kept and made[erased] is None
        assert isinstance(made[new], bytes) and made[new] != key_kept
        assert keys.key(new, create=False) == made[new]
