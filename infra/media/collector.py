"""Deletes media blobs that no media row uses any more: after an account is erased, and
the original of an upload whose processing failed.

Blobs are content-addressed and shared by every upload of the same bytes, so a blob
goes only when the media read model holds no row for its key. Serving already stops
when the rows go (query_api/media.py checks them), so this only frees the disk and
completes the erasure; it runs after the projector commits, on the thread that
applied the event (the event loop in the embedded mode).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from commands.ports import MediaStore
from events.accounts import AccountDeleted
from events.media import MediaFailed
from events.union import Event
from infra.container import Container
from projections.media import MEDIA_BY_KEY
from projections.media import PROJECTION as MEDIA_PROJECTION
from projections.store import Delete, Op, ReadModel

log = logging.getLogger(__name__)


def released_keys(event: Event, projection: str, ops: Sequence[Op]) -> list[str]:
    """Storage keys whose media rows this event removed."""
    if projection != MEDIA_PROJECTION.name or not isinstance(event, AccountDeleted | MediaFailed):
        return []
    keys = [op.key["storage_key"] for op in ops if isinstance(op, Delete) and op.table == MEDIA_BY_KEY.name]
    return list(dict.fromkeys(keys))


def collect(read: ReadModel, store: MediaStore, keys: Sequence[str]) -> list[str]:
    """Delete the blobs among `keys` that nothing uses; returns the deleted keys."""
    gone = [k for k in keys if read.count(MEDIA_BY_KEY.name, {"storage_key": k}) == 0]
    for key in gone:
        store.delete(key)
    if gone:
        log.info("deleted %d unused media blobs", len(gone))
    return gone


def wire(container: Container) -> None:
    def on_applied(event: Event, projection: str, ops: Sequence[Op]) -> None:
        keys = released_keys(event, projection, ops)
        if keys:
            collect(container.read, container.media, keys)

    if container.projector is not None:  # the scale stack collects from the worker
        container.projector.subscribe(on_applied)
