"""Stream `media`: uploaded originals. Keyed by media id."""

from __future__ import annotations

from typing import ClassVar, Literal

from events.envelope import EventBase

MediaKind = Literal["image", "video"]


class MediaEvent(EventBase):
    STREAM: ClassVar[str] = "media"


class MediaUploaded(MediaEvent):
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
