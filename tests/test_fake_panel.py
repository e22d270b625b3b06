"""Self-tests of the fake Pterodactyl panel, through a raw aiohttp client over real HTTP."""

from __future__ import annotations

import asyncio
import errno
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fake_panel import FakePanel

CLIENT = "ptlc_" + "a" * 11 + "b" * 32
APP = "ptla_" + "c" * 11 + "d" * 32
ROOT = Path(__file__).resolve().parent.parent


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def panel() -> AsyncIterator[FakePanel]:
    async with FakePanel(client_key=CLIENT, app_key=APP) as p:
        yield p


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Accept": "application/json"}) as s:
        yield s


async def call(
    session: aiohttp.ClientSession,
    panel: FakePanel,
    path: str,
    key: str = CLIENT,
    method: str = "GET",
    **kw: Any,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """One request; returns (status, parsed JSON or raw bytes, response)."""
    headers = {"Authorization": f"Bearer {key}", **kw.pop("headers", {})}
    async with session.request(method, panel.url + path, headers=headers, **kw) as resp:
        raw = await resp.read()
        body = await resp.json() if resp.content_type == "application/json" else raw
        return resp.status, body, resp


async def state_of(session: aiohttp.ClientSession, panel: FakePanel, ident: str) -> str:
    status, body, _ = await call(session, panel, f"/api/client/servers/{ident}/resources")
    assert status == 200
    return body["attributes"]["current_state"]


async def test_application_pagination_envelope_and_links_quirk(panel: FakePanel, session) -> None:
    panel.add_servers(5)
    base = f"{panel.url}/api/application/servers"
    names, metas = [], []
    for page in (1, 2, 3):
        status, body, _ = await call(
            session, panel, f"/api/application/servers?per_page=2&page={page}", key=APP
        )
        assert status == 200 and body["object"] == "list"
        names += [item["attributes"]["name"] for item in body["data"]]
        metas.append(body["meta"]["pagination"])
    assert names == [f"Server {i:03d}" for i in range(1, 6)]
    assert metas[0] == {
        "total": 5,
        "count": 2,
        "per_page": 2,
        "current_page": 1,
        "total_pages": 3,
        "links": {"next": f"{base}?page=2"},
    }  # per_page/include are NOT kept
    assert metas[1]["links"] == {"previous": f"{base}?page=1", "next": f"{base}?page=3"}
    assert metas[2]["count"] == 1 and metas[2]["links"] == {"previous": f"{base}?page=2"}
    # Following links.next literally loses per_page: page 2 of 50-per-page is empty.
    async with session.get(metas[0]["links"]["next"], headers={"Authorization": f"Bearer {APP}"}) as resp:
        raw = await resp.text()
        follow = await resp.json()
    assert follow["data"] == [] and follow["meta"]["pagination"]["per_page"] == 50
    assert follow["meta"]["pagination"]["links"] == {"previous": f"{base}?page=1"}
    assert "\\/api\\/application\\/servers?page=1" in raw  # Laravel escapes slashes
    assert resp.headers["Content-Type"] == "application/json"


async def test_client_list_keeps_query_caps_per_page_and_empty_links(panel: FakePanel, session) -> None:
    panel.add_servers(3)
    _, body, _ = await call(session, panel, "/api/client?per_page=2&type=owner")
    next_url = f"{panel.url}/api/client?per_page=2&type=owner&page=2"  # the query string is kept
    assert body["meta"]["pagination"]["links"] == {"next": next_url}
    _, body, resp = await call(session, panel, "/api/client?per_page=500")
    assert body["meta"]["pagination"]["per_page"] == 100 and body["meta"]["pagination"]["total_pages"] == 1
    assert '"links":{}' in (await resp.text())  # an object, not []
    attrs = body["data"][0]["attributes"]
    assert attrs["relationships"]["allocations"]["data"][0]["attributes"]["is_default"] is True
    assert {"identifier", "internal_id", "uuid", "limits", "status", "is_transferring"} <= attrs.keys()
    assert attrs["uuid"].startswith(attrs["identifier"])
    _, body, _ = await call(session, panel, "/api/client?type=admin-all")  # not a root admin
    assert body["data"] == []


async def test_include_relationships_are_inside_attributes(panel: FakePanel, session) -> None:
    srv = panel.add_server("Lobby", ip_alias="play.example.com", port=25570, node_id=2, node_name="Berlin")
    status, body, _ = await call(session, panel, "/api/application/servers?include=allocations,node", key=APP)
    assert status == 200
    item = body["data"][0]
    attrs = item["attributes"]
    assert "relationships" not in item and attrs["allocation"] == srv.allocation_id
    assert attrs["relationships"]["allocations"] == {
        "object": "list",
        "data": [
            {
                "object": "allocation",
                "attributes": {
                    "id": srv.allocation_id,
                    "ip": "10.0.0.5",
                    "alias": "play.example.com",
                    "port": 25570,
                    "notes": None,
                    "assigned": True,
                },
            }
        ],
    }
    node = attrs["relationships"]["node"]
    assert node["object"] == "node" and node["attributes"]["name"] == "Berlin"
    assert node["attributes"]["id"] == attrs["node"] == 2 and node["attributes"]["fqdn"]
    assert attrs["limits"] == {
        "memory": 2048,
        "swap": 0,
        "disk": 10240,
        "io": 500,
        "cpu": 200,
        "threads": None,
        "oom_disabled": True,
    }
    status, one, _ = await call(session, panel, f"/api/application/servers/{srv.id}", key=APP)
    assert status == 200 and one["attributes"]["identifier"] == srv.identifier
    assert "relationships" not in one["attributes"]
    for bad in (srv.identifier, "999"):
        assert (await call(session, panel, f"/api/application/servers/{bad}", key=APP))[0] == 404
    _, nodes, _ = await call(session, panel, "/api/application/nodes", key=APP)
    assert [n["attributes"]["id"] for n in nodes["data"]] == [1, 2]


async def test_resources_offline_and_running(panel: FakePanel, session) -> None:
    srv = panel.add_server(
        cpu=55.5,
        memory_bytes=10**9,
        disk_bytes=5 * 10**8,
        network_rx_bytes=7,
        network_tx_bytes=9,
        uptime_ms=1234,
    )
    status, body, _ = await call(session, panel, f"/api/client/servers/{srv.identifier}/resources")
    assert status == 200
    assert body == {
        "object": "stats",
        "attributes": {
            "current_state": "offline",
            "is_suspended": False,
            "resources": {
                "memory_bytes": 0,
                "cpu_absolute": 0,
                "disk_bytes": 5 * 10**8,
                "network_rx_bytes": 0,
                "network_tx_bytes": 0,
                "uptime": 0,
            },
        },
    }
    srv.state = "running"
    _, body, _ = await call(session, panel, f"/api/client/servers/{srv.uuid}/resources")  # full uuid too
    assert body["attributes"]["current_state"] == "running"
    assert body["attributes"]["resources"] == {
        "memory_bytes": 10**9,
        "cpu_absolute": 55.5,
        "disk_bytes": 5 * 10**8,
        "network_rx_bytes": 7,
        "network_tx_bytes": 9,
        "uptime": 1234,
    }


async def test_power_transitions(panel: FakePanel, session) -> None:
    srv = panel.add_server()
    ident, power = srv.identifier, f"/api/client/servers/{srv.identifier}/power"
    status, body, resp = await call(session, panel, power, method="POST", json={"signal": "start"})
    assert status == 204 and body == b"" and "X-RateLimit-Remaining" in resp.headers
    assert [await state_of(session, panel, ident) for _ in range(3)] == ["starting", "running", "running"]
    srv.memory_bytes = 123
    await call(session, panel, power, method="POST", json={"signal": "start"})  # ignored: not offline
    assert await state_of(session, panel, ident) == "running"
    await call(session, panel, power, method="POST", json={"signal": "stop"})
    assert [await state_of(session, panel, ident) for _ in range(2)] == ["stopping", "offline"]
    assert srv.memory_bytes == 0
    srv.state = "running"
    await call(session, panel, power, method="POST", json={"signal": "restart"})
    assert [await state_of(session, panel, ident) for _ in range(4)] == [
        "stopping",
        "starting",
        "running",
        "running",
    ]
    await call(session, panel, power, method="POST", json={"signal": "kill"})
    assert srv.state == "offline"
    assert panel.power_requests == [(ident, s) for s in ("start", "start", "stop", "restart", "kill")]


async def test_power_validation_422(panel: FakePanel, session) -> None:
    power = f"/api/client/servers/{panel.add_server().identifier}/power"
    status, body, _ = await call(session, panel, power, method="POST", json={"signal": "explode"})
    assert status == 422 and body == {
        "errors": [
            {
                "code": "ValidationException",
                "status": "422",
                "detail": "The selected signal is invalid.",
                "meta": {"source_field": "signal", "rule": "in"},
            }
        ]
    }
    status, body, _ = await call(session, panel, power, method="POST", json={})
    assert status == 422 and body["errors"][0]["meta"]["rule"] == "required"
    # Form encoding works too, and values are trimmed.
    status, _, _ = await call(session, panel, power, method="POST", data={"signal": " start "})
    assert status == 204 and panel.power_requests[-1][1] == "start"
    status, body, _ = await call(
        session, panel, power, method="POST", data=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and body["errors"][0]["code"] == "BadRequestHttpException"


@pytest.mark.parametrize(
    ("kw", "detail"),
    [
        ({"status": "suspended"}, "currently suspended"),
        ({"status": "installing"}, "not yet completed its installation"),
        ({"status": "install_failed"}, "not yet completed its installation"),
        ({"status": "restoring_backup"}, "restoring from a backup"),
        ({"is_transferring": True}, "being transferred"),
    ],
)
async def test_state_conflict_409(panel: FakePanel, session, kw: dict[str, Any], detail: str) -> None:
    srv = panel.add_server(state="running", **kw)
    base = f"/api/client/servers/{srv.identifier}"
    status, body, _ = await call(session, panel, base)  # the server GET still answers
    assert status == 200 and body["meta"] == {"is_server_owner": True, "user_permissions": ["*"]}
    for method, path, kwargs in (("GET", "/resources", {}), ("POST", "/power", {"json": {"signal": "stop"}})):
        status, body, resp = await call(session, panel, base + path, method=method, **kwargs)
        assert status == 409 and body["errors"][0]["code"] == "ServerStateConflictException"
        assert detail in body["errors"][0]["detail"] and "X-RateLimit-Limit" in resp.headers
    assert panel.power_requests == [] and srv.state == "running"


async def test_auth_401_json_vs_302_login_without_accept(panel: FakePanel, session) -> None:
    srv = panel.add_server()
    path = f"/api/client/servers/{srv.identifier}"
    status, body, resp = await call(session, panel, path, key="ptlc_wrong")
    assert status == 401 and body == {
        "errors": [{"code": "AuthenticationException", "status": "401", "detail": "Unauthenticated."}]
    }
    assert "X-RateLimit-Limit" not in resp.headers
    lower = {"Authorization": f"bearer {CLIENT}"}  # "Bearer " is case-sensitive
    async with session.get(panel.url + path, headers=lower) as resp:
        assert resp.status == 401
    async with aiohttp.ClientSession() as plain:  # aiohttp's default Accept: */*
        async with plain.get(panel.url + path, allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == panel.url + "/auth/login"
        async with plain.get(panel.url + path) as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            assert "<title>Pterodactyl</title>" in await resp.text()
        async with plain.get(
            panel.url + "/api/client/servers/nothere", headers={"Authorization": f"Bearer {CLIENT}"}
        ) as resp:  # other errors come back as HTML too
            assert resp.status == 404 and resp.content_type == "text/html"
    assert panel.count("GET", "/auth/login") == 1


async def test_key_type_mismatch_403(panel: FakePanel, session) -> None:
    srv = panel.add_server()
    status, body, resp = await call(session, panel, f"/api/client/servers/{srv.identifier}", key=APP)
    assert status == 403 and body["errors"][0] == {
        "code": "AccessDeniedHttpException",
        "status": "403",
        "detail": "You are attempting to use an application API key on an endpoint that requires a "
        "client API key.",
    }
    assert resp.headers["X-RateLimit-Remaining"] == "719"  # counted (throttle runs before the check)
    status, body, _ = await call(session, panel, "/api/application/servers", key=CLIENT)
    assert status == 403
    assert body["errors"][0]["detail"] == "This account does not have permission to access the API."


async def test_rate_limit_fixed_window(session) -> None:
    clock = FakeClock()
    async with FakePanel(client_key=CLIENT, app_key=APP, client_rate_limit=2, clock=clock) as panel:
        remaining = [
            (await call(session, panel, "/api/client"))[2].headers["X-RateLimit-Remaining"] for _ in range(2)
        ]
        assert remaining == ["1", "0"]
        status, body, resp = await call(session, panel, "/api/client")
        assert status == 429 and body["errors"][0] == {
            "code": "ThrottleRequestsException",
            "status": "429",
            "detail": "Too Many Attempts.",
        }
        assert resp.headers["Retry-After"] == "60" and int(resp.headers["X-RateLimit-Reset"]) > time.time()
        clock.now += 30.4
        assert (await call(session, panel, "/api/client"))[2].headers["Retry-After"] == "30"
        assert (await call(session, panel, "/api/client", key="bad"))[0] == 401  # not counted
        assert (await call(session, panel, "/api/application/servers", key=APP))[0] == 200  # own counter
        clock.now += 29.6  # 60 s after the first counted request: a fresh window
        status, _, resp = await call(session, panel, "/api/client")
        assert status == 200 and resp.headers["X-RateLimit-Remaining"] == "1"
        assert panel.too_many_requests == 2


async def test_routing_errors(panel: FakePanel, session) -> None:
    status, body, _ = await call(session, panel, "/api/client/foo", key="none")  # route match comes first
    assert status == 404 and body["errors"][0]["detail"] == "The route api/client/foo could not be found."
    srv = panel.add_server()
    status, body, _ = await call(session, panel, f"/api/client/servers/{srv.identifier}/power")
    assert status == 405 and body["errors"][0]["detail"].endswith("Supported methods: POST.")
    status, body, _ = await call(session, panel, "/api/client/servers/deadbeef")
    assert status == 404 and body["errors"][0] == {
        "code": "NotFoundHttpException",
        "status": "404",
        "detail": "The requested resource could not be found on the server.",
    }
    panel.remove_server(srv.identifier)
    assert (await call(session, panel, f"/api/client/servers/{srv.identifier}"))[0] == 404


async def test_fail_next_and_fail_ratio(panel: FakePanel, session) -> None:
    power = f"/api/client/servers/{panel.add_server().identifier}/power"
    panel.fail_next(502, path_contains="/power")
    assert (await call(session, panel, "/api/client"))[0] == 200  # path filter: not consumed
    status, body, resp = await call(session, panel, power, method="POST", json={"signal": "start"})
    assert status == 502 and body["errors"][0]["code"] == "DaemonConnectionException"
    assert "X-RateLimit-Remaining" in resp.headers and panel.power_requests == []
    assert (await call(session, panel, power, method="POST", json={"signal": "start"}))[0] == 204
    panel.fail_next(500, count=2, body={"custom": True})
    results = [(await call(session, panel, "/api/client"))[:2] for _ in range(3)]
    assert results[:2] == [(500, {"custom": True})] * 2 and results[2][0] == 200

    async def pattern() -> list[int]:
        panel.fail_ratio(0.5, statuses=(500, 503), seed=7)
        return [(await call(session, panel, "/api/client/account"))[0] for _ in range(12)]

    first = await pattern()
    assert first == await pattern() and {200, 500, 503} >= set(first) and 200 in first and len(set(first)) > 1
    panel.fail_ratio(0)
    assert (await call(session, panel, "/api/client/account"))[0] == 200


async def test_hang_next_then_recovers(panel: FakePanel, session) -> None:
    srv = panel.add_server()
    panel.hang_next(path_contains="/resources")
    with pytest.raises(TimeoutError):
        await call(
            session,
            panel,
            f"/api/client/servers/{srv.identifier}/resources",
            timeout=aiohttp.ClientTimeout(total=0.15),
        )
    hung = await panel.wait_for(lambda r: r.hung)
    assert hung.status is None and hung.path.endswith("/resources")
    assert (await call(session, panel, f"/api/client/servers/{srv.identifier}/resources"))[0] == 200


async def test_malformed_and_html(panel: FakePanel, session) -> None:
    panel.malformed_next()
    panel.html_next()
    async with session.get(panel.url + "/api/client", headers={"Authorization": f"Bearer {CLIENT}"}) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "application/json"
        with pytest.raises(ValueError):
            await r.json()
    async with session.get(panel.url + "/api/client", headers={"Authorization": f"Bearer {CLIENT}"}) as r:
        assert r.status == 200 and r.content_type == "text/html"
        with pytest.raises(aiohttp.ContentTypeError):
            await r.json()
    assert (await call(session, panel, "/api/client"))[0] == 200


async def test_set_down_refuses_then_same_port(panel: FakePanel, session) -> None:
    url = panel.url
    assert (await call(session, panel, "/api/client"))[0] == 200
    panel.set_down(True)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
        with pytest.raises(aiohttp.ClientConnectorError) as info:
            await fresh.get(url + "/api/client")
        assert info.value.os_error.errno == errno.ECONNREFUSED
    with pytest.raises(aiohttp.ClientConnectionError):  # the pooled keep-alive connection was cut too
        await call(session, panel, "/api/client")
    panel.set_down(False)  # synchronous: the socket listens again right away
    status, _, _ = await call(session, panel, "/api/client")
    assert status == 200 and panel.url == url


async def test_wait_for_and_recording(panel: FakePanel, session) -> None:
    srv = panel.add_server()
    task = asyncio.create_task(
        call(
            session,
            panel,
            f"/api/client/servers/{srv.identifier}/power",
            method="POST",
            json={"signal": "start"},
        )
    )
    rec = await panel.wait_for(lambda r: r.method == "POST" and r.path.endswith("/power"))
    assert rec.status == 204 and rec.json == {"signal": "start"} and srv.state == "starting"
    assert rec.headers["authorization"] == rec.headers["Authorization"] == f"Bearer {CLIENT}"
    assert (await task)[0] == 204
    assert await panel.wait_for(lambda r: r.status == 204) is rec  # already recorded: immediate
    with pytest.raises(TimeoutError):
        await panel.wait_for(lambda r: r.path == "/never", timeout=0.05)
    await call(session, panel, "/api/client?page=2")
    assert panel.requests[-1].query == {"page": "2"} and panel.count("GET") == 1 and panel.count() == 2


async def test_resource_cache_and_latency(session) -> None:
    clock = FakeClock()
    async with FakePanel(client_key=CLIENT, app_key=APP, clock=clock, resource_cache_seconds=20) as panel:
        srv = panel.add_server(state="running", cpu=10.0)
        path = f"/api/client/servers/{srv.identifier}/resources"
        assert (await call(session, panel, path))[1]["attributes"]["resources"]["cpu_absolute"] == 10.0
        srv.cpu = 90.0
        clock.now += 19.9
        assert (await call(session, panel, path))[1]["attributes"]["resources"]["cpu_absolute"] == 10.0
        clock.now += 0.1
        assert (await call(session, panel, path))[1]["attributes"]["resources"]["cpu_absolute"] == 90.0
        panel.set_latency(0.05)
        started = time.perf_counter()
        await call(session, panel, path)
        assert time.perf_counter() - started >= 0.05


async def test_standalone_main() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fake_panel",
        "--servers",
        "3",
        "--port",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        env = {}
        while "FAKE_PANEL_APP_KEY" not in env:
            line = await asyncio.wait_for(proc.stdout.readline(), 15)
            assert line, "fake panel exited early"
            key, _, value = line.decode().strip().partition("=")
            env[key] = value
        headers = {"Accept": "application/json", "Authorization": f"Bearer {env['FAKE_PANEL_CLIENT_KEY']}"}
        url = env["FAKE_PANEL_URL"] + "/api/client"
        async with aiohttp.ClientSession(headers=headers) as s, s.get(url) as r:
            body = await r.json()
        assert body["meta"]["pagination"]["total"] == 3
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
