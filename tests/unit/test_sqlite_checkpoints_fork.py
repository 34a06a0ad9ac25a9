"""A forked child (the bench builds states in forked children) checkpoints on its own."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from infra.storage import sqlite_checkpoints
from infra.storage.sqlite_eventlog import connect


def test_a_forked_child_starts_afresh_even_if_the_parent_held_the_lock(tmp_path: Path) -> None:
    parent = connect(tmp_path / "parent.db")
    checkpoints = sqlite_checkpoints._CHECKPOINTS
    with checkpoints._lock:  # as if the parent's checkpoint thread held it at the fork
        pid = os.fork()
        if pid == 0:  # the child: its own lock, nothing watched, and watching works
            code = 1
            try:
                fresh = checkpoints._lock.acquire(blocking=False) and not checkpoints._watched
                if fresh:
                    checkpoints._lock.release()
                    child = connect(tmp_path / "child.db")
                    child.execute("CREATE TABLE t (x)")
                    child.execute("INSERT INTO t VALUES (1)")
                    code = 0 if [p for _, p in checkpoints._watched if p.endswith("child.db")] else 2
            finally:
                os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [p for _, p in checkpoints._watched if p.endswith("parent.db")]  # the parent's is untouched
    assert sqlite3.connect(tmp_path / "child.db").execute("SELECT x FROM t").fetchall() == [(1,)]
    parent.close()
