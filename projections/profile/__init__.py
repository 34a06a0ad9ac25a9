"""Accounts and profiles: who exists, their public fields, and username lookup."""

from __future__ import annotations

from events.accounts import AccountDeleted, AccountRegistered, ProfileUpdated
from events.union import Event
from projections.projection import Projection
from projections.store import Delete, Op, Patch, Put, ReadModel, Row, Table

ACCOUNTS = Table(
    "accounts",
    partition=("user_id",),
    values=("username", "display_name", "bio", "private", "password_hash", "created_id"),
    types={"username": str, "display_name": str, "bio": str, "private": bool, "password_hash": str},
)
USERNAMES = Table("usernames", partition=("username",), values=("user_id",), types={"username": str})


def project(event: Event, read: ReadModel) -> list[Op]:
    match event:
        case AccountRegistered():
            return [
                Put(
                    ACCOUNTS.name,
                    {
                        "user_id": event.user_id,
                        "username": event.username,
                        "display_name": event.display_name,
                        "bio": "",
                        "private": False,
                        "password_hash": event.password_hash,
                        "created_id": event.event_id,
                    },
                ),
                Put(USERNAMES.name, {"username": event.username, "user_id": event.user_id}),
            ]
        case ProfileUpdated():
            changes: Row = {
                k: v
                for k, v in {
                    "display_name": event.display_name,
                    "bio": event.bio,
                    "private": event.private,
                }.items()
                if v is not None
            }
            return [Patch(ACCOUNTS.name, {"user_id": event.user_id}, changes)] if changes else []
        case AccountDeleted():
            return [
                Delete(ACCOUNTS.name, {"user_id": event.user_id}),
                Delete(USERNAMES.name, {"username": event.username}),
            ]
    return []


PROJECTION = Projection("profile", 1, (ACCOUNTS, USERNAMES), project)
