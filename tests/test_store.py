"""ptero.store: embed/embed_locations.json, written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ptero.store import EmbedLocation, EmbedStore


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


@pytest.mark.parametrize(
    "content", ['{"a": ', "[]", '{"x": {"channel_id": "1"}}', '{"../x": {}}', "\xff\xfe"]
)
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
