"""Where each server's status card lives, and what it showed: embed/embed_locations.json.

The file is ``{"<server identifier>": {"channel_id": "<id>", "message_id": "<id>", "shown": {...},
"last_action": {...}}}``; ``shown`` and ``last_action`` are optional, so a file from an older version
loads as it is. Ids are written as strings (JavaScript-safe) and read as strings or integers only.

Every save writes a temporary file beside the real file (the link's target, when the path is a
symlink), fsyncs it, gives it the old file's mode and renames it over, so a crash (even SIGKILL)
mid-write leaves the previous or the new file, never a torn one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import stat
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ptero.panel.models import IDENTIFIER

log = logging.getLogger(__name__)

NEW_FILE_MODE = 0o644  # readable by a container's user after a chown of the folder only


class StoreUnreadable(Exception):
    """The file exists but cannot be read (permissions, a folder in its place): start-up must stop."""


@dataclass(frozen=True, slots=True)
class EmbedLocation:
    channel_id: int
    message_id: int


@dataclass(frozen=True, slots=True)
class ShownState:
    """What a card showed when it was last edited: all the update rules need after a restart."""

    state: str
    cpu: float
    edited_at: float  # unix time (the monotonic clock does not survive a restart)
    fingerprint: str


@dataclass(frozen=True, slots=True)
class LastAction:
    """The last power action pressed on a card's buttons."""

    action: str
    user_id: int
    user_name: str
    at: float  # unix time


@dataclass(frozen=True, slots=True)
class CardEntry:
    location: EmbedLocation
    shown: ShownState | None = None
    last_action: LastAction | None = None


