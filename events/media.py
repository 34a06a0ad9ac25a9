"""Stream `media`: uploaded originals and what the media worker made of them. Keyed by media id.

An upload is recorded as MediaUploaded (status `processing`); the media worker then
records exactly one outcome per media: MediaProcessed (renditions made) or
MediaFailed (a reason a person can read). Redelivered or late outcomes are ignored
by the projection once an outcome is in, so the first outcome in the log wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from events.envelope import EventBase

MediaKind = Literal["image", "video"]
RenditionFormat = Literal["webp", "jpeg", "mp4"]


class MediaEvent(EventBase):
    STREAM: ClassVar[str] = "media"


class MediaUploaded(MediaEvent):
    PERSONAL: ClassVar[Mapping[str, object]] = {"storage_key": "", "sha256": ""}
    SUBJECT: ClassVar[str] = "owner_id"

    type: Literal["MediaUploaded"] = "MediaUploaded"
    version: Literal[1] = 1
    media_id: int
    owner_id: int
    storage_key: str
    content_type: str
    kind: MediaKind
    width: int
    height: int
    size_bytes: int
    sha256: str


class Rendition(BaseModel):
    """One stored derivative: `key` is content-addressed (the sha256 of its bytes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    width: int
    height: int
    format: RenditionFormat


class MediaProcessed(MediaEvent):
    """Renditions are stored before this is appended, so every key here can be served.

    `width`/`height` are the picture as displayed (after EXIF orientation or video
    rotation); `placeholder` is a tiny inline image (a `data:` URL) to show while a
    rendition loads; `duration_ms` is set for video only.

    Version 2 names the owner, whose key seals the renditions and the placeholder in
    the log; version 1 named none (upcast with `owner_id` None: written in the clear,
    before erasure existed).
    """

    PERSONAL: ClassVar[Mapping[str, object]] = {"renditions": (), "placeholder": ""}
    SUBJECT: ClassVar[str] = "owner_id"

    type: Literal["MediaProcessed"] = "MediaProcessed"
    version: Literal[2] = 2
    media_id: int
    owner_id: int | None
    width: int
    height: int
    renditions: tuple[Rendition, ...]
    placeholder: str
    duration_ms: int | None = None


class MediaFailed(MediaEvent):
    type: Literal["MediaFailed"] = "MediaFailed"
    version: Literal[1] = 1
    media_id: int
    reason: str
