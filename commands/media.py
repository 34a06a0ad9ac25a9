"""Media: what an upload may be, the decision to record it, and the worker's outcome.

The type of an upload is sniffed from its first bytes, never taken from the
client's header or file name. The upload route checks only what is cheap and
bounded (size, type, the image header's pixel count: infra/media/probe.py); the
full decode, the renditions and every later rejection happen in the media worker
(infra/media/worker.py), whose outcome is recorded here as MediaProcessed or
MediaFailed. This module gets only facts, never bytes.

Posts may use media that is still `processing` (the read path shows each item once
it is ready); media that `failed` can never be used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from commands.context import CommandContext, Decision, Meta
from commands.errors import Invalid, NotFound, Unsupported
from events.media import MediaFailed, MediaKind, MediaProcessed, MediaUploaded, Rendition
from projections.media import FAILED, MEDIA, PROCESSING, READY, storage_key_for
from projections.store import ReadModel, Row


@dataclass(frozen=True)
class Sniffed:
    content_type: str
    kind: MediaKind
    pillow_format: str | None  # what Pillow must decode it as; None for video


JPEG = Sniffed("image/jpeg", "image", "JPEG")
PNG = Sniffed("image/png", "image", "PNG")
GIF = Sniffed("image/gif", "image", "GIF")
WEBP = Sniffed("image/webp", "image", "WEBP")
MP4 = Sniffed("video/mp4", "video", None)
MOV = Sniffed("video/quicktime", "video", None)

# ISO base media `ftyp` major brands we take as plain MP4 video. HEIF/AVIF images use
# the same container with their own brands and are not accepted.
MP4_BRANDS = frozenset(
    {
        b"isom",
        b"iso2",
        b"iso3",
        b"iso4",
        b"iso5",
        b"iso6",
        b"mp41",
        b"mp42",
        b"avc1",
        b"M4V ",
        b"M4VH",
        b"M4VP",
        b"dash",
        b"mmp4",
        b"MSNV",
        b"3gp4",
        b"3gp5",
        b"3gp6",
        b"3g2a",
        b"f4v ",
    }
)
# Old QuickTime files may start with one of these atoms instead of `ftyp`.
QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide"})

ACCEPTED = "JPEG, PNG, GIF or WebP images, MP4 or MOV video"


def sniff(data: bytes) -> Sniffed:
    """The media type of `data` from its magic bytes, or 415."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if len(data) >= 12 and data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand == b"qt  ":
            return MOV
        if brand in MP4_BRANDS:
            return MP4
    if len(data) >= 8 and data[4:8] in QUICKTIME_ATOMS:
        return MOV
    raise Unsupported(f"unsupported media type; upload {ACCEPTED}", code="unsupported_media_type")


@dataclass(frozen=True)
class ProbedMedia:
    """An upload that passed the upload route's checks, described by facts taken from its bytes."""

    content_type: str
    kind: MediaKind
    width: int
    height: int
    size_bytes: int
    sha256: str

    @property
    def storage_key(self) -> str:
        return storage_key_for(self.sha256, self.content_type)


def decide_upload(owner: Row | None, probed: ProbedMedia, meta: Meta) -> Decision:
    if owner is None:
        raise NotFound("no such account")
    owner_id = int(owner["user_id"])
    media_id = meta.new_id()
    event = MediaUploaded(
        **meta.envelope(media_id, event_id=media_id),
        media_id=media_id,
        owner_id=owner_id,
        storage_key=probed.storage_key,
        content_type=probed.content_type,
        kind=probed.kind,
        width=probed.width,
        height=probed.height,
        size_bytes=probed.size_bytes,
        sha256=probed.sha256,
    )
    # Renditions are made by the media worker; clients poll GET /v1/media/{id}.
    return Decision([event], body={"id": str(media_id), "status": "processing"}, status=202)


def upload(ctx: CommandContext, probed: ProbedMedia) -> Decision:
    return decide_upload(ctx.privacy.account(ctx.actor), probed, ctx.meta)


