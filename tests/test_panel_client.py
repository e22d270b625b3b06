"""PterodactylAPI against the fake panel over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import aiohttp
import pytest
from aiohttp import web

from ptero.cards import describe_panel_error
from ptero.panel import (
    MalformedResponseError,
    NodeUnreachableError,
    PanelServerError,
    PterodactylAPI,
    PterodactylAPIError,
    PterodactylAuthError,
    PterodactylConnectionError,
    PterodactylError,
    RateLimitedError,
    ServerConflictError,
    ServerNotFoundError,
    ServerResources,
)
from tests.conftest import RecordingSleep
from tests.fake_panel import DEFAULT_APP_KEY, DEFAULT_CLIENT_KEY, FakePanel


async def test_every_request_sends_bearer_and_json_accept(panel: FakePanel, api: PterodactylAPI) -> None:
    srv = panel.add_server(name="Survival")
    await api.list_servers()
    await api.server_exists(srv.identifier, srv.uuid)
    listing, lookup = panel.requests
    assert listing.headers["Authorization"] == f"Bearer {panel.client_key}"
    assert lookup.headers["Authorization"] == f"Bearer {panel.app_key}"
    assert all(r.headers["Accept"] == "application/json" for r in panel.requests)


async def test_list_servers_asks_the_client_api_page_by_page(panel: FakePanel, api: PterodactylAPI) -> None:
    panel.add_servers(230, ip_alias="play.example.com")
    servers = await api.list_servers()
    assert len(servers) == 230
    assert len({s.identifier for s in servers}) == 230
    pages = [r for r in panel.requests if r.path == "/api/client"]
    assert [r.query["page"] for r in pages] == ["1", "2", "3"]
    assert all(r.query["per_page"] == "100" and "type" not in r.query for r in pages)
    first = next(s for s in servers if s.name == "Server 001")
    assert first.node == "Node 1"
    assert first.allocation is not None and first.allocation.address == "play.example.com:25565"
    assert first.limits.cpu == 200 and first.limits.memory_mb == 2048


async def test_the_listing_holds_only_what_the_client_keys_user_may_see(
    panel: FakePanel, api: PterodactylAPI
) -> None:
    mine, shared = panel.add_server(name="Mine"), panel.add_server(name="Shared")
    shared.access = "subuser"
    private = panel.add_server(name="Customer X private")
    private.access = None
    assert sorted(s.name for s in await api.list_servers()) == ["Mine", "Shared"]
    assert await api.server_exists(private.identifier, private.uuid)
    assert await api.server_exists(private.identifier)  # by identifier, without a uuid
    assert not await api.server_exists("00000000", "0" * 8 + mine.uuid[8:])
    assert not await api.server_exists("00000000")
    panel.client_user_admin = True
    everything = await api.list_servers(scope="all")
    assert sorted(s.name for s in everything) == ["Customer X private", "Mine", "Shared"]
    assert panel.requests[-1].query["type"] == "admin-all"


async def test_server_details_and_primary_allocation(panel: FakePanel, api: PterodactylAPI) -> None:
    srv = panel.add_server(name="Creative", ip="10.1.1.1", port=27015, cpu_limit=0, description="hi")
    details = await api.get_server(srv.identifier)
    assert (details.name, details.description, details.limits.cpu) == ("Creative", "hi", 0)
    assert details.allocation is not None and details.allocation.address == "10.1.1.1:27015"
    allocation = await api.get_primary_allocation(srv.identifier)
    assert allocation.address == "10.1.1.1:27015"
    srv.ip_alias = "mc.example.org"
    assert (await api.get_primary_allocation(srv.identifier)).address == "mc.example.org:27015"


async def test_resources_are_typed(panel: FakePanel, api: PterodactylAPI) -> None:
    srv = panel.add_server(
        state="running",
        cpu=145.25,
        memory_bytes=1_000_000,
        disk_bytes=5_000,
        network_rx_bytes=7,
        network_tx_bytes=8,
        uptime_ms=123_000,
    )
    res = await api.get_resources(srv.identifier)
    assert res == ServerResources("running", False, 145.25, 1_000_000, 5_000, 7, 8, 123_000)
    srv.state = "offline"
    off = await api.get_resources(srv.identifier)
    assert off.current_state == "offline" and off.cpu_absolute == 0 and off.uptime_ms == 0
    assert off.disk_bytes == 5_000  # disk is still reported when offline


async def test_power_action_is_sent_once_and_returns_on_204(panel: FakePanel, api: PterodactylAPI) -> None:
    srv = panel.add_server(state="offline")
    await api.send_power_action(srv.identifier, "start")
    assert panel.power_requests == [(srv.identifier, "start")]
    assert [r.json for r in panel.requests if r.method == "POST"] == [{"signal": "start"}]


async def test_power_is_never_retried(panel: FakePanel, api: PterodactylAPI, sleeps: RecordingSleep) -> None:
    srv = panel.add_server(state="running")
    for status, error in ((502, PanelServerError), (429, RateLimitedError), (500, PanelServerError)):
        panel.fail_next(status, path_contains="/power")
        with pytest.raises(error):
            await api.send_power_action(srv.identifier, "restart")
    assert panel.count("POST") == 3  # one request per call, no retries
    assert sleeps.delays == []
    panel.hang_next(path_contains="/power")
    fast = PterodactylAPI(panel.url, panel.client_key, panel.app_key, timeout=0.3, sleep=sleeps)
    async with fast:
        with pytest.raises(PterodactylConnectionError, match="did not answer in time"):
            await fast.send_power_action(srv.identifier, "restart")
    assert panel.count("POST") == 4


async def test_conflict_carries_the_panels_reason(panel: FakePanel, api: PterodactylAPI) -> None:
    srv = panel.add_server(status="suspended")
    with pytest.raises(ServerConflictError) as info:
        await api.send_power_action(srv.identifier, "start")
    assert info.value.status == 409
    assert "suspended" in info.value.detail
    with pytest.raises(ServerConflictError):
        await api.get_resources(srv.identifier)


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, PanelServerError), (502, PanelServerError), (503, PanelServerError), (504, PanelServerError)],
)
async def test_get_retries_5xx_with_backoff_then_succeeds_or_raises_its_error(
    panel: FakePanel, api: PterodactylAPI, sleeps: RecordingSleep, status: int, error: type[Exception]
) -> None:
    srv = panel.add_server(state="running", cpu=10)
    panel.fail_next(status, count=2, path_contains="/resources")
    res = await api.get_resources(srv.identifier)
    assert res.cpu_absolute == 10
    assert panel.count("GET", "/resources") == 3
    assert len(sleeps.delays) == 2
    assert 0.25 <= sleeps.delays[0] <= 0.75 and 0.5 <= sleeps.delays[1] <= 1.5  # exponential, jittered
    panel.fail_next(status, count=1 + api.max_retries, path_contains="/resources")
    with pytest.raises(error) as info:  # retries exhausted: this status's own error, with its status
        await api.get_resources(srv.identifier)
    assert isinstance(info.value, PterodactylAPIError) and info.value.status == status


async def test_get_gives_up_after_bounded_retries(
    panel: FakePanel, api: PterodactylAPI, sleeps: RecordingSleep
) -> None:
    srv = panel.add_server()
    panel.fail_next(500, count=10, path_contains="/resources")
    with pytest.raises(PanelServerError) as info:
        await api.get_resources(srv.identifier)
    assert "unexpected error" in info.value.detail
    assert panel.count("GET", "/resources") == 1 + api.max_retries
    assert len(sleeps.delays) == api.max_retries


async def test_429_honours_retry_after(panel: FakePanel, api: PterodactylAPI, sleeps: RecordingSleep) -> None:
    srv = panel.add_server()
    panel.fail_next(429, path_contains="/resources")
    await api.get_resources(srv.identifier)
    assert sleeps.delays and sleeps.delays[0] >= 1.0  # the fake sends Retry-After: 1
    assert api.rate_limited_count == 1


async def test_limit_learned_from_headers_and_long_retry_after_surfaces() -> None:
    clock_now = [0.0]
    limited = FakePanel(client_rate_limit=10, clock=lambda: clock_now[0])
    async with limited:
        servers = limited.add_servers(12)
        # The client starts out believing the default 720/min, so a first burst can overshoot.
        client = PterodactylAPI(limited.url, DEFAULT_CLIENT_KEY, DEFAULT_APP_KEY, sleep=RecordingSleep())
        async with client:
            results = await client.get_many_resources(s.identifier for s in servers)
            limited_results = [r for r in results.values() if isinstance(r, RateLimitedError)]
            assert len(limited_results) == 2 and limited.too_many_requests == 2
            assert all(r.retry_after == 60 for r in limited_results)  # > max_retry_after: not slept on
            budget = client.budgets["client"]
            assert budget.limit == 10  # learned from X-RateLimit-Limit
            assert budget.delay(time.monotonic()) > 50  # paused until the panel's window ends
            assert budget.delay(time.monotonic(), priority=True) > 50


async def test_hanging_request_times_out_as_connection_error(
    panel: FakePanel, sleeps: RecordingSleep
) -> None:
    srv = panel.add_server()
    panel.hang_next(count=10, path_contains="/resources")
    client = PterodactylAPI(
        panel.url, panel.client_key, panel.app_key, timeout=0.2, max_retries=1, sleep=sleeps
    )
    async with client:
        started = time.monotonic()
        with pytest.raises(PterodactylConnectionError):
            await client.get_resources(srv.identifier)
        assert time.monotonic() - started < 2.0
    assert len(sleeps.delays) == 1  # retried once, then gave up


async def test_connection_refused_is_a_connection_error(panel: FakePanel, api: PterodactylAPI) -> None:
    srv = panel.add_server()
    await panel.set_down(True)
    with pytest.raises(PterodactylConnectionError, match="cannot reach the panel"):
        await api.get_resources(srv.identifier)
    await panel.set_down(False)
    assert (await api.get_resources(srv.identifier)).current_state == "offline"


async def test_malformed_json_and_html_are_errors_never_data(panel: FakePanel, api: PterodactylAPI) -> None:
    srv = panel.add_server()
    panel.malformed_next(path_contains="/resources")
    with pytest.raises(MalformedResponseError, match="malformed JSON"):
        await api.get_resources(srv.identifier)
    panel.html_next(path_contains="/resources")
    with pytest.raises(MalformedResponseError, match="instead of JSON"):
        await api.get_resources(srv.identifier)


async def test_missing_accept_header_trap_is_caught(panel: FakePanel) -> None:
    """What happens without Accept: application/json (a 302 to the login page), and that we never do that."""
    wrong = {"Authorization": "Bearer wrong"}
    url = f"{panel.url}/api/client"
    async with aiohttp.ClientSession() as session, session.get(url, headers=wrong) as resp:
        assert resp.status == 200 and "text/html" in resp.content_type  # the trap
    client = PterodactylAPI(panel.url, "ptlc_wrongwrongwrong" + "x" * 29, panel.app_key)
    async with client:
        with pytest.raises(PterodactylAuthError) as info:
            await client.get_resources("abcdef12")
    assert info.value.status == 401 and info.value.detail == "Unauthenticated."


async def test_redirect_is_an_error_not_followed() -> None:
    """A reverse proxy that sends plain HTTP to HTTPS (the usual way a panel URL answers 301)."""
    seen: list[str] = []

    async def to_https(request: web.Request) -> web.Response:
        seen.append(request.path)
        raise web.HTTPMovedPermanently(f"https://{request.host}{request.path_qs}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", to_https)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with PterodactylAPI(f"http://127.0.0.1:{port}", DEFAULT_CLIENT_KEY, DEFAULT_APP_KEY) as client:
            with pytest.raises(MalformedResponseError, match=r"redirected \(301\).*check PTERODACTYL_URL"):
                await client.list_servers()
    finally:
        await runner.cleanup()
    assert seen == ["/api/client"]  # one request: the redirect was not followed


async def test_key_type_and_not_found_errors(panel: FakePanel) -> None:
    swapped = PterodactylAPI(panel.url, panel.app_key, panel.client_key)
    async with swapped:
        with pytest.raises(PterodactylAuthError) as info:
            await swapped.list_servers()
        assert info.value.status == 403 and "application API key on an endpoint" in info.value.detail
    client = PterodactylAPI(panel.url, panel.client_key, panel.app_key)
    async with client:
        with pytest.raises(ServerNotFoundError):
            await client.get_resources("deadbeef")


async def test_no_aiohttp_exception_escapes(panel: FakePanel) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = PterodactylAPI(f"http://127.0.0.1:{port}", panel.client_key, panel.app_key, max_retries=0)
    async with client:
        with pytest.raises(PterodactylConnectionError) as info:
            await client.list_servers()
    assert isinstance(info.value.__cause__, aiohttp.ClientError)
    closed = PterodactylAPI(panel.url, panel.client_key, panel.app_key)
    with pytest.raises(PterodactylError, match="not open"):
        await closed.get_resources("abcdef12")


async def test_every_request_goes_through_the_one_session_and_only_its_owner_closes_it(
    panel: FakePanel,
) -> None:
    srv = panel.add_server()
    sent: list[str] = []

    async def on_request_start(
        _session: object, _context: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        sent.append(params.url.path)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        client = PterodactylAPI(panel.url, panel.client_key, panel.app_key, session=session)
        await client.get_resources(srv.identifier)
        await client.list_servers()
        await client.close()  # not its session: left open for its owner
        assert sent == [f"/api/client/servers/{srv.identifier}/resources", "/api/client"]
        assert not session.closed
    owned = PterodactylAPI(panel.url, panel.client_key, panel.app_key)
    await owned.open()
    await owned.get_resources(srv.identifier)
    await owned.close()  # its own session: closed, so it cannot be used any more
    with pytest.raises(PterodactylError, match="not open"):
        await owned.get_resources(srv.identifier)


async def test_requests_run_concurrently_under_the_bound(panel: FakePanel, sleeps: RecordingSleep) -> None:
    servers = panel.add_servers(40, state="running")
    panel.set_latency(0.05)
    client = PterodactylAPI(panel.url, panel.client_key, panel.app_key, max_concurrency=8, sleep=sleeps)
    async with client:
        results = await client.get_many_resources(s.identifier for s in servers)
    assert all(isinstance(r, ServerResources) for r in results.values())
    # Overlap: at most 8 at once, and more than one at once. Measure from the panel's side.
    spans = sorted((r.at, r.at + 0.05) for r in panel.requests)
    peak = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert 2 <= peak <= 8


async def test_get_many_returns_failures_in_place(panel: FakePanel, api: PterodactylAPI) -> None:
    ok, suspended = panel.add_server(state="running"), panel.add_server(status="suspended")
    results = await api.get_many_resources([ok.identifier, suspended.identifier])
    assert isinstance(results[ok.identifier], ServerResources)
    assert isinstance(results[suspended.identifier], ServerConflictError)


async def test_no_key_appears_in_any_error_message(panel: FakePanel, sleeps: RecordingSleep) -> None:
    srv = panel.add_server()
    client = PterodactylAPI(
        panel.url, panel.client_key, panel.app_key, timeout=0.2, max_retries=0, sleep=sleeps
    )
    messages = []
    async with client:
        for arm in (lambda: panel.fail_next(500), lambda: panel.hang_next(), lambda: panel.html_next()):
            arm()
            with pytest.raises(PterodactylError) as info:
                await client.get_resources(srv.identifier)
            messages.append(repr(info.value) + str(info.value) + repr(info.value.__cause__))
    text = "\n".join(messages)
    assert panel.client_key not in text and panel.app_key not in text


async def test_a_cycle_of_budgeted_requests_earns_no_429(sleeps: RecordingSleep) -> None:
    async with FakePanel(client_rate_limit=60) as small:
        servers = small.add_servers(20, state="running")
        client = PterodactylAPI(small.url, DEFAULT_CLIENT_KEY, DEFAULT_APP_KEY, client_limit=60, sleep=sleeps)
        async with client:
            for _ in range(2):  # 40 requests: within 60 - reserve
                results = await client.get_many_resources(s.identifier for s in servers)
                assert all(isinstance(r, ServerResources) for r in results.values())
            # The third cycle would pass the limit: the budget holds it back instead of earning 429s.
            third = asyncio.ensure_future(client.get_many_resources(s.identifier for s in servers))
            done, _ = await asyncio.wait({third}, timeout=0.5)
            assert not done
            third.cancel()
        assert small.too_many_requests == 0


async def test_power_action_does_not_queue_behind_polling(panel: FakePanel, sleeps: RecordingSleep) -> None:
    servers = panel.add_servers(10, state="running")
    panel.set_latency(0.2)
    client = PterodactylAPI(panel.url, panel.client_key, panel.app_key, max_concurrency=2, sleep=sleeps)
    async with client:
        polling = asyncio.ensure_future(client.get_many_resources(s.identifier for s in servers))
        await panel.wait_for(lambda r: r.method == "GET")  # the poll is under way, 8 GETs still queued
        await client.send_power_action(servers[0].identifier, "restart")
        await polling
    order = [r.method for r in sorted(panel.requests, key=lambda r: r.at)]
    assert order.index("POST") <= 4  # sent at once, not after the 10 queued GETs (5 rounds of 2)


# -- hardening (issue 10): bad values, long pauses, interactive requests ---------------------------


async def raw_json(panel: FakePanel, path: str) -> str:
    """What the fake panel answers on ``path`` right now, as text (to be tampered with)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            panel.url + path,
            headers={"Authorization": f"Bearer {panel.client_key}", "Accept": "application/json"},
        ) as response,
    ):
        return await response.text()


