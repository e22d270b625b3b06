"""The async client for the panel's Client API and Application API. It never imports discord."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, Self, TypeVar

import aiohttp

from ptero.panel.budget import BudgetExhausted, RequestBudget
from ptero.panel.errors import (
    MalformedResponseError,
    NodeUnreachableError,
    PanelServerError,
    PterodactylConnectionError,
    PterodactylError,
    RateLimitedError,
    error_detail,
    error_for_status,
)
from ptero.panel.models import (
    IDENTIFIER,
    POWER_SIGNALS,
    Account,
    Allocation,
    PanelServer,
    PowerSignal,
    ServerResources,
)

log = logging.getLogger(__name__)

ApiKind = Literal["client", "application"]
Scope = Literal["mine", "all"]
Flavour = Literal["pterodactyl", "pelican"]
Lane = Literal["poll", "interactive", "power"]
# How long a request may wait for the rate-limit budget: polling up to the longest pause, someone
# waiting in Discord a few seconds (then "try again in N s"), never minutes.
LANE_MAX_WAIT: dict[Lane, float] = {"poll": RequestBudget.MAX_PAUSE + 5, "interactive": 5.0, "power": 3.0}
MAX_PAGES = 1000  # 100,000 servers: beyond that a total_pages is not believed
T = TypeVar("T")


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class PterodactylAPI:
    """Async client for the panel's Client API (ptlc_ key) and Application API (ptla_ key).

    The owner opens it once (``await api.open()`` or ``async with``) and closes it at shutdown;
    all requests share one aiohttp session. Requests run concurrently, at most ``max_concurrency``
    at a time: one request at a time (the original design) cannot poll 100 servers at 100 ms
    latency within a 10 s cycle. Each key's RequestBudget keeps the total under the panel's limit.
    """

    def __init__(
        self,
        base_url: str,
        client_key: str,
        application_key: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        max_concurrency: int = 16,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        max_retry_after: float = 30.0,
        client_limit: int = 720,
        application_limit: int = 240,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,  # for retry backoff
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._keys: dict[ApiKind, str] = {"client": client_key, "application": application_key}
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))
        self._lanes: dict[Lane, contextlib.AbstractAsyncContextManager[Any]] = {
            "poll": asyncio.Semaphore(max_concurrency),
            "interactive": asyncio.Semaphore(8),
            "power": contextlib.nullcontext(),
        }
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self.budgets: dict[ApiKind, RequestBudget] = {
            "client": RequestBudget(client_limit, clock=clock),
            "application": RequestBudget(application_limit, clock=clock),
        }
        self.rate_limited_count = 0  # 429s received, for logs and the benchmark
        self.flavour: Flavour | None = None  # which panel, once detect_panel() has asked

    # -- lifecycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._session is None or self._session.closed:
            # limit=0: the one session also carries the Wings websockets, which would count against
            # aiohttp's default 100 connections and make the 101st wait forever.
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=0)
            )
            self._owns_session = True

    async def close(self) -> None:
        if self._session is not None and self._owns_session and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # -- public calls ---------------------------------------------------------------------------
    async def list_servers(self, *, scope: Scope = "mine") -> list[PanelServer]:
        """The servers the client key's user owns or is a subuser of, or with ``scope="all"`` every
        server of the panel (``type=admin-all``: the user must be a root admin), following every page.

        A listing item the bot cannot read is skipped and logged, never the whole listing. The pages
        end at the first empty one, or after MAX_PAGES, whatever ``total_pages`` says.
        """
        params = {"per_page": "100"} | ({"type": "admin-all"} if scope == "all" else {})
        servers: list[PanelServer] = []
        for page in range(1, MAX_PAGES + 1):
            body = await self._get("client", "/api/client", {**params, "page": str(page)})
            items = self._list_data(body)
            for item in items:
                try:
                    servers.append(self._parse(PanelServer.from_client, item))
                except MalformedResponseError as exc:
                    log.warning("Listing item %r skipped: %s", _label(item), exc)
            if not items or page >= _total_pages(body):
                break
        return servers

    async def detect_panel(self) -> tuple[Flavour, str]:
        """Which panel this is, and what told us (pelican.md, "Telling them apart"): Pelican answers
        Laravel's health route GET /up, Pterodactyl 404; when /up cannot tell (a proxy in the way),
        a field only Pelican's client listing has (limits.oom_killer) decides. Never the key prefix."""
        status = await self._status_of("/up")
        if status == 200:
            self.flavour = "pelican"
            return self.flavour, "GET /up answered 200"
        body = await self._get("client", "/api/client", {"per_page": "1"}, lane="interactive")
        items = self._list_data(body)
        limits = items[0].get("limits") if items else None
        if isinstance(limits, dict) and "oom_killer" in limits:
            self.flavour = "pelican"
            return self.flavour, "its server listing has Pelican's limits.oom_killer"
        self.flavour = "pterodactyl"
        why = f"GET /up answered {status}" if status else "GET /up did not answer"
        return self.flavour, why + (", and its server listing has no Pelican field" if items else "")

    async def _status_of(self, path: str) -> int | None:
        """The HTTP status of an unauthenticated GET, or None when nothing answered."""
        if self._session is None or self._session.closed:
            raise PterodactylError("the API client is not open (call open() first)")
        try:
            async with self._session.get(
                self.base_url + path, allow_redirects=False, timeout=self._timeout
            ) as r:
                return r.status
        except (TimeoutError, aiohttp.ClientError):
            return None

    async def websocket_credentials(self, identifier: str) -> tuple[str, str]:
        """(token, socket URL) for a server's Wings websocket. The answer has no envelope:
        ``{"data": {"token": ..., "socket": ...}}`` (wings-websocket.md, section 1)."""
        body = await self._get("client", f"/api/client/servers/{_segment(identifier)}/websocket")
        data = body.get("data") if isinstance(body, dict) else None
        token, socket = (data.get("token"), data.get("socket")) if isinstance(data, dict) else (None, None)
        if (
            not isinstance(token, str)
            or not isinstance(socket, str)
            or not socket.startswith(("ws://", "wss://"))
        ):
            raise MalformedResponseError("the panel's websocket answer has no token or socket URL")
        return token, socket

    async def ws_connect(
        self, url: str, *, origin: str, heartbeat: float, connect_within: float
    ) -> aiohttp.ClientWebSocketResponse:
        """Open a websocket on the one session (the Wings socket). aiohttp's errors are the caller's to
        sort: for a socket they mean different things (see ptero.wings)."""
        if self._session is None or self._session.closed:
            raise PterodactylError("the API client is not open (call open() first)")
        connecting = self._session.ws_connect(
            url, origin=origin, heartbeat=heartbeat, max_msg_size=256 * 1024
        )
        return await asyncio.wait_for(connecting, connect_within)

    async def account(self) -> Account:
        """Whose client key this is (a cheap check that it works)."""
        body = await self._get("client", "/api/client/account", lane="interactive")
        return self._parse(Account.from_api, self._item(body, "user"))

    async def application_count(self, path: str) -> tuple[int, list[Mapping[str, Any]]]:
        """How many items an Application API list has (its first page's items too), e.g.
        ``/api/application/nodes``: a key without read permission on it raises PterodactylAuthError."""
        body = await self._get("application", path, {"per_page": "100"}, lane="interactive")
        items = self._list_data(body)
        pagination = (body.get("meta") or {}).get("pagination") or {}
        total = pagination.get("total") if isinstance(pagination, dict) else None
        return (total if isinstance(total, int) and total >= 0 else len(items)), items

    async def server_exists(self, identifier: str, uuid: str | None = None) -> bool:
        """Whether the panel still has a server, whoever may see it (Application API). With its uuid
        one filtered request; without, the listing is read page by page until it is found."""
        path = "/api/application/servers"
        if uuid:
            body = await self._get("application", path, {"filter[uuid]": uuid})
            return any(item.get("uuid") == uuid for item in self._list_data(body))
        for page in range(1, MAX_PAGES + 1):
            body = await self._get("application", path, {"page": str(page), "per_page": "100"})
            items = self._list_data(body)
            if any(item.get("identifier") == identifier for item in items):
                return True
            if not items or page >= _total_pages(body):
                return False
        return False

    async def get_server(self, identifier: str) -> PanelServer:
        body = await self._get("client", f"/api/client/servers/{_segment(identifier)}", lane="interactive")
        return self._parse(PanelServer.from_client, self._item(body, "server"))

    async def get_primary_allocation(self, identifier: str) -> Allocation:
        path = f"/api/client/servers/{_segment(identifier)}/network/allocations"
        body = await self._get("client", path, lane="interactive")
        for item in self._list_data(body):
            if item.get("is_default"):
                return self._parse(Allocation.from_api, item)
        raise MalformedResponseError(f"server {identifier} has no primary allocation")

    async def get_resources(self, identifier: str, *, interactive: bool = False) -> ServerResources:
        """A server's state and usage; ``interactive`` (someone waits in Discord) goes ahead of polling."""
        path = f"/api/client/servers/{_segment(identifier)}/resources"
        body = await self._get("client", path, lane="interactive" if interactive else "poll")
        return self._parse(ServerResources.from_api, self._item(body, "stats"))

    async def get_many_resources(
        self, identifiers: Iterable[str], *, interactive: bool = False
    ) -> dict[str, ServerResources | PterodactylError]:
        """Resources of many servers at once; a failure is returned in place of that server's result."""

        async def one(identifier: str) -> ServerResources | PterodactylError:
            try:
                return await self.get_resources(identifier, interactive=interactive)
            except PterodactylError as exc:
                return exc
            except Exception as exc:  # a bug of ours must not stop the other servers either
                log.exception("Fetching the resources of %s failed", identifier)
                return MalformedResponseError(f"{type(exc).__name__} while reading the panel's answer")

        ids = list(dict.fromkeys(identifiers))
        results = await asyncio.gather(*(one(i) for i in ids))
        return dict(zip(ids, results, strict=True))

    async def send_power_action(self, identifier: str, signal: PowerSignal) -> None:
        """Send a power signal. Never retried: a doubled restart is worse than a reported error."""
        if signal not in POWER_SIGNALS:
            raise ValueError(f"unknown power signal {signal!r}")
        path = f"/api/client/servers/{_segment(identifier)}/power"
        await self._request("client", "POST", path, json_body={"signal": signal}, lane="power")

    # -- plumbing -------------------------------------------------------------------------------
    @staticmethod
    def _parse(parser: Callable[[Mapping[str, Any]], T], attributes: Mapping[str, Any]) -> T:
        try:
            return parser(attributes)
        except Exception as exc:  # OverflowError from 1e400 too: any of it is the panel's data, not ours
            raise MalformedResponseError(f"unexpected panel data: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _item(body: Any, expected: str) -> Mapping[str, Any]:
        if (
            not isinstance(body, dict)
            or body.get("object") != expected
            or not isinstance(body.get("attributes"), dict)
        ):
            raise MalformedResponseError(f"expected a {expected!r} object from the panel")
        attributes: Mapping[str, Any] = body["attributes"]
        return attributes

    @staticmethod
    def _list_data(body: Any) -> list[Mapping[str, Any]]:
        if (
            not isinstance(body, dict)
            or body.get("object") != "list"
            or not isinstance(body.get("data"), list)
        ):
            raise MalformedResponseError("expected a list object from the panel")
        items = []
        for item in body["data"]:
            if isinstance(item, dict) and isinstance(item.get("attributes"), dict):
                items.append(item["attributes"])
            else:
                log.warning("A malformed list item from the panel was skipped")
        return items

    async def _get(
        self, api: ApiKind, path: str, params: Mapping[str, str] | None = None, *, lane: Lane = "poll"
    ) -> Any:
        """GET with bounded retries (exponential backoff with jitter) on connection errors, 429, 5xx."""
        attempt = 0
        while True:
            try:
                return await self._request(api, "GET", path, params=params, lane=lane)
            except (PterodactylConnectionError, RateLimitedError, PanelServerError) as exc:
                if attempt >= self.max_retries:
                    raise
                delay = self.backoff_base * (2**attempt) * random.uniform(0.5, 1.5)
                if isinstance(exc, RateLimitedError):
                    if exc.retry_after > self.max_retry_after:
                        raise
                    delay = max(delay, exc.retry_after)
                attempt += 1
                log.debug("GET %s failed (%s); retry %d in %.2fs", path, exc, attempt, delay)
                await self._sleep(delay)

    async def _request(
        self,
        api: ApiKind,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        lane: Lane = "poll",
    ) -> Any:
        if self._session is None or self._session.closed:
            raise PterodactylError("the API client is not open (call open() first)")
        budget = self.budgets[api]
        priority = lane != "poll"  # a member is waiting: it may use the reserve
        headers = {
            "Authorization": f"Bearer {self._keys[api]}",
            "Accept": "application/json",  # without it a bad key gets a 302 to an HTML login page
        }
        url = self.base_url + path
        # Polling queues behind its own bound; interactive requests have a bound of their own, so
        # they never wait behind a long poll; power actions are rare and skip both. A request takes
        # its budget slot only once it may really go, so the slot's time is the send time.
        async with self._lanes[lane]:
            try:
                await budget.acquire(priority=priority, max_wait=LANE_MAX_WAIT[lane])
            except BudgetExhausted as exc:  # never sent later: the caller is told now
                wait = math.ceil(exc.wait)
                raise RateLimitedError(
                    429, f"held back for {wait} s by the bot's budget", retry_after=wait
                ) from None
            try:
                async with self._session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as response:
                    budget.observe(
                        _int_header(response.headers, "X-RateLimit-Limit"),
                        _int_header(response.headers, "X-RateLimit-Remaining"),
                    )
                    text = await response.text(errors="replace")
                    status = response.status
                    content_type = response.content_type
                    retry_after = response.headers.get("Retry-After")
            except TimeoutError as exc:
                raise PterodactylConnectionError(
                    f"{method} {path}: the panel did not answer in time"
                ) from exc
            except aiohttp.ClientError as exc:
                raise PterodactylConnectionError(
                    f"{method} {path}: cannot reach the panel ({type(exc).__name__})"
                ) from exc
        return self._interpret(api, method, path, status, content_type, text, retry_after)

    def _interpret(
        self,
        api: ApiKind,
        method: str,
        path: str,
        status: int,
        content_type: str,
        text: str,
        retry_after: str | None,
    ) -> Any:
        if 300 <= status < 400:
            raise MalformedResponseError(
                f"{method} {path}: the panel redirected ({status}), probably to its login page; "
                "check PTERODACTYL_URL"
            )
        is_json = content_type == "application/json" or content_type.endswith("+json")
        body: Any = None
        if text and is_json:
            try:
                body = json.loads(text)
            except ValueError as exc:
                if status < 400:
                    raise MalformedResponseError(f"{method} {path}: the panel sent malformed JSON") from exc
        elif text and status < 400:
            raise MalformedResponseError(
                f"{method} {path}: the panel answered {content_type or 'no content type'} instead of JSON"
            )
        if status < 300:
            return body
        detail, code = error_detail(body, status)
        if status == 429:
            self.rate_limited_count += 1
            try:
                wait = float(retry_after) if retry_after else 1.0
            except ValueError:
                wait = 1.0
            self.budgets[api].pause(wait)
            raise RateLimitedError(status, detail, code, retry_after=wait)
        error = error_for_status(status, code)
        if self.flavour == "pelican" and method == "POST" and status == 500:
            error = NodeUnreachableError  # Pelican renders a Wings connection failure as a bare 500
        raise error(status, detail, code)


def _segment(identifier: str) -> str:
    """A server identifier as one safe path segment."""
    if not IDENTIFIER.fullmatch(identifier):
        raise ValueError(f"not a server identifier: {identifier!r}")
    return identifier


def _total_pages(body: Mapping[str, Any]) -> int:
    """meta.pagination.total_pages when it is a sane whole number, else 1 (read no further)."""
    pagination = (body.get("meta") or {}).get("pagination") or {}
    total = pagination.get("total_pages") if isinstance(pagination, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) and total >= 1 else 1


def _label(item: Mapping[str, Any]) -> str:
    """What names a listing item in a log line (its identifier, else its uuid), kept short."""
    return str(item.get("identifier") or item.get("uuid") or "?")[:80]
