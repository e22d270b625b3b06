"""The panel checks (1-7): its address, both keys, the servers each key sees, the request limits, which
panel it is, and one Wings websocket per node."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from urllib.parse import urlsplit

import aiohttp

from ptero import wings
from ptero.bot import PANEL_NAMES
from ptero.config import mask_secret
from ptero.doctor.model import (
    APP_KEY_FIX,
    CLIENT_KEY_FIX,
    NOT_LEARNED,
    REQUEST_TIMEOUT,
    STORE_PATH,
    Doctor,
    Line,
    fail,
    ok,
    skip,
    warn,
)
from ptero.panel import PanelServer, RequestBudget
from ptero.panel.errors import (
    MalformedResponseError,
    PterodactylAuthError,
    PterodactylConnectionError,
    ServerNotFoundError,
)
from ptero.rules import stretched_interval


def network_problem(exc: BaseException | None, url: str) -> tuple[str, str]:
    """What a failed connection to ``url`` means, and the likely fix."""
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    if isinstance(exc, TimeoutError):
        return (
            f"{where} did not answer within {REQUEST_TIMEOUT:g} s",
            "check that it runs and is not firewalled",
        )
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"its TLS certificate was refused ({exc.certificate_error})", "renew or fix the certificate"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "the TLS handshake failed", "use http:// if that port does not speak https, or fix its TLS"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"{parts.hostname} does not resolve (DNS)", "check the spelling and this machine's DNS"
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, ConnectionRefusedError):
        return f"nothing listens on {where} (connection refused)", (
            "check the port and that the web server runs; inside Docker, 127.0.0.1 is the container "
            "itself: use the host's address"
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {where} ({exc.os_error.strerror})", "check the address and the network"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{where} closed the connection without answering", "check http:// against https://"
    return f"cannot reach {where} ({type(exc).__name__})", "check the address and the network"


async def check_panel_url(doc: Doctor) -> Line:
    url = doc.settings.panel_url
    try:
        doc.client_servers = await doc.api.list_servers(
            scope="all" if doc.settings.server_scope == "all" else "mine"
        )
    except PterodactylAuthError as exc:  # JSON and a refusal: the address is right, the key is not
        doc.client_refusal = exc
        return ok(f"{url} answers as a panel API (JSON from /api/client; it refused the client key)")
    except MalformedResponseError as exc:
        fix = (
            "use the address the browser ends on (https://, no path)"
            if "redirected" in str(exc)
            else "PTERODACTYL_URL must be the panel's own address (like https://panel.example.com, no /api "
            "or other path), with no login page or proxy page in front of /api"
        )
        return fail(f"{url} answers, but not as the panel's API: {exc}", fix)
    except ServerNotFoundError:
        return fail(f"{url} has no panel API (GET /api/client: 404)", "remove any path from PTERODACTYL_URL")
    except PterodactylConnectionError as exc:
        problem, fix = network_problem(exc.__cause__, url)
        return fail(f"cannot reach {url}: {problem}", fix)
    return ok(f"{url} answers as a panel API (JSON from /api/client)")


async def check_client_key(doc: Doctor) -> Line:
    key = mask_secret(doc.settings.client_api_key)
    try:
        if doc.client_refusal is not None:  # the address check already heard the refusal
            raise doc.client_refusal
        doc.account = account = await doc.api.account()
    except PterodactylAuthError as exc:
        why = (
            "it was revoked or mistyped, or it belongs to another panel"
            if exc.status == 401
            else "an application key in the client slot, or a user who may not use the API"
        )
        return fail(f"the panel refused {key} ({exc.status}: {exc.detail}): {why}", CLIENT_KEY_FIX)
    admin = "a root admin" if account.admin else "not an admin"
    return ok(f"{key} belongs to the panel user {account.username} ({admin})")


async def check_app_key(doc: Doctor) -> Line:
    key = mask_secret(doc.settings.application_api_key)
    reads = {"Servers": "/api/application/servers", "Nodes": "/api/application/nodes"}
    answers = await asyncio.gather(*map(doc.api.application_count, reads.values()), return_exceptions=True)
    refused: dict[str, PterodactylAuthError] = {}
    for name, answer in zip(reads, answers, strict=True):
        if isinstance(answer, PterodactylAuthError):
            refused[name] = answer
        elif isinstance(answer, BaseException):
            raise answer  # run_checks explains a connection problem
    servers, nodes = answers
    allocations = "no node yet to read allocations of"
    if not isinstance(nodes, BaseException):
        doc.nodes = nodes[1]
        node_id = nodes[1][0].get("id") if nodes[1] else None
        if isinstance(node_id, int):
            try:
                await doc.api.application_count(f"/api/application/nodes/{node_id}/allocations")
                allocations = "their allocations"
            except PterodactylAuthError as exc:
                refused["Allocations"] = exc
    if refused and all(exc.status == 401 for exc in refused.values()):
        return fail(f"the panel refused {key} (401): it was revoked or mistyped", APP_KEY_FIX)
    if refused:
        names = " and ".join(refused)
        return fail(
            f"{key} may not read {names} (the panel answered 403)", f"{APP_KEY_FIX} (missing: {names})"
        )
    assert not isinstance(servers, BaseException) and not isinstance(nodes, BaseException)
    doc.app_servers = servers[0]
    return ok(f"{key} reads {servers[0]} server(s), {nodes[0]} node(s) and {allocations}")


async def check_servers(doc: Doctor) -> Sequence[Line]:
    assert doc.client_servers is not None and doc.account is not None and doc.app_servers is not None
    user, seen, total = doc.account.username, len(doc.client_servers), doc.app_servers
    if doc.settings.server_scope == "all" and not doc.account.admin:
        return [
            fail(
                f"SERVER_SCOPE=all lists every server only for a root admin's client key; {user} is "
                f"not an admin, so the bot sees none of the {total} server(s)",
                f"use a root admin's client key, or SERVER_SCOPE=mine for the servers {user} owns or shares",
            )
        ]
    if total == 0:
        lines = [warn("the panel has no servers yet", "create one; /server_status offers it then")]
    elif seen < total:
        text = (
            f"{user} sees {seen} of the {total} server(s) the application key lists: the other "
            f"{total - seen} will not be offered in /server_status (their cards and power buttons would fail)"
        )
        fix = (
            "fine if the bot should show only those. Only if it should show every server: a root admin's "
            "client key with SERVER_SCOPE=all"
        )
        lines = [warn(text, fix)]
    else:
        lines = [ok(f"{user} sees all {total} server(s) the application key lists")]
    visible = {server.identifier for server in doc.client_servers}
    if lost := sorted(server_id for server_id in doc.cards if server_id not in visible):
        text = (
            f"{len(lost)} card(s) in {STORE_PATH} are for servers {user} cannot see ({', '.join(lost[:5])}): "
            "they will show as inaccessible (or go, if the server was deleted)"
        )
        fix = "give the user access to those servers, or delete those cards"
        lines.append(warn(text, fix, title="Existing cards"))
    return lines


def cards_on_time(per_window: int, interval: float) -> int:
    """How many cards are polled every ``interval`` s before the budget makes polling stretch."""
    cards = 0
    while cards < per_window and stretched_interval(cards + 1, interval, per_window) <= interval:
        cards += 1
    return cards


async def check_limits(doc: Doctor) -> Line:
    client, application = doc.api.budgets["client"], doc.api.budgets["application"]
    if client.limit == NOT_LEARNED:
        learned = "the panel sent no X-RateLimit-Limit header; the bot assumes 720 client requests a minute"
        client = RequestBudget(720)
    else:
        also = f" and {application.limit} application" if application.limit != NOT_LEARNED else ""
        learned = f"the panel allows {client.limit} client{also} requests a minute (X-RateLimit-Limit)"
    interval, cards = doc.settings.update_interval, len(doc.cards)
    fit = cards_on_time(client.polling_per_minute, interval)
    text = (
        f"{learned}; at UPDATE_INTERVAL={interval:g} s up to {fit} cards are polled on time ({cards} today)"
    )
    if cards > fit:
        every = stretched_interval(cards, interval, client.polling_per_minute, client.WINDOW)
        fix = "fine as is; to poll on time, raise the panel's APP_API_CLIENT_RATELIMIT"
        return warn(f"{text}: polling stretches to every {every:.1f} s", fix)
    return ok(text)


async def check_panel_type(doc: Doctor) -> Line:
    flavour, why = await doc.api.detect_panel()
    return ok(f"{PANEL_NAMES[flavour]} ({why}); the API does not show its version")


async def check_live_updates(doc: Doctor) -> Sequence[Line]:
    """7. For one server per node: can the Wings websocket be opened and authenticated from here?"""
    if doc.settings.live_updates == "off":
        return [skip("LIVE_UPDATES=off: every card is polled")]
    assert doc.client_servers is not None  # guaranteed by needs=("client_key",)
    one_per_node: dict[str, PanelServer] = {}
    for server in doc.client_servers:  # the first listed server of each node, nodes by name
        if not server.blocking_status:
            one_per_node.setdefault(server.node, server)
    one_per_node = dict(sorted(one_per_node.items()))
    if not one_per_node:
        return [skip("no server to try a socket on")]
    answers = await asyncio.gather(
        *(
            wings.probe(doc.api, s, doc.settings.panel_url, within=REQUEST_TIMEOUT)
            for s in one_per_node.values()
        )
    )
    lines = []
    for (node, server), (works, why) in zip(one_per_node.items(), answers, strict=True):
        title = f"Live updates, node {node}"
        if works:
            lines.append(ok(f"{why} (tried with {server.name})", title=title))
        else:
            lines.append(
                warn(f"{why} (tried with {server.name})", "until then the bot polls its servers", title=title)
            )
    return lines
