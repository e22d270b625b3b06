"""ptero.runtime: the redacting log formatter, the healthcheck, the writable-folder check."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ptero.runtime import RedactingFormatter, check_writable, healthcheck, write_heartbeat

SECRET = "ptlc_" + "s" * 43


def test_formatter_redacts_secrets_in_messages_and_tracebacks() -> None:
    formatter = RedactingFormatter("%(levelname)s %(message)s", [SECRET, ""])
    try:
        raise RuntimeError(f"key {SECRET} refused")
    except RuntimeError as exc:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "sent %s", (SECRET,), (type(exc), exc, None)
        )
    text = formatter.format(record)
    assert SECRET not in text
    assert text.count("[redacted]") == 2  # the message and the exception line


def test_healthcheck_reads_the_heartbeat(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat.json"
    assert healthcheck(path) == 1  # no heartbeat yet
    write_heartbeat(path, 10.0)
    data = json.loads(path.read_text())
    assert healthcheck(path, now=data["at"] + 5) == 0
    assert healthcheck(path, now=data["at"] + 3 * 10 + 61) == 1  # three intervals and a minute: stale
    path.write_text("{not json")
    assert healthcheck(path) == 1


def test_check_writable_creates_folders_and_names_the_bad_ones(tmp_path: Path) -> None:
    assert check_writable(tmp_path / "embed", tmp_path / "logs") == []
    assert (tmp_path / "embed").is_dir() and (tmp_path / "logs").is_dir()
    (tmp_path / "file").write_text("not a folder")
    problems = check_writable(tmp_path / "file")
    assert len(problems) == 1 and "file is not writable" in problems[0]
