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

from tests.fake_panel import FLAVOURS, FakePanel, FakeServer
from tests.fake_wings import parse_token

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
    key: str | None = None,
    method: str = "GET",
    **kw: Any,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """One request (with the panel's client key unless `key` is given); returns (status, parsed JSON
    or raw bytes, response)."""
    headers = {"Authorization": f"Bearer {key or panel.client_key}", **kw.pop("headers", {})}
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


@pytest.mark.parametrize(
    "extra",
    [[], ["--flavour", "pelican", "--wings", "--transition-delay", "0.5"]],
    ids=["default", "pelican"],
)
async def test_standalone_main(extra: list[str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fake_panel",
        "--servers",
        "3",
        "--port",
        "0",
        *extra,
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
        async with aiohttp.ClientSession(headers=headers) as s:
            async with s.get(url) as r:
                body = await r.json()
            assert body["meta"]["pagination"]["total"] == 3
            async with s.get(env["FAKE_PANEL_URL"] + "/up") as r:
                up = r.status
            if extra:
                assert env["FAKE_PANEL_FLAVOUR"] == "pelican" and up == 200
                assert env["FAKE_PANEL_CLIENT_KEY"].startswith("pacc_")
                wings = env["FAKE_WINGS_NODE_1"].replace("ws://", "http://")
                async with s.get(wings + "/api/servers/nothere/ws") as r:  # the fake Wings answers
                    assert r.status == 404 and (await r.json())["error"].startswith("The requested")
            else:
                assert env["FAKE_PANEL_FLAVOUR"] == "pterodactyl" and up == 404
                assert not any(k.startswith("FAKE_WINGS") for k in env)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# ----------------------------------------------------------------- flavours, Pelican, websocket tokens


@pytest.fixture(params=FLAVOURS)
async def flavoured(request: pytest.FixtureRequest) -> AsyncIterator[FakePanel]:
    """A panel of each flavour, with that flavour's default keys."""
    async with FakePanel(flavour=request.param) as p:
        yield p


def token_claims(panel: FakePanel, srv: FakeServer, token: str) -> dict[str, Any]:
    claims = parse_token(token, panel.nodes[srv.node_id].daemon_token)
    assert claims is not None, "token not signed with the node's daemon token"
    return claims


async def test_visibility_and_list_types(flavoured: FakePanel, session) -> None:
    p = flavoured
    owned = p.add_server("Owned")
    shared = p.add_server("Shared", access="subuser")
    foreign = p.add_server("Foreign", access=None)

    async def names(query: str = "") -> list[str]:
        _, body, _ = await call(session, p, f"/api/client{query}")
        return [item["attributes"]["name"] for item in body["data"]]

    assert await names() == ["Owned", "Shared"]
    assert await names("?type=owner") == ["Owned"]
    assert await names("?type=admin") == await names("?type=admin-all") == []  # not a root admin
    _, body, _ = await call(session, p, "/api/client")
    assert [i["attributes"]["server_owner"] for i in body["data"]] == [True, False]
    status, body, _ = await call(session, p, f"/api/client/servers/{foreign.identifier}/resources")
    assert (
        status == 404
        and body["errors"][0]["detail"] == "The requested resource does not exist on this server."
    )
    status, body, _ = await call(session, p, f"/api/client/servers/{shared.identifier}")
    assert status == 200 and body["meta"]["is_server_owner"] is False
    assert (
        "websocket.connect" in body["meta"]["user_permissions"]
        and "*" not in body["meta"]["user_permissions"]
    )

    p.client_user_admin, p.client_username = True, "root"
    _, account, _ = await call(session, p, "/api/client/account")
    assert account["attributes"]["admin"] is True and account["attributes"]["username"] == "root"
    assert await names() == ["Owned", "Shared"]  # no type: still owned or shared only
    assert await names("?type=admin") == ["Foreign"]
    assert await names("?type=admin-all") == ["Owned", "Shared", "Foreign"]
    status, body, _ = await call(session, p, f"/api/client/servers/{foreign.identifier}")
    assert status == 200 and body["attributes"]["server_owner"] is False
    assert body["meta"] == {
        "is_server_owner": False,
        "user_permissions": [
            "*",
            "admin.websocket.errors",
            "admin.websocket.install",
            "admin.websocket.transfer",
        ],
    }
    assert (await call(session, p, f"/api/client/servers/{foreign.identifier}/resources"))[0] == 200
    # A root admin's client key is accepted on the application API.
    assert (await call(session, p, "/api/application/servers"))[0] == 200
    assert owned.access == "owner"


async def test_application_key_acl_and_null_includes(flavoured: FakePanel, session) -> None:
    p = flavoured
    srv = p.add_server()
    unauthorized = {
        "code": "AccessDeniedHttpException",
        "status": "403",
        "detail": "This action is unauthorized.",
    }

    async def app(path: str) -> tuple[int, Any]:
        status, body, _ = await call(session, p, path, key=p.app_key)
        return status, body

    p.app_key_permissions["nodes"] = False
    for path in ("/api/application/nodes", "/api/application/nodes/1"):
        status, body = await app(path)
        assert status == 403 and body["errors"][0] == unauthorized
    assert (await app("/api/application/nodes/1/allocations"))[0] == 200
    assert (await app("/api/application/nodes/99"))[0] == 404  # binding comes first
    status, body = await app("/api/application/servers?include=allocations,node")
    rel = body["data"][0]["attributes"]["relationships"]
    assert status == 200 and rel["node"] == {"object": "null_resource", "attributes": None}
    assert rel["allocations"]["data"][0]["attributes"]["id"] == srv.allocation_id

    p.app_key_permissions.update(nodes=True, allocations=False)
    assert (await app("/api/application/nodes/1/allocations"))[0] == 403
    _, body = await app(f"/api/application/servers/{srv.id}?include=allocations,node")
    rel = body["attributes"]["relationships"]
    assert rel["allocations"] == {"object": "null_resource", "attributes": None}
    assert rel["node"]["object"] == "node"

    p.app_key_permissions["servers"] = False
    for path in ("/api/application/servers", f"/api/application/servers/{srv.id}"):
        status, body = await app(path)
        assert status == 403 and body["errors"][0] == unauthorized
    assert (await app("/api/application/nodes"))[0] == 200


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_application_server_filters(flavour: str, session) -> None:
    async with FakePanel(flavour=flavour) as p:
        lobby, _, arena = p.add_server("Lobby"), p.add_server("Survival"), p.add_server("Arena PvP")
        short = "uuid_short" if flavour == "pelican" else "uuidShort"
        wrong = "uuidShort" if flavour == "pelican" else "uuid_short"

        async def names(query: str) -> list[str]:
            status, body, _ = await call(session, p, f"/api/application/servers?{query}", key=p.app_key)
            assert status == 200
            return [item["attributes"]["name"] for item in body["data"]]

        assert await names(f"filter[uuid]={lobby.uuid}") == ["Lobby"]
        assert await names("filter[name]=pvp") == ["Arena PvP"]  # partial, case-insensitive
        assert await names("filter[name]=lobby,arena") == ["Lobby", "Arena PvP"]  # comma: any
        assert await names(f"filter[{short}]={arena.uuid_short}") == ["Arena PvP"]
        assert await names("filter[name]=") == ["Lobby", "Survival", "Arena PvP"]
        status, body, _ = await call(
            session, p, f"/api/application/servers?filter[{wrong}]={lobby.uuid_short}", key=p.app_key
        )
        allowed = "uuid, uuid_short" if flavour == "pelican" else "uuid, uuidShort"
        assert status == 400 and body["errors"][0] == {
            "code": "InvalidFilterQuery",
            "status": "400",
            "detail": f"Requested filter(s) `{wrong}` are not allowed. "
            f"Allowed filter(s) are `{allowed}, name, description, image, external_id`.",
        }


async def test_node_down_pterodactyl_504(session) -> None:
    clock = FakeClock()
    async with FakePanel(clock=clock, resource_cache_seconds=20) as p:
        srv = p.add_server(state="running")
        base = f"/api/client/servers/{srv.identifier}"
        p.set_node_down(1, True)
        for method, path, kw in (("GET", "/resources", {}), ("POST", "/power", {"json": {"signal": "stop"}})):
            status, body, _ = await call(session, p, base + path, method=method, **kw)
            assert status == 504 and body["errors"][0] == {
                "code": "DaemonConnectionException",
                "status": "504",
                "detail": "Could not establish a connection to the machine running this server. "
                "Please try again.",
            }
        assert srv.state == "running" and p.power_requests == []
        p.set_node_down(1, False)  # a failure is never cached
        assert await state_of(session, p, srv.identifier) == "running"


async def test_node_down_pelican_missing_cached_and_power_500(session) -> None:
    clock = FakeClock()
    async with FakePanel(flavour="pelican", clock=clock, resource_cache_seconds=20) as p:
        srv = p.add_server(state="running", cpu=50.0, memory_bytes=10**9, disk_bytes=10**9, uptime_ms=5)
        base = f"/api/client/servers/{srv.identifier}"
        p.set_node_down(1, True)
        status, body, _ = await call(session, p, base + "/resources")
        assert status == 200 and body == {
            "object": "stats",
            "attributes": {
                "current_state": "missing",
                "is_suspended": False,
                "resources": {
                    "memory_bytes": 0,
                    "cpu_absolute": 0,
                    "disk_bytes": 0,
                    "network_rx_bytes": 0,
                    "network_tx_bytes": 0,
                    "uptime": 0,
                },
            },
        }
        status, body, _ = await call(session, p, base + "/power", method="POST", json={"signal": "stop"})
        assert status == 500 and body == {
            "errors": [
                {
                    "code": "ConnectionException",
                    "status": "500",
                    "detail": "An unexpected error was encountered while processing this request, please try "
                    "again.",
                }
            ]
        }
        assert srv.state == "running" and p.power_requests == []
        p.set_node_down(1, False)
        clock.now += 19.9  # "missing" lingers for the cache's 20 s
        assert await state_of(session, p, srv.identifier) == "missing"
        clock.now += 0.1
        assert await state_of(session, p, srv.identifier) == "running"


async def test_node_maintenance_409(flavoured: FakePanel, session) -> None:
    p = flavoured
    srv = p.add_server(state="running")
    p.nodes[1].maintenance_mode = True
    status, body, _ = await call(session, p, f"/api/client/servers/{srv.identifier}")
    assert status == 200 and body["attributes"]["is_node_under_maintenance"] is True
    status, body, _ = await call(session, p, f"/api/client/servers/{srv.identifier}/resources")
    assert status == 409 and body["errors"][0]["detail"] == (
        "The node of this server is currently under maintenance and the functionality requested is "
        "unavailable."
    )
    _, node, _ = await call(session, p, "/api/application/nodes/1", key=p.app_key)
    assert node["attributes"]["maintenance_mode"] is True


async def test_flavour_basics_keys_limits_up_and_login(flavoured: FakePanel, session) -> None:
    p = flavoured
    pelican = p.flavour == "pelican"
    prefixes = ("pacc_", "papp_") if pelican else ("ptlc_", "ptla_")
    assert (p.client_key[:5], p.app_key[:5]) == prefixes
    assert len(p.client_key) == len(p.app_key) == 48
    _, _, resp = await call(session, p, "/api/client")
    assert resp.headers["X-RateLimit-Limit"] == ("256" if pelican else "720")
    _, _, resp = await call(session, p, "/api/application/servers", key=p.app_key)
    assert resp.headers["X-RateLimit-Limit"] == ("256" if pelican else "240")
    login = "/login" if pelican else "/auth/login"
    async with aiohttp.ClientSession() as plain:  # no JSON Accept
        async with plain.get(p.url + "/up") as r:
            assert r.status == (200 if pelican else 404) and r.content_type == "text/html"
            assert ("Application up" in await r.text()) is pelican
        async with plain.get(p.url + "/api/client", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == p.url + login
        async with plain.get(p.url + "/api/client") as r:
            assert r.status == 200 and ("Pelican" in await r.text()) is pelican


async def test_pelican_accepts_older_prefixes(session) -> None:
    old_client, old_app = "plcn_" + "k" * 11 + "m" * 32, "peli_" + "n" * 11 + "o" * 32
    async with FakePanel(old_client, old_app, flavour="pelican") as p:
        assert (await call(session, p, "/api/client"))[0] == 200
        assert (await call(session, p, "/api/application/nodes", key=old_app))[0] == 200


async def test_pelican_shapes(session) -> None:
    async with FakePanel(flavour="pelican") as p:
        srv = p.add_server("Lobby", description="Hub")
        bare = p.add_server("Bare", allocation=False)
        bare.feature_databases = bare.feature_allocations = None
        p.nodes[1].daemon_sftp_alias = "sftp.example.com"
        p.nodes[1].daemon_connect = 443
        _, body, _ = await call(session, p, "/api/client")
        first, second = (item["attributes"] for item in body["data"])
        assert first["description"] == "Hub"
        assert first["sftp_details"] == {"ip": "127.0.0.1", "alias": "sftp.example.com", "port": 2022}
        assert first["limits"]["oom_killer"] is False and first["limits"]["oom_disabled"] is True
        assert first["limits"]["threads"] is None
        assert second["feature_limits"] == {"databases": None, "allocations": None, "backups": 0}
        assert second["relationships"]["allocations"]["data"] == []
        p.editable_descriptions = False
        _, one, _ = await call(session, p, f"/api/client/servers/{srv.identifier}")
        assert "description" not in one["attributes"]
        _, alloc, _ = await call(session, p, f"/api/client/servers/{bare.identifier}/network/allocations")
        assert alloc == {"object": "list", "data": []}

        _, body, _ = await call(
            session, p, "/api/application/servers?include=allocations,node,location,nest", key=p.app_key
        )
        lobby, no_alloc = (item["attributes"] for item in body["data"])
        assert "nest" not in lobby and lobby["limits"]["oom_killer"] is False
        assert set(lobby["relationships"]) == {"allocations", "node"}  # location/nest silently ignored
        assert no_alloc["allocation"] is None and no_alloc["relationships"]["allocations"]["data"] == []
        node = lobby["relationships"]["node"]["attributes"]
        assert "location_id" not in node
        assert node["daemon_connect"] == 443 and node["daemon_listen"] == p.nodes[1].daemon_listen
        assert node["daemon_sftp_alias"] == "sftp.example.com" and node["tags"] == []
        assert node["daemon_base"] == "/var/lib/pelican/volumes"
        assert {"cpu", "cpu_overallocate"} <= node.keys()
        assert node["allocated_resources"] == {"memory": 4096, "disk": 20480, "cpu": 400}
        _, allocations, _ = await call(session, p, "/api/application/nodes/1/allocations", key=p.app_key)
        assert [a["attributes"]["id"] for a in allocations["data"]] == [srv.allocation_id]
    async with FakePanel() as ptero:
        with pytest.raises(ValueError, match="primary allocation"):
            ptero.add_server(allocation=False)
        assert "location_id" in ptero._node_item(1)["attributes"]


async def test_nodes_are_objects_on_loopback(panel: FakePanel, session) -> None:
    srv = panel.add_server(node_id=3, node_name="Berlin")
    assert panel.nodes[3].name == "Berlin" and panel.nodes[1].name == "Node 1"
    _, body, _ = await call(session, panel, "/api/application/nodes", key=APP)
    for item in body["data"]:
        attrs = item["attributes"]
        assert attrs["fqdn"] == "127.0.0.1" and attrs["scheme"] == "http" and "daemon_connect" not in attrs
        # Nothing listens on the daemon port until the fake Wings is started.
        with pytest.raises(aiohttp.ClientConnectorError) as info:
            await session.get(f"http://127.0.0.1:{attrs['daemon_listen']}/")
        assert info.value.os_error.errno == errno.ECONNREFUSED
    _, item, _ = await call(session, panel, f"/api/client/servers/{srv.identifier}")
    assert item["attributes"]["node"] == "Berlin" and item["attributes"]["sftp_details"]["ip"] == "127.0.0.1"


async def test_prfx_identifiers_and_binding(session) -> None:
    async with FakePanel(identifier_format="prfx") as p:
        srv = p.add_server()
        assert srv.identifier.startswith("serv_") and len(srv.identifier) == 31
        assert srv.uuid_short == srv.uuid[:8] and not srv.uuid.startswith(srv.identifier)
        _, body, _ = await call(session, p, "/api/client")
        assert body["data"][0]["attributes"]["identifier"] == srv.identifier
        for value in (srv.identifier, srv.uuid, srv.uuid_short):  # SubstituteClientBindings accepts all
            assert await state_of(session, p, value) == "offline"
        custom = p.add_server(identifier="a-rather-long-identifier-of-any-length")
        assert (await call(session, p, f"/api/client/servers/{custom.identifier}"))[0] == 200
        with pytest.raises(ValueError):
            p.add_server(identifier=custom.identifier)
    async with FakePanel(flavour="pelican") as pel:
        srv = pel.add_server()
        assert len(srv.identifier) == 8 and srv.uuid.startswith(srv.identifier)
        long = pel.add_server(identifier="longer-uuid-short")
        for value in (srv.identifier, srv.uuid, long.identifier, long.uuid):  # either, whatever the length
            assert (await call(session, pel, f"/api/client/servers/{value}"))[0] == 200
        with pytest.raises(ValueError):
            FakePanel(flavour="pelican", identifier_format="prfx")


async def test_websocket_token_endpoint(flavoured: FakePanel, session) -> None:
    p = flavoured
    pelican = p.flavour == "pelican"
    srv = p.add_server()
    node = p.nodes[1]
    node.daemon_connect = node.daemon_listen + 1 if pelican else node.daemon_connect
    status, body, resp = await call(session, p, f"/api/client/servers/{srv.identifier}/websocket")
    port = node.daemon_connect if pelican else node.daemon_listen
    assert status == 200 and set(body) == {"data"} and set(body["data"]) == {"token", "socket"}
    assert body["data"]["socket"] == f"ws://127.0.0.1:{port}/api/servers/{srv.uuid}/ws"
    assert "ws:\\/\\/127.0.0.1" in await resp.text() and "X-RateLimit-Remaining" in resp.headers
    claims = token_claims(p, srv, body["data"]["token"])
    assert claims["server_uuid"] == srv.uuid and claims["user_uuid"] == p.client_user_uuid
    assert claims["permissions"] == ["*"] and claims["iss"] == p.url
    assert claims["aud"] == [f"http://127.0.0.1:{port}"]
    assert claims["exp"] - claims["iat"] == 600 and claims["nbf"] == claims["iat"] - 300
    assert ("scope" in claims) is pelican and claims.get("scope", "websocket") == "websocket"
    assert ("user_id" in claims) is not pelican
    assert p.tokens_issued == 1 and p.tokens_issued_per_server == {srv.identifier: 1}

    p.token_lifetime = 20
    claims = token_claims(
        p, srv, (await call(session, p, f"/api/client/servers/{srv.uuid}/websocket"))[1]["data"]["token"]
    )
    assert 20 <= claims["exp"] - claims["iat"] <= 21  # short lifetimes are exact, not whole seconds

    sub = p.add_server(access="subuser", websocket_permission=False)
    status, body, _ = await call(session, p, f"/api/client/servers/{sub.identifier}/websocket")
    assert status == 403 and body["errors"][0] == {
        "code": "HttpForbiddenException",
        "status": "403",
        "detail": "You do not have permission to connect to this server's websocket.",
    }
    sub.websocket_permission = True
    _, body, _ = await call(session, p, f"/api/client/servers/{sub.identifier}/websocket")
    assert "websocket.connect" in token_claims(p, sub, body["data"]["token"])["permissions"]
    foreign = p.add_server(access=None)
    assert (await call(session, p, f"/api/client/servers/{foreign.identifier}/websocket"))[0] == 404
    assert p.tokens_issued == 3


@pytest.mark.parametrize(
    ("flavour", "admin", "setup", "expected"),
    [
        ("pterodactyl", False, {"status": "suspended"}, 409),
        ("pterodactyl", True, {"status": "suspended"}, 409),
        ("pterodactyl", True, {"maintenance": True}, 409),
        ("pterodactyl", False, {"status": "installing"}, 409),
        ("pterodactyl", True, {"status": "installing"}, 200),
        ("pterodactyl", True, {"status": "restoring_backup"}, 200),
        ("pterodactyl", True, {"is_transferring": True}, 200),
        ("pelican", False, {"status": "suspended"}, 409),
        ("pelican", False, {"status": "restoring_backup"}, 409),
        ("pelican", True, {"status": "suspended"}, 200),
        ("pelican", True, {"maintenance": True}, 200),
    ],
)
async def test_websocket_token_409_rules(
    flavour: str, admin: bool, setup: dict[str, Any], expected: int, session
) -> None:
    async with FakePanel(flavour=flavour) as p:
        p.client_user_admin = admin
        p.nodes[1].maintenance_mode = setup.pop("maintenance", False)
        srv = p.add_server(**setup)
        status, body, _ = await call(session, p, f"/api/client/servers/{srv.identifier}/websocket")
        assert status == expected
        if expected == 409:
            assert body["errors"][0]["code"] == "ServerStateConflictException" and p.tokens_issued == 0


async def test_websocket_token_pelican_per_server_limit(session) -> None:
    clock = FakeClock()
    async with FakePanel(flavour="pelican", clock=clock) as p:
        srv, other = p.add_server(), p.add_server()
        path = f"/api/client/servers/{srv.identifier}/websocket"
        assert [(await call(session, p, path))[0] for _ in range(5)] == [200] * 5
        clock.now += 12.2
        status, body, resp = await call(session, p, path)
        assert status == 429 and body["errors"][0]["detail"] == "Too Many Attempts."
        assert resp.headers["Retry-After"] == "48" and resp.headers["X-RateLimit-Limit"] == "5"
        assert (await call(session, p, f"/api/client/servers/{other.uuid}/websocket"))[0] == 200  # per server
        clock.now += 47.8  # 60 s after the first token: a fresh window
        assert (await call(session, p, path))[0] == 200
        assert p.tokens_issued == 7 and p.tokens_issued_per_server == {srv.identifier: 6, other.identifier: 1}
        assert p.too_many_requests == 1
    async with FakePanel() as ptero:  # no such limiter on Pterodactyl
        srv = ptero.add_server()
        path = f"/api/client/servers/{srv.identifier}/websocket"
        assert [(await call(session, ptero, path))[0] for _ in range(8)] == [200] * 8
