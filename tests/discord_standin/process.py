"""Run a bot (or any Python script) as a separate process and watch its output."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

EVENT_PREFIX = "DEMO_EVENT "


class BotProcess:
    """``python <script>`` in a subprocess; stdout and stderr are merged into :attr:`lines`."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        python: str = sys.executable,
        echo: TextIO | None = None,
    ) -> None:
        self.args = [python, *args]
        self.env = {**os.environ, **(env or {})}
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.cwd = cwd
        self.echo = echo
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._cond = asyncio.Condition()
        self._eof = False

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def start(self) -> BotProcess:
        self.proc = await asyncio.create_subprocess_exec(
            *self.args,
            cwd=self.cwd,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                break
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if self.echo is not None:
                self.echo.write(line + "\n")
            async with self._cond:
                self._cond.notify_all()
        self._eof = True
        async with self._cond:
            self._cond.notify_all()

    async def wait_for_line(
        self,
        match: str | re.Pattern[str] | Callable[[str], Any],
        timeout: float = 10.0,
    ) -> str:
        """First output line (already seen ones included) containing / matching ``match``."""
        if isinstance(match, str):
            text = match

            def pred(line: str) -> bool:
                return text in line
        elif isinstance(match, re.Pattern):
            pattern = match

            def pred(line: str) -> bool:
                return pattern.search(line) is not None
        else:
            pred = match

        def find() -> str | None:
            for line in self.lines:
                if pred(line):
                    return line
            if self._eof:
                raise RuntimeError(f"process exited ({self.returncode}) before {match!r}:\n{self.tail()}")
            return None

        async def inner() -> str:
            async with self._cond:
                return await self._cond.wait_for(find)

        try:
            return await asyncio.wait_for(inner(), timeout)
        except TimeoutError:
            message = f"no output line matching {match!r} within {timeout}s:\n{self.tail()}"
            raise TimeoutError(message) from None

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """``DEMO_EVENT {json}`` lines printed by the demo bot."""
        out = []
        for line in self.lines:
            idx = line.find(EVENT_PREFIX)
            if idx < 0:
                continue
            data = json.loads(line[idx + len(EVENT_PREFIX) :])
            if name is None or data.get("event") == name:
                out.append(data)
        return out

    async def wait_for_event(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], Any] | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        def match(line: str) -> bool:
            idx = line.find(EVENT_PREFIX)
            if idx < 0:
                return False
            data = json.loads(line[idx + len(EVENT_PREFIX) :])
            return data.get("event") == name and (predicate is None or bool(predicate(data)))

        line = await self.wait_for_line(match, timeout)
        return json.loads(line[line.find(EVENT_PREFIX) + len(EVENT_PREFIX) :])

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.lines[-n:])

    async def stop(self, timeout: float = 5.0) -> int | None:
        """SIGINT (discord.py closes cleanly), then SIGTERM, then SIGKILL."""
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                try:
                    await asyncio.wait_for(proc.wait(), timeout)
                    break
                except TimeoutError:
                    continue
        if self._reader is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 2)
        return proc.returncode