@pytest.mark.parametrize(
    ("field", "bad"),
    [('"uptime":1000', '"uptime":1e400'), ('"memory_bytes":5', '"memory_bytes":-Infinity'),
     ('"cpu_absolute":12.5', '"cpu_absolute":"lots"'), ('"resources":{', '"resources":7,"x":{')],
)  # fmt: skip
async def test_one_bad_value_is_a_malformed_error_for_that_server_only(
    panel: FakePanel, api: PterodactylAPI, field: str, bad: str
) -> None:
    good, odd = (
        panel.add_server(state="running", cpu=12.5, memory_bytes=5, uptime_ms=1000) for _ in range(2)
    )
    text = await raw_json(panel, f"/api/client/servers/{odd.identifier}/resources")
    assert field in text
    panel.fail_next(200, path_contains=f"/servers/{odd.identifier}/resources", body=text.replace(field, bad))
    results = await api.get_many_resources([good.identifier, odd.identifier])
    assert isinstance(results[good.identifier], ServerResources)
    assert isinstance(results[odd.identifier], MalformedResponseError)


async def test_a_bad_listing_item_is_skipped_and_named_never_the_whole_listing(
    panel: FakePanel, api: PterodactylAPI, caplog: pytest.LogCaptureFixture
) -> None:
    a, b, _c = panel.add_server(name="A"), panel.add_server(name="B"), panel.add_server(name="C")
    text = await raw_json(panel, "/api/client?per_page=100&page=1")
    text = text.replace(f'"identifier":"{b.identifier}"', '"identifier":"b\\/../x"')
    text = text.replace('"memory":2048', '"memory":1e400', 1)  # the first item: A
    panel.fail_next(200, path_contains="/api/client", body=text)
    caplog.set_level(logging.WARNING)
    servers = await api.list_servers()
    assert [s.name for s in servers] == ["C"]
    assert a.identifier in caplog.text and "b/../x" in caplog.text
    assert caplog.text.count("skipped") == 2


