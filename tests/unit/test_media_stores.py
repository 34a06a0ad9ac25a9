"""The in-memory and local-disk media stores pass the MediaStore contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.media.local_store import LocalDiskMediaStore, MemoryMediaStore
from tests.contracts.mediastore_contract import MediaStoreContract


class TestMemoryMediaStore(MediaStoreContract):
    def make(self) -> Any:
        return MemoryMediaStore()


class TestLocalDiskMediaStore(MediaStoreContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.root = tmp_path / "media"

    def make(self) -> Any:
        return LocalDiskMediaStore(self.root)

    def test_a_key_cannot_escape_the_root(self, store: Any) -> None:
        with pytest.raises(ValueError):
            store.put("../outside", b"x", "text/plain")
