"""Uploaded media: one row per media id, plus the indexes that serving and erasure need.

Lifecycle: MediaUploaded inserts the row as `processing`; the media worker's outcome
moves it to `ready` (with renditions) or `failed` (with a reason). The first outcome
wins: a redelivered or late outcome for a row that is no longer `processing` changes
nothing, and an outcome for a row that is gone (its owner was erased, possibly
before the outcome arrived from another stream) writes nothing, so erased media can
never come back through a late MediaProcessed. That guard reads the row this
projection owns, as `_forget_owner` does. Likewise an upload applied after its owner's
deletion (which another stream may carry first) is ignored (profile's
`deleted_accounts`), and a redelivered upload never brings back the original that its
failure released.

Bytes are content-addressed: originals under `originals/<sha>.<ext>` (never served:
they still carry their metadata; released once processing failed), renditions under `renditions/<sha>.<ext>` where
the sha256 is that of the rendition's own bytes. MEDIA_BY_KEY lists every media id
that uses a blob: the byte route serves a rendition only while some live media row
uses it, and the blob collector deletes a blob once nothing does.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from events.accounts import AccountDeleted
from events.media import MediaFailed, MediaProcessed, MediaUploaded
from events.union import Event
from projections.profile import deleted
from projections.projection import Projection
from projections.store import Delete, Op, Patch, Put, ReadModel, Row, SetAdd, Table

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
        "renditions",
        "placeholder",
        "duration_ms",
        "reason",
    ),
    types={
        "status": str,
        "storage_key": str,
        "content_type": str,
        "kind": str,
        "sha256": str,
        "renditions": list,
        "placeholder": str,
        "reason": str,
    },
    indexes=(("status",),),  # the media worker finds uploads still `processing` after a restart
)
USER_MEDIA = Table("user_media", partition=("owner_id",), clustering=("media_id",))
MEDIA_BY_KEY = Table(
    "media_by_key",
    partition=("storage_key",),
    clustering=("media_id",),
    values=("content_type", "sha256"),
    types={"storage_key": str, "content_type": str, "sha256": str},
)

PROCESSING, READY, FAILED = "processing", "ready", "failed"

# File extensions of accepted originals, by sniffed content type.
EXTENSIONS: dict[str, str] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
}
# What each rendition format is stored and served as.
RENDITION_EXTENSIONS: dict[str, str] = {"webp": "webp", "jpeg": "jpg", "mp4": "mp4"}
RENDITION_TYPES: dict[str, str] = {"webp": "image/webp", "jpeg": "image/jpeg", "mp4": "video/mp4"}
MEDIA_URL_PREFIX = "/media/"


def storage_key_for(sha256: str, content_type: str) -> str:
    """Where an original lives. Content-addressed: the same bytes land under the same key."""
    return f"originals/{sha256[:2]}/{sha256}.{EXTENSIONS[content_type]}"


def rendition_key(sha256: str, fmt: str) -> str:
    """Where a rendition lives, by the sha256 of its own bytes."""
    return f"renditions/{sha256[:2]}/{sha256}.{RENDITION_EXTENSIONS[fmt]}"


def public_name(storage_key: str) -> str:
    """The last path part of a storage key, which is what URLs carry."""
    return storage_key.rsplit("/", 1)[-1]


def storage_key_of_name(name: str) -> str:
    """The rendition behind a public name. Originals have no public name."""
    return f"renditions/{name[:2]}/{name}"


RenditionUrl = Callable[[str], str]  # a rendition's storage key -> the URL clients fetch it from


def api_rendition_url(storage_key: str) -> str:
    """The API's own byte route (`/media/<sha>.<ext>`): how the embedded mode serves renditions."""
    return MEDIA_URL_PREFIX + public_name(storage_key)


# How the views built for the request being served link renditions: the API route by
# default, straight to S3 or a CDN in the scale stack (infra/media/rendition_urls.py).
# A context variable, not a parameter, because these views are built deep inside
# commands and queries that know nothing of deployments; the HTTP layer binds it from
# the container for each request (infra/http/deps.py); code outside a request gets the
# API route.
RENDITION_URL: ContextVar[RenditionUrl] = ContextVar("rendition_url", default=api_rendition_url)


def sha_of_key(storage_key: str) -> str:
    return public_name(storage_key).split(".", 1)[0]