@pytest.mark.parametrize("total_pages", ['"many"', "1000000000", '"1e400"', "-3"])
async def test_odd_total_pages_never_loop(panel: FakePanel, api: PterodactylAPI, total_pages: str) -> None:
    panel.add_servers(3)
    text = await raw_json(panel, "/api/client?per_page=100&page=1")
    assert '"total_pages":1' in text
    claim = f'"total_pages":{total_pages}'
    empty = await raw_json(panel, "/api/client?per_page=100&page=2")
    panel.fail_next(200, path="/api/client", body=text.replace('"total_pages":1', claim))
    panel.fail_next(
        200, count=1000, path="/api/client", body=empty.replace('"total_pages":1', claim)
    )  # every page
    assert len(await asyncio.wait_for(api.list_servers(), 10)) == 3
    later_pages = [r.query["page"] for r in panel.requests if r.query.get("page") not in (None, "1")]
    assert later_pages in ([], ["2"], ["2", "2"])  # an empty page 2 is the end, whatever the claim


async def test_a_long_retry_after_pauses_at_most_a_minute_and_power_fails_fast(
    panel: FakePanel, api: PterodactylAPI, caplog: pytest.LogCaptureFixture
) -> None:
    srv = panel.add_server(state="offline")
    caplog.set_level(logging.WARNING)
    api.budgets["client"].pause(3600)  # what a 429 with Retry-After: 3600 does
    assert api.budgets["client"].delay(time.monotonic()) <= 60
    assert "asked the bot to wait 3600 s; waiting 60 s" in caplog.text
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as info:
        await asyncio.wait_for(api.send_power_action(srv.identifier, "start"), 10)
    assert time.monotonic() - started < 5
    assert "rate-limiting the bot, try again in 60 s" in describe_panel_error(info.value, "S")
    assert panel.count("POST") == 0 and panel.power_requests == []  # and it is never sent later