def _snowflake(value: Any) -> int:
    """A Discord id written as a string of digits or an integer; never a bool, float or word."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"not an id: {value!r}")
    if isinstance(value, str) and not value.isdigit():
        raise ValueError(f"not an id: {value!r}")
    number = int(value)
    if not 0 < number < 1 << 64:
        raise ValueError(f"not an id: {value!r}")
    return number


def _real(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def _text(value: Any, limit: int = 200) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"not a short text: {str(value)[:40]!r}")
    return value


def _parse_entry(raw: Any) -> CardEntry:
    if not isinstance(raw, dict):
        raise ValueError("not an object")
    location = EmbedLocation(_snowflake(raw.get("channel_id")), _snowflake(raw.get("message_id")))
    shown = last = None
    with contextlib.suppress(
        ValueError, TypeError, AttributeError, KeyError
    ):  # optional: a bad one is left out
        s = raw["shown"]
        shown = ShownState(_text(s["state"]), _real(s["cpu"]), _real(s["edited_at"]), _text(s["fingerprint"]))
    with contextlib.suppress(ValueError, TypeError, AttributeError, KeyError):
        a = raw["last_action"]
        last = LastAction(
            _text(a["action"], 20), _snowflake(a["user_id"]), _text(a["user_name"]), _real(a["at"])
        )
    return CardEntry(location, shown, last)


def _dump_entry(entry: CardEntry) -> dict[str, Any]:
    data: dict[str, Any] = {
        "channel_id": str(entry.location.channel_id),
        "message_id": str(entry.location.message_id),
    }
    if entry.shown is not None:
        s = entry.shown
        data["shown"] = {
            "state": s.state,
            "cpu": s.cpu,
            "edited_at": s.edited_at,
            "fingerprint": s.fingerprint,
        }
    if entry.last_action is not None:
        a = entry.last_action
        data["last_action"] = {
            "action": a.action,
            "user_id": str(a.user_id),
            "user_name": a.user_name,
            "at": a.at,
        }
    return data


class EmbedStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, CardEntry] = {}
        self.dirty = False  # changed in memory since the last save

    # -- reading ----------------------------------------------------------------------------------
    def load(self) -> None:
        """Load the file. Unreadable: StoreUnreadable, the file untouched. Not JSON (a torn or
        hand-damaged file): moved aside, start empty. A bad entry: dropped with a warning."""
        self._entries = {}
        target = self._target()
        for leftover in target.parent.glob(".embed_locations-*.tmp"):  # from a crash mid-write
            with contextlib.suppress(OSError):
                leftover.unlink()
        if not self.path.exists():
            return
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            self._move_aside(exc)
            return
        except OSError as exc:
            raise StoreUnreadable(
                f"{self.path} cannot be read ({exc.strerror or exc}); fix its owner or mode"
            ) from exc
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("the top level is not an object")
        except ValueError as exc:
            self._move_aside(exc)
            return
        self._entries = self._valid_entries(data)
        log.info("Loaded %d status message location(s) from %s", len(self._entries), self.path)

    @staticmethod
    def inspect(path: Path) -> tuple[dict[str, EmbedLocation], str | None, int]:
        """Read the file as load() would, changing nothing (for ``--check``): the cards' locations by
        server, what is wrong with the file and what a start would do about it (None when nothing),
        and how many entries load() would drop. A missing file is fine: there are no cards yet."""
        moved = "a normal start would move it aside and begin with no cards"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}, None, 0
        except UnicodeDecodeError:
            return {}, f"{path} is not text (not UTF-8): {moved}", 0
        except OSError as exc:
            return {}, f"{path} cannot be read ({exc.strerror or exc}): a normal start would stop here", 0
        try:
            data = json.loads(text)
        except ValueError as exc:
            return {}, f"{path} is not valid JSON ({exc}): {moved}", 0
        if not isinstance(data, dict):
            return {}, f"{path} is not valid (the top level is not an object): {moved}", 0
        cards: dict[str, EmbedLocation] = {}
        for server_id, raw in data.items():
            if IDENTIFIER.fullmatch(server_id) and not server_id.startswith("_"):
                with contextlib.suppress(ValueError):
                    cards[server_id] = _parse_entry(raw).location
        return cards, None, len(data) - len(cards)

    def _valid_entries(self, data: Mapping[str, Any]) -> dict[str, CardEntry]:
        entries = {}
        for server_id, raw in data.items():
            if not IDENTIFIER.fullmatch(server_id) or server_id.startswith("_"):
                log.warning(
                    "%s: ignored the key %r (not a server identifier)", self.path.name, server_id[:80]
                )
                continue
            try:
                entries[server_id] = _parse_entry(raw)
            except ValueError as exc:
                log.warning("%s: dropped the entry of %s (%s)", self.path.name, server_id, exc)
        return entries

    def _move_aside(self, exc: Exception) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        with contextlib.suppress(OSError):
            os.replace(self._target(), aside)
        log.warning(
            "%s could not be read (%s); moved it to %s and starting with no status messages",
            self.path,
            exc,
            aside.name,
        )

    # -- writing ----------------------------------------------------------------------------------
    def save(self) -> bool:
        """Write the file; on failure log it, keep the old file and the entries in memory, return False."""
        try:
            self._write()
        except OSError as exc:
            log.error("Could not save %s (%s); card locations are kept in memory only", self.path, exc)
            return False
        self.dirty = False
        return True

    def flush(self) -> bool:
        """Save if anything changed since the last save."""
        return self.save() if self.dirty else True

    def _target(self) -> Path:
        """The file really written: a symlink's target, so the link stays a link."""
        return self.path.resolve() if self.path.is_symlink() else self.path

    def _write(self) -> None:
        data = {server_id: _dump_entry(entry) for server_id, entry in sorted(self._entries.items())}
        target = self._target()
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            mode = NEW_FILE_MODE
        fd, tmp_name = tempfile.mkstemp(prefix=".embed_locations-", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2)
                fh.flush()
                os.fchmod(fh.fileno(), mode)
                os.fsync(fh.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    # -- entries ----------------------------------------------------------------------------------
    def entry(self, server_id: str) -> CardEntry | None:
        return self._entries.get(server_id)

    def get(self, server_id: str) -> EmbedLocation | None:
        entry = self._entries.get(server_id)
        return entry.location if entry else None

    def put(self, server_id: str, entry: CardEntry) -> None:
        """Change an entry in memory; it is written by the next save() or flush()."""
        if self._entries.get(server_id) != entry:
            self._entries[server_id] = entry
            self.dirty = True

    def update(self, server_id: str, **changes: Any) -> None:
        """Change fields of an existing entry in memory (shown=..., last_action=...)."""
        entry = self._entries.get(server_id)
        if entry is not None:
            self.put(server_id, replace(entry, **changes))

    def set(self, server_id: str, location: EmbedLocation) -> bool:
        """Remember a server's (new) card and save now; False when the file could not be written."""
        old = self._entries.get(server_id)
        self._entries[server_id] = CardEntry(location, last_action=old.last_action if old else None)
        return self.save()

    def remove(self, server_id: str, expected: EmbedLocation | None = None) -> bool:
        """Forget a server's card (only if it is still ``expected``, when given) and save."""
        current = self._entries.get(server_id)
        if current is None or (expected is not None and current.location != expected):
            return False
        del self._entries[server_id]
        self.save()
        return True

    def items(self) -> list[tuple[str, EmbedLocation]]:
        return [(server_id, entry.location) for server_id, entry in self._entries.items()]

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, server_id: object) -> bool:
        return server_id in self._entries
