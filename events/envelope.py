"""The envelope every event carries, and the base class of all events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class EventBase(BaseModel):
    """Frozen: an event is a fact that already happened and never changes.

    Subclasses add `type: Literal[...]` and `version: Literal[...]` and their payload.
    `STREAM` names the stream (Kafka topic suffix) the event belongs to.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    STREAM: ClassVar[str] = ""
    # A person's data (profile fields, captions, comments, media keys) is sealed in the
    # log with a key of that person, kept outside the log and deleted with the account
    # (crypto-shredding: infra/personal_data/). PERSONAL maps each such field to what
    # it reads as once its key is gone; SUBJECT names the field holding whose data it is.
    PERSONAL: ClassVar[Mapping[str, object]] = {}
    SUBJECT: ClassVar[str] = ""

    event_id: int
    occurred_at: datetime
    actor_id: int | None
    aggregate_id: int
    causation_id: int | None = None
    correlation_id: int | None = None
    idempotency_key: str | None = None
