"""The in-memory fakes and the SQLite adapters pass the same contracts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.storage.memory_eventlog import MemoryEventLog
from infra.storage.memory_readmodel import MemoryReadModel
from infra.storage.sqlite_eventlog import SqliteEventLog, connect
from infra.storage.sqlite_readmodel import SqliteReadModel
from tests.contracts.eventlog_contract import OrderedEventLogContract
from tests.contracts.readmodel_contract import TABLES, ReadModelContract


class TestMemoryReadModel(ReadModelContract):
    def make(self) -> Any:
        return MemoryReadModel(TABLES)


class TestSqliteReadModel(ReadModelContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.path = tmp_path / "rm.db"

    def make(self) -> Any:
        return SqliteReadModel(connect(self.path), TABLES)


class TestMemoryEventLog(OrderedEventLogContract):
    def make(self) -> Any:
        return MemoryEventLog()


class TestSqliteEventLog(OrderedEventLogContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.path = tmp_path / "events.db"

    def make(self) -> Any:
        return SqliteEventLog(self.path)