async def test_interactive_requests_go_ahead_of_polling(panel: FakePanel, sleeps: RecordingSleep) -> None:
    servers = panel.add_servers(10, state="running")
    panel.set_latency(0.2)
    client = PterodactylAPI(panel.url, panel.client_key, panel.app_key, max_concurrency=2, sleep=sleeps)
    async with client:
        polling = asyncio.ensure_future(client.get_many_resources(s.identifier for s in servers))
        await panel.wait_for(lambda r: r.method == "GET")  # the poll is under way, 8 GETs still queued
        await client.get_server(servers[-1].identifier)  # what a member's click waits for
        await client.get_resources(servers[-2].identifier, interactive=True)
        await polling
    order = [r.path for r in sorted(panel.requests, key=lambda r: r.at)]
    assert order.index(f"/api/client/servers/{servers[-1].identifier}") <= 4  # not after the 10 polls
    assert order.index(f"/api/client/servers/{servers[-2].identifier}/resources") <= 5


# -- which panel, and a node that is down (issue 12) ---------------------------------------------------


async def test_the_client_tells_the_panels_apart(panel: FakePanel, api: PterodactylAPI, flavour: str) -> None:
    panel.add_server()
    detected, why = await api.detect_panel()
    assert detected == flavour and api.flavour == flavour
    assert why == (
        "GET /up answered 200"
        if flavour == "pelican"
        else "GET /up answered 404, and its server listing has no Pelican field"
    )


