"""Runtime: the update loop and its log line, the heartbeat and its healthcheck, logging, and running the
bot until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import json
import logging
import logging.handlers
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

import discord

from ptero.config import Settings
from ptero.records import CycleReport
from ptero.store import EmbedStore, StoreUnreadable

log = logging.getLogger(__name__)


class UpdateLoop:
    """Runs ``cycle`` every ``interval`` seconds on the monotonic clock (asyncio's), never the wall
    clock: a wall clock stepped back an hour does not stall it, one stepped forward does not make it
    run the missed cycles back to back. A cycle that overruns is followed by the next one at once,
    then the rhythm resumes. A failing cycle is logged and the loop goes on.
    """

    def __init__(
        self,
        cycle: Callable[[], Awaitable[object]],
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.cycle = cycle
        self.interval = interval
        self._clock, self._sleep = clock, sleep
        self._task: asyncio.Task[None] | None = None

    def start(self, before: Callable[[], Awaitable[object]] | None = None) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(before), name="update-loop")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self, before: Callable[[], Awaitable[object]] | None) -> None:
        if before is not None:
            await before()
        next_at = self._clock()
        while True:
            try:
                await self.cycle()
            except Exception:
                log.exception("Update cycle failed; the next one runs as planned")
            next_at = max(next_at + self.interval, self._clock())
            await self._sleep(max(0.0, next_at - self._clock()))


class CycleLog:
    """One line per update cycle: INFO for the first and for cycles where something happened, DEBUG for
    quiet ones (8,640 lines a day otherwise, kept for ever by Docker's default log driver), and an
    hourly INFO summary, so that a quiet bot still says that it works."""

    SUMMARY_EVERY = 3600.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.cycles = 0
        self._totals = [0, 0, 0, 0]  # cycles, edits, failures, drops since the last summary
        self._summary_at = clock()

    def record(self, report: CycleReport, interval: float) -> None:
        self.cycles += 1
        for i, value in enumerate((1, report.edited, report.failed, report.dropped)):
            self._totals[i] += value
        level = logging.INFO if report.eventful or self.cycles == 1 else logging.DEBUG
        log.log(
            level,
            "Update cycle: %d server(s) checked, %d edited, %d failure(s), %d dropped, %.2f s",
            report.checked,
            report.edited,
            report.failed,
            report.dropped,
            report.seconds,
        )
        if self.clock() - self._summary_at >= self.SUMMARY_EVERY:
            cycles, edits, failures, drops = self._totals
            log.info(
                "In the last hour: %d update cycle(s), %d edit(s), %d failure(s), %d dropped; %d card(s), "
                "checked every %.0f s",
                cycles,
                edits,
                failures,
                drops,
                report.checked,
                interval,
            )
            self._totals, self._summary_at = [0, 0, 0, 0], self.clock()


def write_heartbeat(path: Path | None, interval: float) -> None:
    """The Docker HEALTHCHECK reads this: a fresh file means cycles run and Discord is connected."""
    if path is None:
        return
    data = {"at": time.time(), "interval": interval}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("Could not write the heartbeat file %s: %s", path, exc)


class RedactingFormatter(logging.Formatter):
    """Last line of defence: no log line, traceback included, may carry a token or API key."""

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self._secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text


def setup_logging(settings: Settings, log_dir: Path = Path("logs")) -> None:
    formatter = RedactingFormatter("%(asctime)s %(levelname)-8s %(name)s: %(message)s", settings.secrets)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_dir / "pterodisbot.log", maxBytes=5 * 1024 * 1024, backupCount=3, encoding="utf-8"
            )
        )
    except OSError as exc:
        print(f"Logging to stderr only: cannot write to {log_dir}: {exc}", file=sys.stderr)
    root = logging.getLogger()
    root.handlers.clear()
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(settings.log_level)
    logging.getLogger("discord").setLevel(max(logging.INFO, logging.getLevelName(settings.log_level)))
    logging.getLogger("discord.http").setLevel(logging.WARNING)
    for noisy in ("matplotlib", "PIL", "asyncio"):  # their DEBUG lines are about themselves, not the bot
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(settings.log_level)))


def healthcheck(path: Path = Path("logs") / "heartbeat.json", now: float | None = None) -> int:
    """Exit status for Docker's HEALTHCHECK: 0 when an update cycle finished recently."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        age = (time.time() if now is None else now) - float(data["at"])
        allowed = 3 * float(data["interval"]) + 60
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"unhealthy: no readable heartbeat at {path} ({exc})")
        return 1
    if age > allowed:
        print(f"unhealthy: last update cycle {age:.0f} s ago (allowed {allowed:.0f} s)")
        return 1
    print(f"healthy: last update cycle {age:.0f} s ago")
    return 0


async def run_bot(bot: discord.Client, token: str) -> None:
    """Run ``bot`` until SIGINT or SIGTERM, then close it cleanly."""
    loop = asyncio.get_running_loop()
    async with bot:
        runner = asyncio.ensure_future(bot.start(token))

        async def shutdown(signum: int) -> None:
            log.info("Received %s; shutting down", signal.Signals(signum).name)
            await bot.close()
            runner.cancel()  # also ends a reconnect back-off sleep during a Discord outage

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, _on_signal, loop, shutdown, signum)
        with contextlib.suppress(asyncio.CancelledError):
            await runner


def _on_signal(
    loop: asyncio.AbstractEventLoop, shutdown: Callable[[int], Coroutine[None, None, None]], signum: int
) -> None:
    _keep(loop.create_task(shutdown(signum)))


_background: set[asyncio.Task[None]] = set()


def _keep(task: asyncio.Task[None]) -> None:
    """Hold a reference to a fire-and-forget task until it finishes."""
    _background.add(task)
    task.add_done_callback(_background.discard)


def check_writable(*folders: Path) -> list[str]:
    """Problems with the folders the bot writes to (created when missing)."""
    problems = []
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
                pass
        except OSError as exc:
            problems.append(
                f"{folder.resolve()} is not writable by this user (uid {os.getuid()}): {exc.strerror}"
            )
    return problems


def check_store(path: Path) -> list[str]:
    """A store file that exists but cannot be read stops start-up (moving it aside would lose every card)."""
    try:
        EmbedStore(path).load()
    except StoreUnreadable as exc:
        return [str(exc)]
    return []


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        library = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return library if library is not None and hasattr(library, "malloc_trim") else None


def release_free_memory() -> None:
    """glibc keeps freed memory in its arenas; malloc_trim gives it back to the system (~0.1 ms).
    Elsewhere (musl, macOS) there is nothing to do."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