def parse_media_ids(raw: Sequence[str]) -> list[int]:
    """Media ids as the client sent them (strings) to ints; distinct, in order."""
    ids: list[int] = []
    for value in raw:
        if not value.isdigit() or len(value) > 19:
            raise Invalid(f"media id {value!r} is not an id", code="invalid_media_id")
        media_id = int(value)
        if media_id in ids:
            raise Invalid(f"media {value} is listed twice", code="duplicate_media")
        ids.append(media_id)
    return ids


def check_usable_media(owner_id: int, media_ids: Sequence[int], rows: Sequence[Row]) -> list[Row]:
    """The rows for `media_ids`, in that order, if all exist, are the owner's and did not fail.

    Media still `processing` is accepted: a post can be written while its pictures
    are being made, and each appears once ready. Someone else's media answers the
    same as absent media: ids must not reveal whether another user's upload exists.
    """
    by_id = {int(r["media_id"]): r for r in rows}
    usable: list[Row] = []
    for media_id in media_ids:
        row = by_id.get(media_id)
        if row is None or int(row["owner_id"]) != owner_id:
            raise Invalid(f"media {media_id} does not exist or is not yours", code="unknown_media")
        if row["status"] == FAILED:
            reason = row.get("reason") or "processing failed"
            raise Invalid(f"media {media_id} could not be processed: {reason}", code="media_failed")
        if row["status"] not in (PROCESSING, READY):
            raise Invalid(f"media {media_id} cannot be used ({row['status']})", code="media_not_ready")
        usable.append(row)
    return usable


def load_media(read: ReadModel, media_ids: Sequence[int]) -> list[Row]:
    return read.get_many(MEDIA.name, [{"media_id": m} for m in media_ids])


# -- the media worker's outcome -------------------------------------------------------------

MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class ProcessedFacts:
    """What the worker made of one upload; every rendition is already stored."""

    media_id: int
    width: int
    height: int
    renditions: tuple[Rendition, ...]
    placeholder: str
    duration_ms: int | None = None
    owner_id: int | None = None  # whose key seals the renditions in the log; else the media row's owner


def _outcome_wanted(media: Row | None) -> bool:
    """Record an outcome unless one is already in. A row not (yet) in this read model is
    recorded anyway: the projection decides, and ignores outcomes for erased media."""
    return media is None or media["status"] == PROCESSING


def decide_processed(media: Row | None, facts: ProcessedFacts, meta: Meta) -> Decision:
    if not facts.renditions:
        raise Invalid("a processed media needs at least one rendition", code="no_renditions")
    if not _outcome_wanted(media):
        return Decision([], body={"id": str(facts.media_id), "recorded": False})
    owner_id = facts.owner_id if facts.owner_id is not None or media is None else int(media["owner_id"])
    event = MediaProcessed(
        **meta.envelope(facts.media_id),
        media_id=facts.media_id,
        owner_id=owner_id,
        width=facts.width,
        height=facts.height,
        renditions=facts.renditions,
        placeholder=facts.placeholder,
        duration_ms=facts.duration_ms,
    )
    return Decision([event], body={"id": str(facts.media_id), "recorded": True})


def decide_failed(media: Row | None, media_id: int, reason: str, meta: Meta) -> Decision:
    if not _outcome_wanted(media):
        return Decision([], body={"id": str(media_id), "recorded": False})
    text = " ".join(reason.split())[:MAX_REASON_CHARS] or "the media could not be processed"
    event = MediaFailed(**meta.envelope(media_id), media_id=media_id, reason=text)
    return Decision([event], body={"id": str(media_id), "recorded": True})


def record_processed(ctx: CommandContext, facts: ProcessedFacts) -> Decision:
    return decide_processed(ctx.read.get(MEDIA.name, {"media_id": facts.media_id}), facts, ctx.meta)


def record_failed(ctx: CommandContext, media_id: int, reason: str) -> Decision:
    return decide_failed(ctx.read.get(MEDIA.name, {"media_id": media_id}), media_id, reason, ctx.meta)
