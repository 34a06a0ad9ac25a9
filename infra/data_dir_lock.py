"""Who may write a data dir's read models: any number of processes serving it, or one replay.

Every embedded container holds a shared lock on `<data dir>/readmodels.lock` for as
long as it is open; an offline replay (`glimpse replay` with nothing serving the data
dir) takes it exclusively. So `glimpse replay` knows whether to rebuild itself or ask
the serving process to (infra/replay_cli.py), and a server cannot start in the middle
of an offline replay and keep writing the generation that is being replaced.

These are advisory `flock` locks: released by the kernel when the process ends,
however it ends, so a crashed replay never leaves the data dir locked.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "readmodels.lock"


class DataDirBusy(RuntimeError):
    pass


class DataDirLock:
    def __init__(self, fd: int, exclusive: bool) -> None:
        self._fd: int | None = fd
        self.exclusive = exclusive

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _open(data_dir: Path) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    return os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)


def _take(data_dir: Path, mode: int) -> DataDirLock | None:
    fd = _open(data_dir)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return DataDirLock(fd, exclusive=mode == fcntl.LOCK_EX)


def hold_shared(data_dir: Path) -> DataDirLock:
    """For a process that serves (or seeds) the data dir; refused during an offline replay."""
    lock = _take(data_dir, fcntl.LOCK_SH)
    if lock is None:
        raise DataDirBusy(f"{data_dir}: a replay is rebuilding these read models; start again once it has finished")
    return lock


def try_exclusive(data_dir: Path) -> DataDirLock | None:
    """For an offline replay: None if any process has the data dir open."""
    return _take(data_dir, fcntl.LOCK_EX)


def in_use(data_dir: Path) -> bool:
    """Whether some process (not necessarily another one) has the data dir open."""
    lock = try_exclusive(data_dir)
    if lock is None:
        return True
    lock.release()
    return False
