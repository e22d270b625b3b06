"""Running the checks: the list in the order their lines print, the local checks, the concurrent run,
and ``check_setup``, what ``--check`` calls."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import aiohttp
import discord
from discord.http import HTTPClient

from ptero.config import Settings
from ptero.doctor.discord_checks import check_channels, check_commands, check_guild, check_token
from ptero.doctor.model import (
    NOT_LEARNED,
    OVERALL_TIMEOUT,
    REQUEST_TIMEOUT,
    STORE_PATH,
    Check,
    Doctor,
    Line,
    Unanswered,
    fail,
    ok,
    skip,
    warn,
)
from ptero.doctor.panel_checks import (
    check_app_key,
    check_client_key,
    check_limits,
    check_live_updates,
    check_panel_type,
    check_panel_url,
    check_servers,
    network_problem,
)
from ptero.panel import PterodactylAPI
from ptero.panel.errors import (
    PterodactylConnectionError,
    PterodactylError,
)
from ptero.runtime import check_writable, setup_logging
from ptero.store import EmbedStore

log = logging.getLogger(__name__)


async def check_local(doc: Doctor) -> Sequence[Line]:
    title, cards = "Card locations", len(doc.cards)
    if problems := check_writable(Path("embed"), Path("logs")):  # as a normal start does
        uid = os.getuid()
        fix = (
            f"let uid {uid} write there (e.g. chown -R {uid} embed logs); a file in a folder's place must go"
        )
        folders = fail("; ".join(problems), fix, title="Folders")
    else:
        folders = ok("embed/ and logs/ are writable", title="Folders")
    if not STORE_PATH.parent.is_dir():
        store = skip("skipped: embed/ is not a folder", title=title)
    elif doc.store_problem:
        fix = "fix its owner or mode, or restore it from a backup (or delete it)"
        store = fail(f"{doc.store_problem}; the file was left as it is", fix, title=title)
    elif doc.dropped_cards:
        text = f"{STORE_PATH} holds {cards} card(s); {doc.dropped_cards} entry(ies) cannot be read"
        store = warn(
            text, "a normal start drops them: post those cards again with /server_status", title=title
        )
    elif not STORE_PATH.exists():
        store = ok(f"no cards yet ({STORE_PATH} does not exist)", title=title)
    else:
        store = ok(f"{STORE_PATH} holds {cards} card(s)", title=title)
    return [folders, store]


async def check_configuration(doc: Doctor) -> Sequence[Line]:
    if doc.config_warnings:
        return [warn(warning, "rename or remove that variable") for warning in doc.config_warnings]
    s = doc.settings
    return [ok(f"valid (SERVER_SCOPE={s.server_scope}, UPDATE_INTERVAL={s.update_interval:g} s)")]


CHECKS: list[Check] = [
    Check("configuration", "Configuration", check_configuration, waits_on="nothing"),
    Check("panel_url", "Panel address", check_panel_url),  # 1
    Check("client_key", "Client API key", check_client_key, needs=("panel_url",)),  # 2
    Check("app_key", "Application API key", check_app_key, needs=("panel_url",)),  # 3
    Check("servers", "Servers", check_servers, needs=("client_key", "app_key")),  # 4
    Check("limits", "Request limits", check_limits, needs=("client_key",), after=("app_key",)),  # 5
    Check("panel_type", "Panel type", check_panel_type, needs=("client_key",)),  # 6
    Check(
        "live_updates",
        "Live updates",
        check_live_updates,
        needs=("client_key",),
        waits_on="Wings",
        timeout=REQUEST_TIMEOUT + 1,
    ),  # 7
    Check("token", "Discord token", check_token, waits_on="Discord"),  # 8
    Check("guild", "Discord server", check_guild, needs=("token",), waits_on="Discord"),  # 9
    Check("commands", "Slash commands", check_commands, needs=("guild",), waits_on="Discord"),  # 10
    Check("channels", "Channels", check_channels, needs=("guild",), waits_on="Discord"),  # 11
    Check("local", "Local files", check_local, waits_on="the disk"),  # 12
]


def unexpected(doc: Doctor, check: Check, exc: Exception) -> Line:
    """A failure the check did not explain itself: the network, an odd answer, a bug."""
    if isinstance(exc, Unanswered):
        return fail(str(exc), f"check that {check.waits_on} runs and is reachable from here")
    if isinstance(exc, PterodactylConnectionError):
        problem, fix = network_problem(exc.__cause__, doc.settings.panel_url)
        return fail(f"cannot reach the panel: {problem}", fix)
    if isinstance(exc, PterodactylError):  # 429, 5xx, an answer the client cannot read
        return fail(str(exc), "check the panel's own log; if it is rate limiting, try again in a minute")
    if isinstance(exc, discord.HTTPException):
        return fail(f"Discord answered {exc.status} {exc.text}", "see discordstatus.com, then try again")
    if isinstance(exc, aiohttp.ClientError | OSError):
        problem, fix = network_problem(exc, discord.http.Route.BASE)
        return fail(f"cannot reach Discord: {problem}", fix)
    log.exception("The %s check failed", check.key)
    return fail(f"the check itself failed ({type(exc).__name__}: {exc})", "please report this as a bug")


def passed(lines: Sequence[Line]) -> bool:
    return all(line.mark in ("ok", "warn") for line in lines)


async def run_checks(
    doc: Doctor,
    checks: Sequence[Check] = CHECKS,
    overall: float = OVERALL_TIMEOUT,
    emit: Callable[[Check, list[Line]], None] = lambda check, lines: None,
) -> list[Line]:
    """Start every check at once (each waits for what it needs); ``emit`` their lines in list order."""
    titles = {check.key: check.title for check in checks}
    tasks: dict[str, asyncio.Task[list[Line]]] = {}

    async def run(check: Check) -> list[Line]:
        if needed := [tasks[key] for key in (*check.needs, *check.after)]:
            await asyncio.wait(needed)  # not `await task`: being cancelled must not cancel them
        if failed := [titles[key] for key in check.needs if not passed(tasks[key].result())]:
            return [skip(f"skipped: {failed[0]} did not pass")]
        try:
            async with asyncio.timeout(check.timeout):
                found = await check.run(doc)
        except TimeoutError:
            fix = "check that it is reachable from here"
            return [fail(f"no answer from {check.waits_on} within {check.timeout:g} s", fix)]
        except Exception as exc:
            return [unexpected(doc, check, exc)]
        return [found] if isinstance(found, Line) else list(found)

    for check in checks:
        tasks[check.key] = asyncio.create_task(run(check), name=f"check-{check.key}")
    deadline = asyncio.get_running_loop().time() + overall
    report: list[Line] = []
    for check in checks:
        task = tasks[check.key]
        await asyncio.wait([task], timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
        if task.done():
            lines = task.result()
        elif any(not tasks[key].done() for key in (*check.needs, *check.after)):
            lines = [skip("skipped: what it needs did not finish in time")]
        else:
            lines = [
                fail(f"still waiting for {check.waits_on} after {overall:g} s", "check that it is reachable")
            ]
        emit(check, lines)
        report += lines
    if pending := [task for task in tasks.values() if not task.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=2)
    return report


async def diagnose(
    settings: Settings, config_warnings: Sequence[str], emit: Callable[[Check, list[Line]], None]
) -> list[Line]:
    cards, problem, dropped = EmbedStore.inspect(STORE_PATH)  # never load(): it moves a damaged file
    api = PterodactylAPI(
        settings.panel_url,
        settings.client_api_key,
        settings.application_api_key,
        timeout=REQUEST_TIMEOUT,
        max_retries=0,
        client_limit=NOT_LEARNED,
        application_limit=NOT_LEARNED,
    )
    http = HTTPClient(asyncio.get_running_loop())
    try:
        await api.open()
        doc = Doctor(settings, api, http, config_warnings, cards, problem, dropped)
        return await run_checks(doc, CHECKS, OVERALL_TIMEOUT, emit)
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await api.close()
                await http.close()


def check_setup(settings: Settings, config_warnings: Sequence[str]) -> int:
    """``--check``: print one line per check on stdout; 0 when none failed, else 1."""
    setup_logging(settings)  # the log (stderr and logs/) gets library warnings, redacted
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # a terminal without UTF-8 still gets every line

    def say(text: str) -> None:
        for secret in settings.secrets:  # the last line of defence, as in the log
            text = text.replace(secret, "[redacted]")
        print(text, flush=True)

    def emit(check: Check, lines: list[Line]) -> None:
        for line in lines:
            say(line.render(check.title))

    say(
        f"Checking the setup (read-only) for the panel {settings.panel_url} and the Discord server "
        f"{settings.allowed_guild_id}:"
    )
    counts = Counter(line.mark for line in asyncio.run(diagnose(settings, config_warnings, emit)))
    if counts["fail"]:
        say(f"{counts['fail']} check(s) failed: fix the ✗ lines above, then run --check again.")
    elif counts["warn"]:
        say(f"No check failed; {counts['warn']} warning(s): see the ! lines above.")
    else:
        say("Every check passed.")
    log.info("Setup check: %d passed, %d warned, %d failed", counts["ok"], counts["warn"], counts["fail"])
    return 1 if counts["fail"] else 0