def media_view(row: Row) -> dict[str, Any]:
    """The public shape of one media row (GET /v1/media/{id}, and inside posts and stories).

    Renditions, placeholder and duration exist only once the media is `ready`; `reason`
    is present only when processing failed.
    """
    ready = row["status"] == READY
    renditions = (row.get("renditions") or []) if ready else []
    url = RENDITION_URL.get()
    view: dict[str, Any] = {
        "id": str(row["media_id"]),
        "status": row["status"],
        "kind": row["kind"],
        "width": int(row.get("width") or 0),
        "height": int(row.get("height") or 0),
        "renditions": [
            {
                "url": url(r["key"]),
                "width": int(r["width"]),
                "height": int(r["height"]),
                "format": r["format"],
            }
            for r in renditions
        ],
        "placeholder": row.get("placeholder") if ready else None,
        "duration_ms": row.get("duration_ms") if ready else None,
    }
    if row["status"] == FAILED:
        view["reason"] = row.get("reason") or "the media could not be processed"
    return view


def _forget_owner(owner_id: int, read: ReadModel) -> list[Op]:
    ops: list[Op] = []
    for entry in read.scan(USER_MEDIA.name, {"owner_id": owner_id}):
        media_id = entry["media_id"]
        row = read.get(MEDIA.name, {"media_id": media_id})
        if row is not None:
            keys = [row["storage_key"], *(r["key"] for r in row.get("renditions") or [])]
            ops += [Delete(MEDIA_BY_KEY.name, {"storage_key": k, "media_id": media_id}) for k in keys]
        ops.append(Delete(MEDIA.name, {"media_id": media_id}))
    ops.append(Delete(USER_MEDIA.name, {"owner_id": owner_id}))
    return ops


def _uploaded(event: MediaUploaded, read: ReadModel) -> list[Op]:
    if deleted(read, event.owner_id):
        return []  # the owner's deletion overtook this upload on another stream: it must not come back
    row = read.get(MEDIA.name, {"media_id": event.media_id})
    ops: list[Op] = [
        # Insert-if-absent: a redelivered upload must not reset a processed row.
        SetAdd(
            MEDIA.name,
            {
                "media_id": event.media_id,
                "owner_id": event.owner_id,
                "status": PROCESSING,
                "storage_key": event.storage_key,
                "content_type": event.content_type,
                "kind": event.kind,
                "width": event.width,
                "height": event.height,
                "size_bytes": event.size_bytes,
                "sha256": event.sha256,
                "renditions": [],
            },
        ),
        SetAdd(USER_MEDIA.name, {"owner_id": event.owner_id, "media_id": event.media_id}),
    ]
    if row is None or row["status"] != FAILED:  # a failed upload released its original for good
        ops.append(
            Put(
                MEDIA_BY_KEY.name,
                {
                    "storage_key": event.storage_key,
                    "media_id": event.media_id,
                    "content_type": event.content_type,
                    "sha256": event.sha256,
                },
            )
        )
    return ops


def _processed(event: MediaProcessed) -> list[Op]:
    ops: list[Op] = [
        Patch(
            MEDIA.name,
            {"media_id": event.media_id},
            {
                "status": READY,
                "width": event.width,
                "height": event.height,
                "renditions": [r.model_dump() for r in event.renditions],
                "placeholder": event.placeholder,
                "duration_ms": event.duration_ms,
            },
        )
    ]
    for r in event.renditions:
        ops.append(
            Put(
                MEDIA_BY_KEY.name,
                {
                    "storage_key": r.key,
                    "media_id": event.media_id,
                    "content_type": RENDITION_TYPES[r.format],
                    "sha256": sha_of_key(r.key),
                },
            )
        )
    return ops


def project(event: Event, read: ReadModel) -> list[Op]:
    match event:
        case MediaUploaded():
            return _uploaded(event, read)
        case MediaProcessed() | MediaFailed():
            row = read.get(MEDIA.name, {"media_id": event.media_id})
            if row is None or row["status"] != PROCESSING:
                return []  # erased, or an outcome is already in: the first one wins
            if isinstance(event, MediaProcessed):
                return _processed(event)
            return [
                Patch(MEDIA.name, {"media_id": event.media_id}, {"status": FAILED, "reason": event.reason}),
                # The refused original is of no further use: release it for the blob collector.
                Delete(MEDIA_BY_KEY.name, {"storage_key": row["storage_key"], "media_id": event.media_id}),
            ]
        case AccountDeleted():
            return _forget_owner(event.user_id, read)
    return []


# 3: an upload redelivered after its failure, or applied after its owner's deletion, changes nothing
PROJECTION = Projection("media", 3, (MEDIA, USER_MEDIA, MEDIA_BY_KEY), project)
