"""Where the keys live in each mode, and the listener that shreds them."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from events.accounts import AccountDeleted
from events.union import Event
from infra.personal_data.codec import SEALED_MARK, EventCodec
from infra.personal_data.keys import CachedSubjectKeys, SqliteSubjectKeys
from projections.profile import PROJECTION as PROFILE
from projections.store import Op

KEYS_FILE = "keys.db"


class MissingKeyStore(RuntimeError):
    pass


def embedded_codec(data_dir: Path) -> EventCodec:
    """The codec of an embedded data dir: keys in `keys.db`, a file apart from `events.db`.

    A log with sealed events and no key store is refused: read without keys, every
    person's data would look erased, and a replay would rebuild the read models so.
    """
    keys_path = data_dir / KEYS_FILE
    if not keys_path.exists() and _holds_sealed_events(data_dir / "events.db"):
        raise MissingKeyStore(
            f"{data_dir} holds sealed personal data but no key store ({KEYS_FILE}): restore it beside events.db "
            "(without it every person's data reads as erased)"
        )
    return EventCodec(CachedSubjectKeys(SqliteSubjectKeys(keys_path), ttl=float("inf")))


def _holds_sealed_events(log_path: Path) -> bool:
    if not log_path.exists():
        return False
    conn = sqlite3.connect(f"file:{log_path}?mode=ro", uri=True)
    try:
        found = conn.execute("SELECT 1 FROM events WHERE instr(data, ?) > 0 LIMIT 1", (SEALED_MARK,)).fetchone()
    except sqlite3.OperationalError:
        return False  # no events table yet
    finally:
        conn.close()
    return found is not None


def scale_codec(session: Any, keyspace: str, ttl: float) -> EventCodec:
    from infra.cassandra.subject_keys import CassandraSubjectKeys

    return EventCodec(CachedSubjectKeys(CassandraSubjectKeys(session, keyspace), ttl=ttl))


def shred_on_deletion(codec: EventCodec) -> Callable[[Event, str, Sequence[Op]], None]:
    """Erase a person's key once their AccountDeleted is applied.

    After the projections, not at the command: events of theirs not yet projected (the
    scale worker may lag) are still read with the key, so the deletion finds and removes
    everything they made (media blobs included) before the key goes.
    """

    def on_applied(event: Event, projection: str, ops: Sequence[Op]) -> None:
        if projection == PROFILE.name and isinstance(event, AccountDeleted):
            codec.erase(event.user_id)

    return on_applied
