"""Where each server's status card lives: embed/embed_locations.json, written atomically."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EmbedLocation:
    channel_id: int
    message_id: int


class EmbedStore:
    """Where each server's status message lives, persisted as
    ``{"<server identifier>": {"channel_id": "<id>", "message_id": "<id>"}}``.

    Every save writes a temporary file in the same folder, fsyncs it and renames it over the old
    one, so a crash (even SIGKILL) mid-write leaves the previous or the new file, never a torn one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._locations: dict[str, EmbedLocation] = {}

    def load(self) -> None:
        """Load the file; a corrupt or unreadable one is moved aside and the store starts empty."""
        self._locations = {}
        for leftover in self.path.parent.glob(".embed_locations-*.tmp"):  # from a crash mid-write
            with contextlib.suppress(OSError):
                leftover.unlink()
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("top level is not an object")
            locations = {}
            for server_id, entry in data.items():
                if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", str(server_id)) or not isinstance(entry, dict):
                    raise ValueError(f"bad entry for {server_id!r}")
                locations[str(server_id)] = EmbedLocation(int(entry["channel_id"]), int(entry["message_id"]))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            log.warning(
                "%s could not be read (%s); moved it to %s and starting with no status messages",
                self.path,
                exc,
                aside.name,
            )
            return
        self._locations = locations
        log.info("Loaded %d status message location(s) from %s", len(locations), self.path)

    def save(self) -> bool:
        """Write the file; on failure log it, keep the old file and the locations in memory, return False."""
        try:
            self._write()
        except OSError as exc:
            log.error(
                "Could not save %s (%s); status message locations are kept in memory only", self.path, exc
            )
            return False
        return True

    def _write(self) -> None:
        data = {
            server_id: {"channel_id": str(loc.channel_id), "message_id": str(loc.message_id)}
            for server_id, loc in sorted(self._locations.items())
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".embed_locations-", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def get(self, server_id: str) -> EmbedLocation | None:
        return self._locations.get(server_id)

    def set(self, server_id: str, location: EmbedLocation) -> bool:
        """Remember a server's message and save; False when the file could not be written."""
        self._locations[server_id] = location
        return self.save()

    def remove(self, server_id: str, expected: EmbedLocation | None = None) -> bool:
        """Forget a server's message (only if it is still ``expected``, when given) and save."""
        current = self._locations.get(server_id)
        if current is None or (expected is not None and current != expected):
            return False
        del self._locations[server_id]
        self.save()
        return True

    def items(self) -> list[tuple[str, EmbedLocation]]:
        return list(self._locations.items())

    def __len__(self) -> int:
        return len(self._locations)

    def __contains__(self, server_id: object) -> bool:
        return server_id in self._locations
