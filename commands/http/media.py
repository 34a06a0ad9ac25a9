"""Command route: upload a photo or video (multipart `file`).

The body is read by hand rather than through FastAPI's `File()` so that its size is
bounded while it arrives (413 before spooling an unbounded body to disk), and so
that the declared content type of the part is never trusted: the bytes decide.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from commands import media
from commands.errors import Invalid, TooLarge, Unsupported
from infra.http.deps import Actor, C, Consistent, IdempotencyKey, run_command
from infra.media.probe import probe

router = APIRouter(tags=["media"], dependencies=[Consistent])

# Room for the multipart boundaries and part headers around the file itself.
MULTIPART_OVERHEAD = 64 * 1024


class MediaAccepted(BaseModel):
    id: str
    status: str


UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"the file is larger than {limit} bytes", code="file_too_large")


async def read_upload(request: Request, max_bytes: int) -> bytes:
    """The bytes of the multipart part named `file`, at most `max_bytes` of them."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise Unsupported("send the file as multipart/form-data in a part named 'file'", code="multipart_required")
    limit = max_bytes + MULTIPART_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(max_bytes)

    async def replay() -> Any:
        yield bytes(body)

    try:
        form = await MultiPartParser(request.headers, replay(), max_files=1, max_fields=4).parse()
    except MultiPartException as exc:
        raise Invalid(f"malformed multipart body: {exc.message}", code="invalid_multipart") from None
    try:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise Invalid("the multipart body needs a file part named 'file'", code="file_required")
        data = await part.read(max_bytes + 1)
    finally:
        await form.close()
    if not data:
        raise Invalid("the file is empty", code="empty_file")
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data


@router.post(
    "/v1/media",
    status_code=202,
    response_model=MediaAccepted,
    openapi_extra=UPLOAD_BODY,
    responses={413: {"description": "file too large"}, 415: {"description": "not a supported image or video"}},
)
async def upload_media(request: Request, actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    data = await read_upload(request, c.settings.max_upload_bytes)
    probed = await run_in_threadpool(probe, data, c.settings.max_image_pixels)
    # From here to the append there is no await: in the embedded mode nothing else runs
    # in between, so the blob collector cannot remove a shared blob under our feet.
    if not c.media.exists(probed.storage_key):
        c.media.put(probed.storage_key, data, probed.content_type)
    return run_command(
        c,
        "upload_media",
        lambda ctx: media.upload(ctx, probed),
        actor=actor,
        key=key,
        payload={"sha256": probed.sha256, "size": probed.size_bytes},
    )