async def test_a_node_that_is_down_is_named_as_such_on_both_panels(
    panel: FakePanel, api: PterodactylAPI, flavour: str
) -> None:
    srv = panel.add_server(state="offline")
    await api.detect_panel()
    panel.set_node_down(srv.node_id, True)
    if flavour == "pelican":
        assert (await api.get_resources(srv.identifier)).current_state == "missing"  # a 200, not an error
    else:
        with pytest.raises(NodeUnreachableError):
            await api.get_resources(srv.identifier)
    with pytest.raises(NodeUnreachableError):  # Pterodactyl: 504 DaemonConnectionException; Pelican: 500
        await api.send_power_action(srv.identifier, "start")
    assert panel.count("POST") == 1  # never retried


async def test_the_longest_identifiers_the_panels_use_work_end_to_end(sleeps: RecordingSleep) -> None:
    async with FakePanel(identifier_format="prfx") as panel:
        srv = panel.add_server(name="Long", state="running", cpu=7)
        assert len(srv.identifier) > 8
        async with PterodactylAPI(panel.url, panel.client_key, panel.app_key, sleep=sleeps) as api:
            [listed] = await api.list_servers()
            assert listed.identifier == srv.identifier
            assert (await api.get_resources(srv.identifier)).cpu_absolute == 7
            await api.send_power_action(srv.identifier, "restart")
    assert panel.power_requests == [(srv.identifier, "restart")]
