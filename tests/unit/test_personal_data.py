"""Sealing personal fields in the log (infra/personal_data/): codec, key stores, results."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from events.accounts import AccountRegistered, ProfileUpdated
from events.engagement import Commented, Liked
from events.media import MediaProcessed, MediaUploaded, Rendition
from events.posts import PostCreated
from events.union import EVENT_CLASSES, Event, decode
from infra.personal_data.codec import PLAIN, EventCodec, SealedDataError
from infra.personal_data.keys import CachedSubjectKeys, MemorySubjectKeys, SqliteSubjectKeys
from infra.storage.memory_eventlog import MemoryEventLog
from tests.contracts.subject_keys_contract import SubjectKeysContract

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def env(event_id: int, aggregate: int, actor: int | None = 7) -> dict[str, Any]:
    return {"event_id": event_id, "occurred_at": AT, "actor_id": actor, "aggregate_id": aggregate}


ALICE = 7
SAMPLES: list[Event] = [
    AccountRegistered(**env(1, ALICE), user_id=ALICE, username="alice", password_hash="$argon2$x", display_name="Al"),
    ProfileUpdated(**env(2, ALICE), user_id=ALICE, bio="I live at 1 Main St", private=True),
    PostCreated(
        **env(3, 30), post_id=30, author_id=ALICE, caption="my kid's school", media_ids=(40,), audience="public"
    ),
    Commented(**env(4, 30), comment_id=4, post_id=30, author_id=ALICE, post_author_id=9, text="call me on 555"),
    MediaUploaded(
        **env(5, 40),
        media_id=40,
        owner_id=ALICE,
        storage_key="originals/ab/abcd.jpg",
        content_type="image/jpeg",
        kind="image",
        width=10,
        height=10,
        size_bytes=100,
        sha256="abcd" * 16,
    ),
    MediaProcessed(
        **env(6, 40, None),
        media_id=40,
        owner_id=ALICE,
        width=10,
        height=10,
        renditions=(Rendition(key="renditions/ef/ef01.webp", width=10, height=10, format="webp"),),
        placeholder="data:image/webp;base64,SECRET",
    ),
]
SECRETS = [b"alice", b"argon2", b'Al"', b"Main St", b"kid", b"555", b"abcd", b"ef01", b"SECRET"]


def test_every_event_class_names_its_subject_when_it_has_personal_fields() -> None:
    for kind, cls in EVENT_CLASSES.items():
        personal = cls.PERSONAL  # type: ignore[attr-defined]
        if personal:
            assert cls.SUBJECT in cls.model_fields, kind  # type: ignore[attr-defined]
            assert set(personal) <= set(cls.model_fields), kind  # type: ignore[attr-defined]


def test_sealed_events_round_trip_and_hide_their_personal_fields() -> None:
    codec = EventCodec(MemorySubjectKeys())
    for event in SAMPLES:
        data = codec.encode(event)
        assert codec.decode(data) == event
        assert not [s for s in SECRETS if s in data], (event.type, data)
        assert b'"sealed"' in data


def test_a_batch_is_sealed_as_each_event_alone_and_an_erased_subject_stays_unreadable() -> None:
    keys = MemorySubjectKeys()
    codec = EventCodec(keys)
    like = Liked(**env(9, 30), post_id=30, user_id=ALICE, post_author_id=9)
    late = SAMPLES[5].model_copy(update={"owner_id": ALICE + 1})  # an outcome after its owner's erasure
    codec.erase(ALICE + 1)
    batch = [*SAMPLES[:5], like, late]
    stored = codec.encode_many(batch)
    assert [codec.decode(d) for d in stored[:6]] == batch[:6]
    assert stored[5] == codec.encode(like)  # plain, as alone
    assert b"ef01" not in stored[6] and b"SECRET" not in stored[6]
    assert not [s for d in stored for s in SECRETS if s in d]


def test_events_without_personal_fields_stay_plain_json() -> None:
    codec = EventCodec(MemorySubjectKeys())
    like = Liked(**env(9, 30), post_id=30, user_id=ALICE, post_author_id=9)
    assert codec.encode(like) == like.model_dump_json().encode()
    assert codec.decode(codec.encode(like)) == like


def test_after_erasure_personal_fields_read_as_erased_and_the_rest_is_intact() -> None:
    codec = EventCodec(MemorySubjectKeys())
    stored = [codec.encode(e) for e in SAMPLES]
    codec.erase(ALICE)
    erased = [codec.decode(d) for d in stored]
    assert erased[0].username == "" and erased[0].display_name == "" and erased[0].password_hash == ""  # type: ignore[union-attr]
    assert erased[1].bio == "" and erased[1].private is True and erased[1].display_name is None  # type: ignore[union-attr]
    assert erased[2].caption == "" and erased[2].media_ids == (40,)  # type: ignore[union-attr]
    assert erased[3].text == ""  # type: ignore[union-attr]
    assert erased[4].storage_key == "" and erased[4].sha256 == "" and erased[4].width == 10  # type: ignore[union-attr]
    assert erased[5].renditions == () and erased[5].placeholder == ""  # type: ignore[union-attr]


def test_an_erased_person_is_never_sealed_again_and_never_written_readable() -> None:
    codec = EventCodec(MemorySubjectKeys())
    codec.erase(ALICE)
    late = SAMPLES[5]  # a media outcome arriving after the deletion
    data = codec.encode(late)
    assert b"ef01" not in data and b"SECRET" not in data
    assert codec.decode(data).renditions == ()  # type: ignore[union-attr]


def test_a_sealed_value_cannot_be_moved_to_another_event() -> None:
    codec = EventCodec(MemorySubjectKeys())
    post = orjson.loads(codec.encode(SAMPLES[2]))
    other = orjson.loads(codec.encode(SAMPLES[2].model_copy(update={"event_id": 99})))
    other["caption"] = post["caption"]
    with pytest.raises(SealedDataError):
        codec.decode(orjson.dumps(other))


def test_a_codec_without_keys_refuses_sealed_data_instead_of_guessing() -> None:
    data = EventCodec(MemorySubjectKeys()).encode(SAMPLES[2])
    with pytest.raises(SealedDataError):
        PLAIN.decode(data)
    assert PLAIN.encode(SAMPLES[2]) == SAMPLES[2].model_dump_json().encode()


def test_unsealed_logs_written_before_sealing_still_read() -> None:
    codec = EventCodec(MemorySubjectKeys())
    assert codec.decode(SAMPLES[2].model_dump_json()) == SAMPLES[2]


def test_unknown_types_are_still_refused_loudly() -> None:
    codec = EventCodec(MemorySubjectKeys())
    with pytest.raises(ValueError):
        codec.decode(b'{"type":"Nope","version":1,"x":{"sealed":"AAAA"}}')


def test_sealed_events_decode_through_upcasters() -> None:
    codec = EventCodec(MemorySubjectKeys())
    raw = orjson.loads(codec.encode(SAMPLES[5]))
    raw["version"] = 1
    del raw["owner_id"]  # v1 named no owner, so it was never sealed: rebuild it in the clear
    raw["renditions"] = [{"key": "renditions/ef/ef01.webp", "width": 10, "height": 10, "format": "webp"}]
    raw["placeholder"] = "data:,"
    old = codec.decode(orjson.dumps(raw))
    assert old == decode(orjson.dumps(raw))
    assert old.owner_id is None and old.version == 2  # type: ignore[union-attr]


def test_idempotent_results_are_sealed_under_the_actor_and_gone_with_them() -> None:
    codec = EventCodec(MemorySubjectKeys())
    body = b'{"caption":"my kid\'s school"}'
    sealed = codec.seal_result(ALICE, body)
    assert b"kid" not in sealed
    assert codec.open_result(sealed) == body
    assert codec.open_result(codec.seal_result(None, body)) == body
    codec.erase(ALICE)
    assert codec.open_result(sealed) is None


def test_a_log_replays_stored_answers_until_the_actor_is_erased() -> None:
    from commands.ports import StoredResult

    log = MemoryEventLog()
    log.append([SAMPLES[2]], result=StoredResult("7:post:k", "fp", 201, b'{"caption":"kid"}', "", ALICE))
    stored = log.stored_result("7:post:k")
    assert stored is not None and stored.body == b'{"caption":"kid"}'
    log.codec.erase(ALICE)
    assert log.stored_result("7:post:k") is None
    assert log.read(0, 10)[0][1].caption == ""  # type: ignore[union-attr]


def test_the_cache_forgets_an_erased_key_at_once_and_others_after_ttl() -> None:
    now = [0.0]
    inner = MemorySubjectKeys()
    mine = CachedSubjectKeys(inner, ttl=10, clock=lambda: now[0])
    theirs = CachedSubjectKeys(inner, ttl=10, clock=lambda: now[0])
    key = mine.key(ALICE, create=True)
    assert theirs.key(ALICE, create=False) == key
    mine.erase(ALICE)
    assert mine.key(ALICE, create=True) is None
    assert theirs.key(ALICE, create=False) == key  # another process's cache, within its ttl
    now[0] = 11
    assert theirs.key(ALICE, create=False) is None


class TestMemorySubjectKeys(SubjectKeysContract):
    def make(self) -> Any:
        return MemorySubjectKeys()


class TestSqliteSubjectKeys(SubjectKeysContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.path = tmp_path / "keys.db"

    def make(self) -> Any:
        return SqliteSubjectKeys(self.path)

    def test_keys_survive_a_restart_and_erased_bytes_leave_the_file(self) -> None:
        keys = SqliteSubjectKeys(self.path)
        key = keys.key(ALICE, create=True)
        assert key is not None
        keys.close()
        again = SqliteSubjectKeys(self.path)
        assert again.key(ALICE, create=False) == key
        again.erase(ALICE)
        again.close()
        assert key not in self.path.read_bytes()  # secure_delete: not left in a free page


class TestCachedSubjectKeys(SubjectKeysContract):
    def make(self) -> Any:
        return CachedSubjectKeys(MemorySubjectKeys())


def test_a_data_dir_with_sealed_events_and_no_key_store_is_refused(tmp_path: Path) -> None:
    from infra.personal_data.wiring import KEYS_FILE, MissingKeyStore, embedded_codec
    from infra.storage.sqlite_eventlog import SqliteEventLog

    embedded_codec(tmp_path)  # a new data dir: fine
    log = SqliteEventLog(tmp_path / "events.db", embedded_codec(tmp_path))
    log.append([SAMPLES[2]])
    log.close()
    assert SqliteEventLog(tmp_path / "events.db", embedded_codec(tmp_path)).read(0, 1)[0][1] == SAMPLES[2]
    (tmp_path / KEYS_FILE).unlink()
    with pytest.raises(MissingKeyStore):
        embedded_codec(tmp_path)
