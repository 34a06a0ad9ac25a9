"""Events to bytes and back, with each person's data sealed by that person's key.

The fields an event class lists in `PERSONAL` are written to the log as
`{"sealed": "<base64 of nonce + AES-256-GCM ciphertext>"}`, under the key of the
subject the event names (`SUBJECT`). The associated data binds each ciphertext to its
event type, event id and field, so a sealed value cannot be moved to another event.
Decoding opens them again; once the key is erased each reads as the class's erased
value (an empty caption, no renditions), so every consumer, replays included, keeps
working and no read model can show the data again.

Idempotent command results are sealed the same way, under the actor's key: a retry
replays them, and after erasure nothing can.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from events.union import EVENT_CLASSES, Event, decode, decode_parsed, encode
from infra.personal_data.keys import SubjectKeys

NONCE_BYTES = 12
SEALED = "sealed"
SEALED_MARK = b'{"sealed":'  # cannot occur inside a JSON string (its quotes would be escaped)
_RESULT_MAGIC = b"GS1\x00"


class SealedDataError(ValueError):
    """A sealed value that its own key cannot open: the log or the key store is corrupt."""


class EventCodec:
    """`keys` None: a codec that never seals (tests, tools on logs without personal keys)."""

    def __init__(self, keys: SubjectKeys | None) -> None:
        self._keys = keys
        self._ciphers: dict[bytes, AESGCM] = {}

    def _cipher(self, key: bytes) -> AESGCM:
        cipher = self._ciphers.get(key)
        if cipher is None:
            if len(self._ciphers) > 100_000:
                self._ciphers.clear()
            cipher = self._ciphers[key] = AESGCM(key)
        return cipher

    # -- events ----------------------------------------------------------------
    def encode(self, event: Event) -> bytes:
        subject = _subject(event)
        if self._keys is None or subject is None:
            return encode(event)
        return self._encode_sealed(event, self._keys.key(subject, create=True))

    def encode_many(self, events: Sequence[Event]) -> list[bytes]:
        """`encode` each, with every subject's key fetched (or made) at once."""
        subjects = {s for s in map(_subject, events) if s is not None}
        if self._keys is None or not subjects:
            return [encode(e) for e in events]
        keys = self._keys.many(subjects, create=True)
        out = []
        for event in events:
            subject = _subject(event)
            out.append(encode(event) if subject is None else self._encode_sealed(event, keys[subject]))
        return out

    def _encode_sealed(self, event: Event, key: bytes | None) -> bytes:
        personal = type(event).PERSONAL
        raw = event.model_dump(mode="json")
        for field, erased in personal.items():
            value = raw.get(field)
            if value is None:
                continue  # "unchanged" in a partial update: nothing to seal
            if key is None:
                # The person was erased already (a late outcome of their upload): never write it readable.
                raw[field] = list(erased) if isinstance(erased, tuple) else erased
            else:
                raw[field] = {SEALED: self._seal(key, orjson.dumps(value), _aad(raw, field))}
        return orjson.dumps(raw)

    def decode(self, data: bytes | str) -> Event:
        blob = data.encode() if isinstance(data, str) else data
        if SEALED_MARK not in blob:
            return decode(blob)
        raw: dict[str, Any] = orjson.loads(blob)
        cls: Any = EVENT_CLASSES.get(raw.get("type"))  # type: ignore[arg-type]
        if cls is None:
            return decode(blob)  # refuses the unknown type loudly
        if self._keys is None:
            raise SealedDataError("this log holds sealed personal data: open it with its key store")
        subject = raw.get(cls.SUBJECT)
        key = self._keys.key(int(subject), create=False) if subject is not None else None
        for field, erased in cls.PERSONAL.items():
            value = raw.get(field)
            if not (isinstance(value, dict) and SEALED in value):
                continue
            raw[field] = erased if key is None else orjson.loads(self._open(key, value[SEALED], _aad(raw, field)))
        return decode_parsed(raw)

    # -- idempotent results ------------------------------------------------------
    def seal_result(self, subject: int | None, body: bytes) -> bytes:
        if self._keys is None or subject is None:
            return body
        key = self._keys.key(subject, create=True)
        if key is None:
            return b""  # an erased actor's answer: nothing to keep
        return _RESULT_MAGIC + subject.to_bytes(8, "big", signed=True) + self._seal_bytes(key, body, b"result")

    def open_result(self, stored: bytes) -> bytes | None:
        """The stored answer, or None once its actor was erased."""
        if not stored.startswith(_RESULT_MAGIC):
            return stored
        if self._keys is None:
            return None
        head = len(_RESULT_MAGIC)
        subject = int.from_bytes(stored[head : head + 8], "big", signed=True)
        key = self._keys.key(subject, create=False)
        return None if key is None else self._open_bytes(key, stored[head + 8 :], b"result")

    # -- erasure -----------------------------------------------------------------
    def erase(self, subject: int) -> None:
        if self._keys is not None:
            self._keys.erase(subject)

    # -- AES-GCM ---------------------------------------------------------------
    def _seal(self, key: bytes, plain: bytes, aad: bytes) -> str:
        return base64.b64encode(self._seal_bytes(key, plain, aad)).decode()

    def _open(self, key: bytes, sealed: object, aad: bytes) -> bytes:
        if not isinstance(sealed, str):
            raise SealedDataError("a sealed value must be a base64 string")
        return self._open_bytes(key, base64.b64decode(sealed), aad)

    def _seal_bytes(self, key: bytes, plain: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._cipher(key).encrypt(nonce, plain, aad)

    def _open_bytes(self, key: bytes, sealed: bytes, aad: bytes) -> bytes:
        try:
            return self._cipher(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError) as exc:
            raise SealedDataError(f"a sealed value does not open with its subject's key ({exc!r})") from exc


def _subject(event: Event) -> int | None:
    """Whose personal data the event holds, if it holds any."""
    cls = type(event)
    subject = getattr(event, cls.SUBJECT, None) if cls.PERSONAL else None
    return None if subject is None else int(subject)


def _aad(raw: dict[str, Any], field: str) -> bytes:
    return f"{raw.get('type')}/{raw.get('event_id')}/{field}".encode()


PLAIN = EventCodec(None)
