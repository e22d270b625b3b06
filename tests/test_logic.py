"""Pure logic: update decision, embed building, custom ids, authorization, store, budget."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import discord
import pytest

from pterodisbot import (
    UNREACHABLE_AFTER_FAILURES,
    Allocation,
    EmbedLocation,
    EmbedStore,
    PanelServer,
    PterodactylAuthError,
    PterodactylConnectionError,
    RequestBudget,
    ServerConflictError,
    ServerLimits,
    ServerResources,
    ServerStatusView,
    StatusSnapshot,
    TrackedState,
    build_status_embed,
    describe_panel_error,
    display_state,
    embed_fingerprint,
    format_bytes,
    format_cpu,
    format_uptime,
    make_custom_id,
    may_control,
    parse_custom_id,
    stretched_interval,
    update_reason,
)

# -- update decision ------------------------------------------------------------------------------

RULES = {"cpu_threshold": 50.0, "force_interval": 600.0}


def test_first_check_always_edits() -> None:
    assert update_reason(None, "offline", 0.0, 0.0, **RULES) == "first check"


def test_state_change_edits() -> None:
    prev = TrackedState("offline", 0.0, 100.0)
    assert update_reason(prev, "starting", 0.0, 101.0, **RULES) == "state changed"
    assert update_reason(prev, "offline", 0.0, 101.0, **RULES) is None


@pytest.mark.parametrize(
    ("cpu", "expected"),
    [
        (60.0, None),
        (110.0, None),
        (110.001, "cpu changed"),
        (9.999, "cpu changed"),
        (10.0, None),
        (160.0, "cpu changed"),
    ],
)
def test_cpu_threshold_is_strictly_more_than_50_points(cpu: float, expected: str | None) -> None:
    prev = TrackedState("running", 60.0, 100.0)
    assert update_reason(prev, "running", cpu, 150.0, **RULES) == expected


@pytest.mark.parametrize(
    ("elapsed", "expected"), [(599.999, None), (600.0, "forced refresh"), (900.0, "forced refresh")]
)
def test_forced_refresh_after_force_interval(elapsed: float, expected: str | None) -> None:
    prev = TrackedState("running", 10.0, 1000.0)
    assert update_reason(prev, "running", 10.0, 1000.0 + elapsed, **RULES) == expected


def test_state_change_takes_precedence_over_other_reasons() -> None:
    prev = TrackedState("running", 10.0, 0.0)
    assert update_reason(prev, "stopping", 99.0, 10_000.0, **RULES) == "state changed"


def test_stretched_interval_fits_whole_cycles_in_the_budget_window() -> None:
    assert stretched_interval(100, 10.0, 706) == 10.0  # 7 cycles of 100 fit 706 per 61 s
    assert stretched_interval(150, 10.0, 706) == pytest.approx(61 / 4 + 0.5)  # 4 cycles of 150 fit
    assert stretched_interval(1000, 10.0, 706) == pytest.approx(1000 * 61 / 706)  # not even one
    assert stretched_interval(0, 10.0, 706) == 10.0
    assert stretched_interval(200, 0.05, 980_000) == 0.05  # a raised panel limit: no stretching at all


@pytest.mark.parametrize("servers", [1, 50, 100, 101, 150, 353, 354, 700, 2000])
def test_stretched_cycles_never_exceed_the_budget_in_any_window(servers: int) -> None:
    budget, window = 706, 61.0
    interval = stretched_interval(servers, 10.0, budget, window)
    cycles_in_a_window = int(window // interval) + 1  # most cycle starts in any window-long span
    if servers <= budget:
        assert cycles_in_a_window * servers <= budget
    else:  # one cycle is more than the budget: its requests at least spread over the interval
        assert interval >= servers * window / budget


def make_server(**overrides: object) -> PanelServer:
    values: dict[str, object] = {
        "id": 1,
        "identifier": "1a2b3c4d",
        "uuid": "1a2b3c4d-0000-0000-0000-000000000000",
        "name": "Survival",
        "description": "Vanilla survival world",
        "status": None,
        "is_suspended": False,
        "is_transferring": False,
        "limits": ServerLimits(cpu=200, memory_mb=2048, disk_mb=10240),
        "node": "Node 1",
        "allocation": Allocation("10.0.0.5", 25565, "play.example.com"),
    }
    values.update(overrides)
    return PanelServer(**values)  # type: ignore[arg-type]


def make_resources(state: str = "running", cpu: float = 45.5, **overrides: object) -> ServerResources:
    values: dict[str, object] = {
        "current_state": state,
        "is_suspended": False,
        "cpu_absolute": cpu,
        "memory_bytes": 512 * 1024 * 1024,
        "disk_bytes": 3 * 1024**3,
        "network_rx_bytes": 1536,
        "network_tx_bytes": 10 * 1024 * 1024,
        "uptime_ms": 3_723_000,
    }
    values.update(overrides)
    return ServerResources(**values)  # type: ignore[arg-type]


def test_display_state_prefers_blocking_status_and_marks_unreachable() -> None:
    server = make_server()
    assert display_state(server, make_resources("running"), 0) == "running"
    assert display_state(server, make_resources("stopped"), 0) == "offline"
    assert display_state(server, make_resources("running"), UNREACHABLE_AFTER_FAILURES - 1) == "running"
    assert display_state(server, make_resources("running"), UNREACHABLE_AFTER_FAILURES) == "unreachable"
    assert display_state(server, None, 0) == "unreachable"
    assert display_state(make_server(is_suspended=True), None, 5) == "suspended"
    assert display_state(make_server(status="installing"), None, 0) == "installing"
    assert display_state(make_server(is_transferring=True), make_resources(), 0) == "transferring"


# -- embeds -----------------------------------------------------------------------------------------

WHEN = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def fields(embed: discord.Embed) -> dict[str, str]:
    return {f.name: f.value for f in embed.fields}  # type: ignore[misc]


def test_running_embed_has_all_fields_with_units() -> None:
    embed = build_status_embed(StatusSnapshot(make_server(), make_resources(), "running", updated_at=WHEN))
    got = fields(embed)
    assert embed.title == "Survival"
    assert embed.colour == discord.Colour(0x57F287)
    assert got["State"] == "🟢 Running"
    assert got["CPU"] == "45.5% of 200%"
    assert got["Memory"] == "512.0 MiB / 2.0 GiB"
    assert got["Disk"] == "3.0 GiB / 10.0 GiB"
    assert got["Network"] == "⬇ 1.5 KiB · ⬆ 10.0 MiB"
    assert got["Uptime"] == "1h 2m"
    assert got["Node"] == "Node 1"
    assert embed.timestamp == WHEN
    assert "1a2b3c4d" in (embed.footer.text or "") and "last updated" in (embed.footer.text or "")
    assert embed.image.url is None


def test_unlimited_server_and_graph_attachment() -> None:
    server = make_server(limits=ServerLimits(cpu=0, memory_mb=0, disk_mb=0))
    embed = build_status_embed(
        StatusSnapshot(server, make_resources(), "running"), graph_filename="metrics.png"
    )
    got = fields(embed)
    assert got["CPU"] == "45.5% of ∞"
    assert got["Memory"].endswith("/ ∞") and got["Disk"].endswith("/ ∞")
    assert embed.image.url == "attachment://metrics.png"


@pytest.mark.parametrize(
    ("state", "label", "colour"),
    [
        ("offline", "🔴 Offline", 0xED4245),
        ("starting", "🟡 Starting", 0xFEE75C),
        ("stopping", "🟠 Stopping", 0xE67E22),
        ("suspended", "⛔ Suspended", 0x992D22),
        ("installing", "🛠️ Installing", 0x5865F2),
        ("unreachable", "❔ Panel unreachable", 0x95A5A6),
    ],
)
def test_states_have_label_and_colour(state: str, label: str, colour: int) -> None:
    embed = build_status_embed(StatusSnapshot(make_server(), make_resources("offline", 0.0), state))
    assert fields(embed)["State"] == label
    assert embed.colour == discord.Colour(colour)


def test_offline_embed_hides_live_only_fields_and_stale_is_marked() -> None:
    offline = build_status_embed(StatusSnapshot(make_server(), make_resources("offline", 0.0), "offline"))
    assert "Uptime" not in fields(offline) and "Network" not in fields(offline)
    stale = build_status_embed(StatusSnapshot(make_server(), make_resources(), "running", stale=True))
    assert "last known data" in (stale.description or "")


def test_huge_names_and_descriptions_stay_within_discord_limits() -> None:
    server = make_server(name="N" * 500, description="D" * 10_000, node="X" * 3000)
    embed = build_status_embed(
        StatusSnapshot(server, make_resources(), "running", stale=True), graph_filename="g.png"
    )
    assert len(embed.title or "") == 256
    assert len(embed.description or "") <= 4096
    assert all(len(f.value or "") <= 1024 for f in embed.fields)
    assert len(embed) <= 6000


def test_fingerprint_ignores_timestamp_but_not_content_or_graph() -> None:
    a = build_status_embed(StatusSnapshot(make_server(), make_resources(), "running", updated_at=WHEN))
    b = build_status_embed(StatusSnapshot(make_server(), make_resources(), "running"))
    c = build_status_embed(StatusSnapshot(make_server(), make_resources(cpu=46.0), "running"))
    assert embed_fingerprint(a, None) == embed_fingerprint(b, None)
    assert embed_fingerprint(a, None) != embed_fingerprint(c, None)
    assert embed_fingerprint(a, b"png1") != embed_fingerprint(a, b"png2")


@pytest.mark.parametrize(
    ("value", "text"), [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (5 * 1024**3, "5.0 GiB")]
)
def test_format_bytes(value: int, text: str) -> None:
    assert format_bytes(value) == text


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0s"), (59_999, "59s"), (61_000, "1m 1s"), (3_600_000, "1h 0m"), (90_061_000, "1d 1h 1m")],
)
def test_format_uptime(ms: int, text: str) -> None:
    assert format_uptime(ms) == text


def test_format_cpu_scales_to_vcpus() -> None:
    assert format_cpu(45.5, 200) == "45.5% of 200%"
    assert format_cpu(150, 0) == "150.0% of ∞"


# -- custom ids and buttons ---------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["start", "stop", "restart", "address"])
def test_custom_id_round_trip(action: str) -> None:
    custom_id = make_custom_id(action, "1a2b3c4d")  # type: ignore[arg-type]
    assert custom_id == f"pterodisbot:{action}:1a2b3c4d"
    assert parse_custom_id(custom_id) == (action, "1a2b3c4d")


@pytest.mark.parametrize(
    "custom_id",
    ["pterodisbot:kill:1a2b3c4d", "pterodisbot:start:", "other:start:abc", "pterodisbot:start:a/b"],
)
def test_foreign_or_bad_custom_ids_do_not_parse(custom_id: str) -> None:
    assert parse_custom_id(custom_id) is None


def test_bad_server_id_cannot_build_a_custom_id() -> None:
    with pytest.raises(ValueError):
        make_custom_id("start", "x" * 200)


async def test_status_view_has_four_persistent_buttons() -> None:
    view = ServerStatusView("1a2b3c4d")
    assert view.timeout is None and view.is_persistent()
    rows = view.to_components()
    buttons = [c for row in rows for c in row["components"]]
    assert [b["label"] for b in buttons] == ["Start", "Stop", "Restart", "Show Address"]
    assert [b["style"] for b in buttons] == [3, 4, 1, 2]  # green, red, blue, grey
    assert all(len(b["custom_id"]) <= 100 for b in buttons)


# -- authorization ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role_ids", "role_names", "admin", "allowed"),
    [
        ([1], ["Game Server User"], False, True),  # by name
        ([1], ["game server user"], False, True),  # names compare case-blind
        ([555], ["Other"], False, True),  # by id
        ([2], ["Other"], True, True),  # Administrator always
        ([2], ["Other"], False, False),  # refused
        ([], [], False, False),
    ],
)
def test_may_control(role_ids: list[int], role_names: list[str], admin: bool, allowed: bool) -> None:
    assert may_control(role_ids, role_names, admin, ("Game Server User", "555")) is allowed


def test_panel_errors_become_actionable_sentences_without_secrets() -> None:
    conflict = ServerConflictError(
        409, "This server is currently suspended and the functionality requested is unavailable."
    )
    assert "suspended" in describe_panel_error(conflict, "Survival")
    assert "permission" in describe_panel_error(
        PterodactylAuthError(403, "This action is unauthorized."), "S"
    )
    assert "unreachable" in describe_panel_error(PterodactylConnectionError("x"), "S")


# -- embed store --------------------------------------------------------------------------------------


def test_store_round_trip_with_string_ids(tmp_path: Path) -> None:
    path = tmp_path / "embed" / "embed_locations.json"
    store = EmbedStore(path)
    store.load()
    store.set("1a2b3c4d", EmbedLocation(111111111111111111, 222222222222222222))
    raw = json.loads(path.read_text())
    assert raw == {"1a2b3c4d": {"channel_id": "111111111111111111", "message_id": "222222222222222222"}}
    again = EmbedStore(path)
    again.load()
    assert again.get("1a2b3c4d") == EmbedLocation(111111111111111111, 222222222222222222)
    assert again.remove("1a2b3c4d", expected=EmbedLocation(1, 2)) is False  # not the one we expected
    assert again.remove("1a2b3c4d") is True
    assert json.loads(path.read_text()) == {}


def test_store_write_is_atomic_and_leaves_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "embed_locations.json"
    store = EmbedStore(path)
    store.set("aaaa1111", EmbedLocation(1, 2))
    before = path.read_text()

    def crash(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    assert store.set("bbbb2222", EmbedLocation(3, 4)) is False  # reported, not raised
    assert store.get("bbbb2222") == EmbedLocation(3, 4)  # kept in memory for the next save
    assert path.read_text() == before  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["embed_locations.json"]  # temp file cleaned up


@pytest.mark.parametrize(
    "content", ['{"a": ', "[]", '{"x": {"channel_id": "1"}}', '{"../x": {}}', "\xff\xfe"]
)
def test_corrupt_store_is_moved_aside_and_bot_starts_empty(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "embed_locations.json"
    path.write_bytes(content.encode("latin-1"))
    store = EmbedStore(path)
    store.load()
    assert len(store) == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("embed_locations.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == content.encode("latin-1")  # nothing lost
    assert not path.exists()
    assert "moved it to" in caplog.text


# -- request budget -----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_budget_lets_a_burst_through_then_waits_for_the_window() -> None:
    clock = FakeClock()
    budget = RequestBudget(500, clock=clock, sleep=clock.sleep)
    assert budget.reserve == 10 and budget.polling_per_minute == 490
    for _ in range(490):
        await budget.acquire()
    assert clock.slept == []  # a whole cycle goes out at once
    await budget.acquire()  # the 491st polling request waits for the first to leave the window
    assert clock.now == pytest.approx(1000.0 + RequestBudget.WINDOW)


async def test_power_actions_may_use_the_reserve() -> None:
    clock = FakeClock()
    budget = RequestBudget(500, clock=clock, sleep=clock.sleep)
    for _ in range(490):
        await budget.acquire()
    for _ in range(10):
        await budget.acquire(priority=True)
    assert clock.slept == []
    assert budget.delay(clock.now, priority=True) > 0


async def test_budget_learns_limit_and_outside_usage_from_headers() -> None:
    clock = FakeClock()
    budget = RequestBudget(720, clock=clock, sleep=clock.sleep)
    await budget.acquire()
    budget.observe(limit=60, remaining=10)  # someone else used 49 of 60
    assert budget.limit == 60
    assert budget.used(clock.now) == 50
    for _ in range(budget.polling_per_minute - 50):  # 58 - 50: the rest of the window is ours
        await budget.acquire()
    assert clock.slept == []
    await budget.acquire()
    assert clock.slept and clock.now >= 1000.0 + 60.0  # waited for the outside usage to age out


def test_leftover_temp_files_from_a_crash_are_removed_on_load(tmp_path: Path) -> None:
    path = tmp_path / "embed_locations.json"
    EmbedStore(path).set("aaaa1111", EmbedLocation(1, 2))
    (tmp_path / ".embed_locations-abc123.tmp").write_text('{"half": ')
    store = EmbedStore(path)
    store.load()
    assert store.get("aaaa1111") == EmbedLocation(1, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embed_locations.json"]
