"""ptero.cards: formatting and the status embed, pure."""

from __future__ import annotations

from datetime import UTC, datetime

import discord
import pytest

from ptero.cards import (
    StatusSnapshot,
    build_status_embed,
    describe_panel_error,
    embed_fingerprint,
    format_bytes,
    format_cpu,
    format_uptime,
)
from ptero.panel import (
    MalformedResponseError,
    PterodactylAuthError,
    PterodactylConnectionError,
    RateLimitedError,
    ServerConflictError,
    ServerLimits,
    ServerNotFoundError,
)
from tests.factories import make_resources, make_server

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


def test_panel_errors_become_actionable_sentences_without_secrets() -> None:
    key = "ptlc_" + "k" * 43  # what a careless error text might carry
    cases = [
        (
            ServerConflictError(409, f"This server is currently suspended ({key})."),
            "The panel refused: **Survival** is busy or blocked",
        ),
        (PterodactylAuthError(403, f"This action is unauthorized. {key}"), "lacks the permission"),
        (PterodactylConnectionError(f"GET /x?key={key}: cannot reach the panel"), "unreachable"),
        (ServerNotFoundError(404, key), "no longer knows **Survival**"),
        (RateLimitedError(429, key, retry_after=7), "try again in 7 s"),
        (MalformedResponseError(f"sent {key}"), "not answering properly"),
    ]
    for error, expected in cases:
        sentence = describe_panel_error(error, "Survival")
        assert expected in sentence, sentence
        if not isinstance(error, ServerConflictError):  # only the panel's own reason is passed on
            assert key not in sentence and "k" * 20 not in sentence, sentence


def test_every_value_of_a_card_fits_discords_limits_whatever_the_panel_sends() -> None:
    server = make_server(name="N" * 500, node="X" * 3000, description="D" * 10_000)
    for state in ("weird_" + "x" * 1500, "", "  \n ", "running"):
        embed = build_status_embed(
            StatusSnapshot(server, make_resources(), state, stale=True), graph_filename="g.png"
        )
        assert len(embed.title or "") <= 256 and len(embed.description or "") <= 4096
        assert all(len(f.name or "") <= 256 and 0 < len(f.value or "") <= 1024 for f in embed.fields)
        assert len(embed.footer.text or "") <= 2048 and len(embed) <= 6000
    unknown = build_status_embed(StatusSnapshot(make_server(), None, "restarting"))
    assert fields(unknown)["State"] == "❔ Restarting" and unknown.colour == discord.Colour(0x95A5A6)
