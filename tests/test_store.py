"""ptero.store: embed/embed_locations.json, written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ptero.store import CardEntry, EmbedLocation, EmbedStore, ShownState, StoreUnreadable


def test_store_round_trip_with_string_ids(tmp_path: Path) -> None:
    path = tmp_path / "embed" / "embed_locations.json"
    store = EmbedStore(path)
    store.load()
    store.set("1a2b3c4d", EmbedLocation(111111111111111111, 222222222222222222))
    raw = json.loads(path.read_text())
    assert raw == {"1a2b3c4d": {"channel_id": "111111111111111111", "message_id": "222222222222222222"}}
    again = EmbedStore(path)
    again.load()
    assert again.get("1a2b3c4d") == EmbedLocation(111111111111111111, 222222222222222222)
    assert again.remove("1a2b3c4d", expected=EmbedLocation(1, 2)) is False  # not the one we expected
    assert again.remove("1a2b3c4d") is True
    assert json.loads(path.read_text()) == {}


def test_store_write_is_atomic_and_leaves_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "embed_locations.json"
    store = EmbedStore(path)
    store.set("aaaa1111", EmbedLocation(1, 2))
    before = path.read_text()

    def crash(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    assert store.set("bbbb2222", EmbedLocation(3, 4)) is False  # reported, not raised
    assert store.get("bbbb2222") == EmbedLocation(3, 4)  # kept in memory for the next save
    assert path.read_text() == before  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["embed_locations.json"]  # temp file cleaned up


@pytest.mark.parametrize("content", ['{"a": ', "[]", '"text"', "\xff\xfe"])
def test_corrupt_store_is_moved_aside_and_bot_starts_empty(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "embed_locations.json"
    path.write_bytes(content.encode("latin-1"))
    store = EmbedStore(path)
    store.load()
    assert len(store) == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("embed_locations.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == content.encode("latin-1")  # nothing lost
    assert not path.exists()
    assert "moved it to" in caplog.text


def test_leftover_temp_files_from_a_crash_are_removed_on_load(tmp_path: Path) -> None:
    path = tmp_path / "embed_locations.json"
    EmbedStore(path).set("aaaa1111", EmbedLocation(1, 2))
    (tmp_path / ".embed_locations-abc123.tmp").write_text('{"half": ')
    store = EmbedStore(path)
    store.load()
    assert store.get("aaaa1111") == EmbedLocation(1, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embed_locations.json"]


# -- hardening (issue 10): unreadable files, bad entries, modes, symlinks, what the rules need -------

GOOD = {"channel_id": "111111111111111111", "message_id": "222222222222222222"}


def test_bad_entries_are_dropped_one_by_one_and_the_good_ones_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "embed_locations.json"
    entries = {
        "_comment": "cards of the community server",
        "good0001": GOOD,
        "../x": GOOD,
        "nochan01": {"message_id": "2"},
        "boolean1": {"channel_id": True, "message_id": "2"},
        "floating": {"channel_id": 1.9, "message_id": "2"},
        "wordy001": {"channel_id": "true", "message_id": "2"},
        "good0002": {"channel_id": 333333333333333333, "message_id": 444444444444444444},
    }
    path.write_text(json.dumps(entries))
    store = EmbedStore(path)
    store.load()
    assert sorted(server_id for server_id, _ in store.items()) == ["good0001", "good0002"]
    assert store.get("good0002") == EmbedLocation(333333333333333333, 444444444444444444)
    for name in ("_comment", "../x", "nochan01", "boolean1", "floating", "wordy001"):
        assert name in caplog.text
    assert path.exists() and not list(tmp_path.glob("*.corrupt-*"))  # nothing moved aside


def test_an_unreadable_store_stops_start_up_and_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "embed_locations.json"
    path.write_text(json.dumps({"good0001": GOOD}))

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(StoreUnreadable, match="Permission denied"):
        EmbedStore(path).load()
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"good0001": GOOD}  # not moved, not emptied
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_a_write_keeps_the_files_mode_and_a_new_file_is_0644(tmp_path: Path) -> None:
    path = tmp_path / "embed_locations.json"
    store = EmbedStore(path)
    store.set("good0001", EmbedLocation(1, 2))
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o640)
    store.set("good0002", EmbedLocation(3, 4))
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_symlinked_store_stays_a_link_and_its_target_is_replaced(tmp_path: Path) -> None:
    elsewhere = tmp_path / "volume"
    elsewhere.mkdir()
    target = elsewhere / "cards.json"
    target.write_text("{}")
    (tmp_path / "embed").mkdir()
    link = tmp_path / "embed" / "embed_locations.json"
    link.symlink_to(target)
    store = EmbedStore(link)
    store.load()
    store.set("good0001", EmbedLocation(1, 2))
    assert link.is_symlink() and link.resolve() == target
    assert json.loads(target.read_text()) == {"good0001": {"channel_id": "1", "message_id": "2"}}
    assert sorted(p.name for p in elsewhere.iterdir()) == ["cards.json"]  # no temp file left


def test_what_a_card_showed_survives_a_restart_and_older_files_still_load(tmp_path: Path) -> None:
    path = tmp_path / "embed_locations.json"
    path.write_text(json.dumps({"old00001": GOOD}))  # a file from before this field existed
    store = EmbedStore(path)
    store.load()
    assert store.entry("old00001") == CardEntry(EmbedLocation(111111111111111111, 222222222222222222))
    shown = ShownState("running", 42.5, 1_764_000_000.0, "ab" * 32)
    store.put("old00001", CardEntry(store.entry("old00001").location, shown))  # type: ignore[union-attr]
    assert store.save()
    again = EmbedStore(path)
    again.load()
    entry = again.entry("old00001")
    assert entry is not None and entry.shown == shown
    raw = json.loads(path.read_text())["old00001"]
    assert raw["channel_id"] == GOOD["channel_id"] and raw["shown"]["state"] == "running"


def test_ids_that_are_not_whole_numbers_are_refused_not_read_as_1(tmp_path: Path) -> None:
    path = tmp_path / "embed_locations.json"
    entries = {
        "good0001": GOOD,
        "boolean1": {"channel_id": True, "message_id": "2"},
        "floating": {"channel_id": 1.9, "message_id": "2"},
    }
    path.write_text(json.dumps(entries))
    store = EmbedStore(path)
    store.load()
    assert [server_id for server_id, _ in store.items()] == ["good0001"]  # not two cards in "channel 1"


def test_the_file_keeps_what_each_card_showed_through_a_load_and_a_save(tmp_path: Path) -> None:
    path = tmp_path / "embed_locations.json"
    shown = {"state": "running", "cpu": 12.5, "edited_at": 1764000000.0, "fingerprint": "f" * 64}
    path.write_text(json.dumps({"good0001": {**GOOD, "shown": shown}, "good0002": GOOD}))
    store = EmbedStore(path)
    store.load()
    store.set("good0002", EmbedLocation(5, 6))  # any save rewrites the whole file
    assert json.loads(path.read_text())["good0001"] == {**GOOD, "shown": shown}
