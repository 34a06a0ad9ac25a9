"""Old event shapes become the current one here, before validation.

Events in the log never change, so when an event's shape changes it gets a new
`version` and an upcaster: a pure function from the serialized form of version N
(a dict, as parsed from JSON) to version N+1. Decoding applies the chain from the
stored version up to the current one, then validates against the current model;
only the current version of each event has a model class.

What is never guessed:
- a type no model knows (`UnknownEventType`),
- a version newer than the code (`UnknownEventVersion`: written by a newer
  release; projecting it as if it were an older shape could silently lose a fact),
- a missing step in a chain (an old version without an upcaster).
All three raise, so a projector or worker stops loudly on them.

Every version of every event keeps a serialized sample under tests/fixtures/events/,
and a test decodes them all, forever.

History
- Liked v2 (reaction kind): v1 likes were all plain likes, so the upcaster adds
  `reaction: "like"`.
- AccountDeleted v2 drops `username`: the deletion starts the erasure of that
  person's data, and the name must not stay readable in the log after it.
- MediaProcessed v2 adds `owner_id`, whose key seals the renditions and placeholder;
  a v1 outcome never named its owner, so it becomes `owner_id: None`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

RawEvent = dict[str, Any]
Upcaster = Callable[[RawEvent], RawEvent]


class UnknownEventType(ValueError):
    pass


class UnknownEventVersion(ValueError):
    pass


def _liked_v1_to_v2(raw: RawEvent) -> RawEvent:
    return {**raw, "version": 2, "reaction": "like"}


def _account_deleted_v1_to_v2(raw: RawEvent) -> RawEvent:
    return {k: v for k, v in raw.items() if k != "username"} | {"version": 2}


def _media_processed_v1_to_v2(raw: RawEvent) -> RawEvent:
    return {**raw, "version": 2, "owner_id": None}


# (type, version it reads) -> the upcaster to version + 1
UPCASTERS: Mapping[tuple[str, int], Upcaster] = {
    ("Liked", 1): _liked_v1_to_v2,
    ("AccountDeleted", 1): _account_deleted_v1_to_v2,
    ("MediaProcessed", 1): _media_processed_v1_to_v2,
}


def upcast(raw: RawEvent, current_versions: Mapping[str, int]) -> RawEvent:
    """`raw` (any known version) as the current version of its type, still unvalidated."""
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in current_versions:
        raise UnknownEventType(f"unknown event type {kind!r}")
    current = current_versions[kind]
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UnknownEventVersion(f"{kind}: {version!r} is not an event version")
    if version > current:
        raise UnknownEventVersion(
            f"{kind} version {version} is newer than this code knows (up to {current}): "
            "upgrade Glimpse before reading this log"
        )
    while version < current:
        step = UPCASTERS.get((kind, version))
        if step is None:
            raise UnknownEventVersion(f"{kind} version {version} has no upcaster to version {version + 1}")
        raw = step(raw)
        if raw.get("version") != version + 1:
            raise UnknownEventVersion(f"the upcaster of {kind} v{version} did not produce v{version + 1}")
        version += 1
    return raw
