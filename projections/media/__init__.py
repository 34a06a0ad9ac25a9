"""Uploaded media: one row per media id, plus the indexes that serving and erasure need.

The embedded mode stores the original as-is and it is ready at once, so a media row
exists only for media that can be shown. `status` is kept as a column so a later
MediaProcessed (renditions made by a worker) can move it without a schema change.

Bytes are content-addressed (the storage key is derived from the sha256), so two
uploads of the same bytes share one blob. MEDIA_BY_KEY lists every media id that
uses a blob: the byte route serves a key only while some live media row uses it,
and the blob collector deletes a blob once nothing does.
"""

from __future__ import annotations

from typing import Any

from events.accounts import AccountDeleted
from events.media import MediaUploaded
from events.union import Event
from projections.projection import Projection
from projections.store import Delete, Op, Put, ReadModel, Row, SetAdd, Table

MEDIA = Table(
    "media",
    partition=("media_id",),
    values=(
        "owner_id",
        "status",
        "storage_key",
        "content_type",
        "kind",
        "width",
        "height",
        "size_bytes",
        "sha256",
    ),
    types={"status": str, "storage_key": str, "content_type": str, "kind": str, "sha256": str},
)
USER_MEDIA = Table("user_media", partition=("owner_id",), clustering=("media_id",))
MEDIA_BY_KEY = Table(
    "media_by_key",
    partition=("storage_key",),
    clustering=("media_id",),
    values=("content_type", "sha256"),
    types={"storage_key": str, "content_type": str, "sha256": str},
)

# What a stored content type is called in a rendition's `format`, and the file extension.
FORMATS: dict[str, str] = {
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
}
EXTENSIONS: dict[str, str] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
}
MEDIA_URL_PREFIX = "/media/"


def storage_key_for(sha256: str, content_type: str) -> str:
    """Content-addressed: the same bytes always land under the same key."""
    return f"originals/{sha256[:2]}/{sha256}.{EXTENSIONS[content_type]}"


def public_name(storage_key: str) -> str:
    """The last path part of a storage key, which is what URLs carry."""
    return storage_key.rsplit("/", 1)[-1]


def storage_key_of_name(name: str) -> str:
    return f"originals/{name[:2]}/{name}"


def media_view(row: Row) -> dict[str, Any]:
    """The public shape of one media row (GET /v1/media/{id}, and inside posts)."""
    width, height = int(row["width"] or 0), int(row["height"] or 0)
    return {
        "id": str(row["media_id"]),
        "status": row["status"],
        "kind": row["kind"],
        "width": width,
        "height": height,
        "renditions": [
            {
                "url": MEDIA_URL_PREFIX + public_name(row["storage_key"]),
                "width": width,
                "height": height,
                "format": FORMATS.get(row["content_type"], row["content_type"]),
            }
        ],
    }


def _forget_owner(owner_id: int, read: ReadModel) -> list[Op]:
    ops: list[Op] = []
    for entry in read.scan(USER_MEDIA.name, {"owner_id": owner_id}):
        media_id = entry["media_id"]
        row = read.get(MEDIA.name, {"media_id": media_id})
        if row is not None:
            ops.append(Delete(MEDIA_BY_KEY.name, {"storage_key": row["storage_key"], "media_id": media_id}))
        ops.append(Delete(MEDIA.name, {"media_id": media_id}))
    ops.append(Delete(USER_MEDIA.name, {"owner_id": owner_id}))
    return ops


def project(event: Event, read: ReadModel) -> list[Op]:
    match event:
        case MediaUploaded():
            return [
                Put(
                    MEDIA.name,
                    {
                        "media_id": event.media_id,
                        "owner_id": event.owner_id,
                        "status": "ready",
                        "storage_key": event.storage_key,
                        "content_type": event.content_type,
                        "kind": event.kind,
                        "width": event.width,
                        "height": event.height,
                        "size_bytes": event.size_bytes,
                        "sha256": event.sha256,
                    },
                ),
                SetAdd(USER_MEDIA.name, {"owner_id": event.owner_id, "media_id": event.media_id}),
                Put(
                    MEDIA_BY_KEY.name,
                    {
                        "storage_key": event.storage_key,
                        "media_id": event.media_id,
                        "content_type": event.content_type,
                        "sha256": event.sha256,
                    },
                ),
            ]
        case AccountDeleted():
            return _forget_owner(event.user_id, read)
    return []


PROJECTION = Projection("media", 1, (MEDIA, USER_MEDIA, MEDIA_BY_KEY), project)
