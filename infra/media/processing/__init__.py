"""Media processing: bytes of an upload in, renditions out, under explicit limits.

Nothing here knows about events, stores or threads, so the embedded worker
(infra/media/worker.py) and a Kafka consumer of the scale stack run the same code.
"""

from infra.media.processing.image import EncodedRendition
from infra.media.processing.limits import Deadline, MediaRejected, ProcessingLimits, ProcessingUnavailable
from infra.media.processing.pipeline import ProcessedMedia, process_media

__all__ = [
    "Deadline",
    "EncodedRendition",
    "MediaRejected",
    "ProcessedMedia",
    "ProcessingLimits",
    "ProcessingUnavailable",
    "process_media",
]
