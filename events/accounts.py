"""Stream `accounts`: registration, profile, deletion. Keyed by user id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from events.envelope import EventBase


class AccountEvent(EventBase):
    STREAM: ClassVar[str] = "accounts"


class AccountRegistered(AccountEvent):
    PERSONAL: ClassVar[Mapping[str, object]] = {"username": "", "password_hash": "", "display_name": ""}
    SUBJECT: ClassVar[str] = "user_id"

    type: Literal["AccountRegistered"] = "AccountRegistered"
    version: Literal[1] = 1
    user_id: int
    username: str
    password_hash: str
    display_name: str


class ProfileUpdated(AccountEvent):
    """Only the fields that changed are set; None means unchanged."""

    PERSONAL: ClassVar[Mapping[str, object]] = {"display_name": "", "bio": ""}
    SUBJECT: ClassVar[str] = "user_id"

    type: Literal["ProfileUpdated"] = "ProfileUpdated"
    version: Literal[1] = 1
    user_id: int
    display_name: str | None = None
    bio: str | None = None
    private: bool | None = None


class AccountDeleted(AccountEvent):
    """Version 2 no longer names the username: it would stay readable in the log after
    the erasure this event starts (events/upcasting.py drops it from version 1)."""

    type: Literal["AccountDeleted"] = "AccountDeleted"
    version: Literal[2] = 2
    user_id: int
