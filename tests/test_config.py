"""Configuration: environment over config.ini, every validation failure, the exit-2 path."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ptero.config import (
    CONFIG_KEYS,
    ConfigValidationError,
    Settings,
    config_warnings,
    load_settings,
    mask_secret,
)

ROOT = Path(__file__).resolve().parent.parent
CLIENT_KEY = "ptlc_" + "A1b2C3d4E5f" + "x" * 28 + "SEC1"
APP_KEY = "ptla_" + "Z9y8X7w6V5u" + "y" * 28 + "SEC2"
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.very-secret-token-value-TOK3"

GOOD_ENV = {
    "DISCORD_TOKEN": TOKEN,
    "ALLOWED_GUILD_ID": "123456789012345678",
    "PTERODACTYL_URL": "https://panel.example.com/",
    "PTERODACTYL_CLIENT_API_KEY": CLIENT_KEY,
    "PTERODACTYL_APPLICATION_API_KEY": APP_KEY,
}


def load(env: dict[str, str], tmp_path: Path, ini: str | None = None) -> Settings:
    path = tmp_path / "config.ini"
    if ini is not None:
        path.write_text(ini, encoding="utf-8")
    return load_settings(env, path)


def problems(env: dict[str, str], tmp_path: Path, ini: str | None = None) -> list[str]:
    with pytest.raises(ConfigValidationError) as info:
        load(env, tmp_path, ini)
    return info.value.problems


def test_environment_alone_is_enough_and_defaults_apply(tmp_path: Path) -> None:
    settings = load(GOOD_ENV, tmp_path)
    assert settings.allowed_guild_id == 123456789012345678
    assert settings.panel_url == "https://panel.example.com"  # trailing slash dropped
    assert settings.control_roles == ("Game Server User",)
    assert (settings.update_interval, settings.force_update_interval) == (10.0, 600.0)
    assert settings.cpu_change_threshold == 50.0
    assert settings.log_level == "INFO"


def test_settings_are_frozen_and_repr_hides_secrets(tmp_path: Path) -> None:
    settings = load(GOOD_ENV, tmp_path)
    with pytest.raises(AttributeError):
        settings.update_interval = 1  # type: ignore[misc]
    text = repr(settings)
    for secret in (TOKEN, CLIENT_KEY, APP_KEY):
        assert secret not in text


def test_environment_wins_over_file(tmp_path: Path) -> None:
    ini = (
        "[Discord]\nAllowedGuildID = 424242424242424242\nControlRoles = Admins, 987654321\n"
        "[Bot]\nUpdateInterval = 30\nLogLevel = debug\n"
    )
    env = dict(GOOD_ENV, ALLOWED_GUILD_ID="777777777777777777")
    settings = load(env, tmp_path, ini)
    assert settings.allowed_guild_id == 777777777777777777  # env wins
    assert settings.control_roles == ("Admins", "987654321")  # file fills the rest
    assert settings.update_interval == 30.0
    assert settings.log_level == "DEBUG"


def test_file_alone_is_enough(tmp_path: Path) -> None:
    ini = (
        f"[Discord]\nToken = {TOKEN}\nAllowedGuildID = 555555555555555555\n"
        f"[Pterodactyl]\nPanelURL = http://10.0.0.2:8080\nClientAPIKey = {CLIENT_KEY}\n"
        f"ApplicationAPIKey = {APP_KEY}\n"
    )
    settings = load({}, tmp_path, ini)
    assert settings.panel_url == "http://10.0.0.2:8080"
    assert settings.client_api_key == CLIENT_KEY


def test_config_file_env_var_points_elsewhere(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.ini"
    other.write_text("[Bot]\nUpdateInterval = 25\n", encoding="utf-8")
    settings = load_settings(dict(GOOD_ENV, CONFIG_FILE=str(other)), tmp_path / "config.ini")
    assert settings.update_interval == 25.0
    missing = problems(dict(GOOD_ENV, CONFIG_FILE=str(tmp_path / "nope.ini")), tmp_path)
    assert any("CONFIG_FILE" in p and "does not exist" in p for p in missing)


def test_every_required_key_missing_is_reported_at_once(tmp_path: Path) -> None:
    found = problems({}, tmp_path)
    required = [k for k in CONFIG_KEYS if k.default is None]
    assert len(found) == len(required) == 5
    for key in required:
        assert any(key.env in p and "required" in p for p in found)


def test_all_bad_values_reported_together_with_their_source(tmp_path: Path) -> None:
    env = {
        "DISCORD_TOKEN": TOKEN,
        "ALLOWED_GUILD_ID": "my-guild",
        "PTERODACTYL_URL": "panel.example.com",
        "PTERODACTYL_CLIENT_API_KEY": APP_KEY,  # swapped keys
        "PTERODACTYL_APPLICATION_API_KEY": CLIENT_KEY,
        "UPDATE_INTERVAL": "0",
        "FORCE_UPDATE_INTERVAL": "ten minutes",
        "CPU_CHANGE_THRESHOLD": "-5",
        "LOG_LEVEL": "LOUD",
    }
    found = problems(env, tmp_path)
    assert len(found) == 7
    text = "\n".join(found)
    for fragment in (
        "ALLOWED_GUILD_ID (env): must be a Discord server id",
        "PTERODACTYL_URL (env): must be an http(s) URL",
        "the two panel keys look swapped (PTERODACTYL_CLIENT_API_KEY = ptla_…SEC2, "
        "PTERODACTYL_APPLICATION_API_KEY = ptlc_…SEC1)",
        "UPDATE_INTERVAL (env): must be between 1 and 3600 seconds",
        "FORCE_UPDATE_INTERVAL (env): must be a number",
        "CPU_CHANGE_THRESHOLD (env): must be between 0 and 10000",
        "LOG_LEVEL (env): must be one of",
    ):
        assert fragment in text
    # Secrets: at most the prefix and the last four characters.
    assert CLIENT_KEY not in text and APP_KEY not in text
    assert mask_secret(APP_KEY) in text and APP_KEY[5:-4] not in text


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://panel.example.com", True),
        ("http://127.0.0.1:8080", True),
        ("ftp://panel.example.com", False),
        ("https://", False),
        ("panel.example.com", False),
    ],
)
def test_panel_url_needs_scheme_and_host(tmp_path: Path, url: str, ok: bool) -> None:
    env = dict(GOOD_ENV, PTERODACTYL_URL=url)
    if ok:
        assert load(env, tmp_path).panel_url == url
    else:
        assert any("PTERODACTYL_URL" in p for p in problems(env, tmp_path))


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "abc", "1e-400"])
def test_intervals_must_be_positive_numbers(tmp_path: Path, value: str) -> None:
    found = problems(dict(GOOD_ENV, UPDATE_INTERVAL=value), tmp_path)
    assert len(found) == 1 and "UPDATE_INTERVAL" in found[0]


def test_file_values_name_their_file_and_unknown_keys_are_rejected(tmp_path: Path) -> None:
    ini = (
        "[Discord]\nAllowedGuildId = not-a-number\nControlRole = typo\n"
        "[Pterodactl]\nPanelURL = x\n[Bot]\nUpdateIntervall = 5\n"
    )
    found = problems(dict(GOOD_ENV, ALLOWED_GUILD_ID=""), tmp_path, ini)
    text = "\n".join(found)
    assert "[Discord] AllowedGuildID (" in text and "must be a Discord server id" in text  # case-blind keys
    assert "unknown key ControlRole in [Discord]" in text
    assert "unknown section [Pterodactl]" in text
    assert "unknown key UpdateIntervall in [Bot]" in text
    assert len(found) == 4


def test_unreadable_ini_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    found = problems(GOOD_ENV, tmp_path, "this is not [an ini file\n")
    assert len(found) == 1 and "cannot be read" in found[0]


def test_empty_environment_value_falls_back_to_file(tmp_path: Path) -> None:
    settings = load(dict(GOOD_ENV, UPDATE_INTERVAL=""), tmp_path, "[Bot]\nUpdateInterval = 7\n")
    assert settings.update_interval == 7.0


def test_example_file_parses_and_documents_every_key(tmp_path: Path) -> None:
    example = (ROOT / "config.ini.example").read_text(encoding="utf-8")
    settings = load({}, tmp_path, example)  # the placeholders are shaped like real values
    assert settings.control_roles == ("Game Server User",)
    assert (settings.update_interval, settings.force_update_interval, settings.log_level) == (
        10.0,
        600.0,
        "INFO",
    )
    for key in CONFIG_KEYS:
        assert f"{key.option} =" in example and f"[{key.env}]" in example
        documented = "Default: unset" if key.default == "" else f"Default: {key.default}."
        assert ("Required." in example) and (key.default is None or documented in example)


def test_readme_table_has_one_row_per_key_with_its_default() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): line for line in readme.splitlines() if line.startswith("| `")}
    for key in CONFIG_KEYS:
        row = rows.get(key.env)
        assert row is not None, f"README's configuration table lacks {key.env}"
        assert f"`[{key.section}] {key.option}`" in row
        default = row.rstrip(" |").rsplit("|", 1)[1].strip()
        expected = "required" if key.default is None else f"`{key.default}`" if key.default else "unset"
        assert default.startswith(expected), (key.env, default)


def test_mask_secret_shows_prefix_and_last_four_only() -> None:
    assert mask_secret(CLIENT_KEY) == "ptlc_…SEC1"
    assert mask_secret("short") == "<5 characters>"


def run_bot(cwd: Path, config_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python pterodisbot.py`` with exactly ``config_env`` as its configuration."""
    env = {k: v for k, v in os.environ.items() if k not in {c.env for c in CONFIG_KEYS} | {"CONFIG_FILE"}}
    return subprocess.run(
        [sys.executable, str(ROOT / "pterodisbot.py")],
        cwd=cwd,
        env=env | config_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_configuration_exits_2_with_one_readable_message(tmp_path: Path) -> None:
    result = run_bot(
        tmp_path,
        {
            "DISCORD_TOKEN": TOKEN,
            "PTERODACTYL_CLIENT_API_KEY": APP_KEY,
            "PTERODACTYL_APPLICATION_API_KEY": "ptla_tooshort",
            "UPDATE_INTERVAL": "-3",
        },
    )
    assert result.returncode == 2
    out = result.stdout + result.stderr
    assert "Traceback" not in out
    assert "5 configuration problem(s)" in out
    for name in (
        "ALLOWED_GUILD_ID",
        "PTERODACTYL_URL",
        "PTERODACTYL_CLIENT_API_KEY",
        "UPDATE_INTERVAL (env)",
    ):
        assert name in out
    for secret in (TOKEN, APP_KEY, APP_KEY[5:-4]):
        assert secret not in out


def test_unwritable_embed_folder_exits_2_before_connecting(tmp_path: Path) -> None:
    (tmp_path / "embed").write_text("a file where the folder should be")
    result = run_bot(tmp_path, GOOD_ENV)
    assert result.returncode == 2
    assert "embed is not writable" in result.stderr and "Traceback" not in result.stderr


def test_the_table_and_settings_name_the_same_keys() -> None:
    fields = [f.name for f in dataclasses.fields(Settings)]
    assert sorted(k.attribute for k in CONFIG_KEYS) == sorted(fields)
    assert len({k.env for k in CONFIG_KEYS}) == len(CONFIG_KEYS)  # one row per key
    assert len({(k.section, k.option) for k in CONFIG_KEYS}) == len(CONFIG_KEYS)


# -- hardening (issue 10): ranges, URLs, keys, guild ids, the config file, look-alike variables --------


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"UPDATE_INTERVAL": "1e12"}, "UPDATE_INTERVAL (env): must be between 1 and 3600 seconds"),
        ({"UPDATE_INTERVAL": "0.5"}, "UPDATE_INTERVAL (env): must be between 1 and 3600 seconds"),
        ({"UPDATE_INTERVAL": "30", "FORCE_UPDATE_INTERVAL": "20"}, "must be at least UPDATE_INTERVAL (30)"),
        (
            {"FORCE_UPDATE_INTERVAL": "1e9"},
            "FORCE_UPDATE_INTERVAL (env): must be between 1 and 86400 seconds",
        ),
        ({"CPU_CHANGE_THRESHOLD": "10001"}, "CPU_CHANGE_THRESHOLD (env): must be between 0 and 10000"),
    ],
)
def test_numbers_must_be_in_a_sane_range(tmp_path: Path, env: dict[str, str], fragment: str) -> None:
    found = problems(dict(GOOD_ENV, **env), tmp_path)
    assert len(found) == 1 and fragment in found[0], found


def test_numbers_at_the_edges_of_their_range_are_fine(tmp_path: Path) -> None:
    edges = {"UPDATE_INTERVAL": "1", "FORCE_UPDATE_INTERVAL": "86400", "CPU_CHANGE_THRESHOLD": "10000"}
    settings = load(dict(GOOD_ENV, **edges), tmp_path)
    assert (settings.update_interval, settings.force_update_interval) == (1.0, 86400.0)
    assert settings.cpu_change_threshold == 10000.0
    assert (
        load(dict(GOOD_ENV, UPDATE_INTERVAL="3600", FORCE_UPDATE_INTERVAL="3600"), tmp_path).update_interval
        == 3600
    )


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("https://panel example.com", "must not contain spaces"),
        ("https://panel.example.com:99999", "port must be between 1 and 65535"),
        ("https://panel.example.com:abc", "port must be between 1 and 65535"),
        ("https://panel.example.com/?x=1", "must not have a query string or fragment"),
        ("https://panel.example.com/#top", "must not have a query string or fragment"),
        ("https://admin:hunter2@panel.example.com", "must not contain a user name or password"),
    ],
)
def test_bad_panel_urls_are_refused_without_showing_a_password(
    tmp_path: Path, url: str, fragment: str
) -> None:
    found = problems(dict(GOOD_ENV, PTERODACTYL_URL=url), tmp_path)
    assert len(found) == 1 and fragment in found[0], found
    assert "hunter2" not in found[0]


@pytest.mark.parametrize("bad", ["\n", "\t", " ", "\x00", "\x1b"])
def test_keys_with_whitespace_or_control_characters_inside_are_refused(tmp_path: Path, bad: str) -> None:
    wrapped = CLIENT_KEY[:20] + bad + CLIENT_KEY[20:]
    for name in ("PTERODACTYL_CLIENT_API_KEY", "DISCORD_TOKEN"):
        value = wrapped if name != "DISCORD_TOKEN" else TOKEN[:10] + bad + TOKEN[10:]
        found = problems(dict(GOOD_ENV, **{name: value}), tmp_path)
        assert len(found) == 1 and name in found[0] and "space or control character" in found[0], found
        assert value not in found[0] and CLIENT_KEY[5:-4] not in found[0]


def test_a_key_wrapped_over_two_lines_in_config_ini_is_refused(tmp_path: Path) -> None:
    ini = f"[Pterodactyl]\nClientAPIKey = {CLIENT_KEY[:24]}\n  {CLIENT_KEY[24:]}\n"
    env = {k: v for k, v in GOOD_ENV.items() if k != "PTERODACTYL_CLIENT_API_KEY"}
    found = problems(env, tmp_path, ini)
    assert len(found) == 1 and "ClientAPIKey" in found[0] and "space or control character" in found[0]


@pytest.mark.parametrize("value", ["1", "4194303", "9223372036854775808", "99999999999999999999"])
def test_guild_id_must_be_a_discord_snowflake(tmp_path: Path, value: str) -> None:
    found = problems(dict(GOOD_ENV, ALLOWED_GUILD_ID=value), tmp_path)
    assert len(found) == 1 and "ALLOWED_GUILD_ID (env): must be a Discord server id" in found[0], found


def test_config_file_that_is_a_folder_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "conf.d"
    folder.mkdir()
    found = problems(dict(GOOD_ENV, CONFIG_FILE=str(folder)), tmp_path)
    assert len(found) == 1 and "is a directory, not a file" in found[0], found
    (tmp_path / "config.ini").mkdir()  # docker run -v ./config.ini:/app/config.ini with no such file
    found = problems(GOOD_ENV, tmp_path)
    assert len(found) == 1 and "config.ini is a directory, not a file (Docker creates one" in found[0], found


def test_lookalike_environment_variables_get_a_warning_naming_the_real_key() -> None:
    env = dict(GOOD_ENV, UPDATE_INTERVALL="5", PTERODACTYL_API_KEY="x", DISCORD_TOKN="y", PATH="/bin")
    warnings = config_warnings(env)
    assert any("UPDATE_INTERVALL" in w and "did you mean UPDATE_INTERVAL" in w for w in warnings), warnings
    assert any("PTERODACTYL_API_KEY" in w and "PTERODACTYL_CLIENT_API_KEY" in w for w in warnings), warnings
    assert any("DISCORD_TOKN" in w and "DISCORD_TOKEN" in w for w in warnings), warnings
    assert not any("PATH" in w.split()[0] for w in warnings)
    assert len(warnings) == 3
    assert config_warnings(GOOD_ENV) == []


def test_an_unreadable_store_exits_2_with_the_reason_and_keeps_what_is_there(tmp_path: Path) -> None:
    """Something the bot cannot read where the store should be (here a folder; a root-owned 0600 file
    read by the image's user is the usual case, tested in test_store) stops start-up, untouched."""
    store = tmp_path / "embed" / "embed_locations.json"
    store.mkdir(parents=True)
    (store / "keep.txt").write_text("an admin's file")
    result = run_bot(tmp_path, GOOD_ENV)
    assert result.returncode == 2, result.stderr
    assert "embed_locations.json cannot be read (Is a directory)" in result.stderr
    assert "Traceback" not in result.stderr
    assert (store / "keep.txt").read_text() == "an admin's file"  # not moved aside
    assert not list((tmp_path / "embed").glob("*.corrupt-*"))


def test_lookalike_variables_are_named_with_the_configuration_problems(tmp_path: Path) -> None:
    result = run_bot(tmp_path, {"UPDATE_INTERVALL": "5", "PTERODACTYL_API_KEY": "x"})
    assert result.returncode == 2
    assert (
        "Warning: UPDATE_INTERVALL is not a Pterodisbot setting and is ignored; did you mean UPDATE_INTERVAL?"
        in result.stderr
    )
    assert "PTERODACTYL_API_KEY is not a Pterodisbot setting" in result.stderr


# -- Pelican (issue 12): its key prefixes, and a key of the wrong family in either slot -------------


@pytest.mark.parametrize(
    ("client", "application"), [("pacc_", "papp_"), ("plcn_", "peli_"), ("ptlc_", "papp_")]
)
def test_pelican_keys_old_and_new_are_accepted(tmp_path: Path, client: str, application: str) -> None:
    env = dict(
        GOOD_ENV,
        PTERODACTYL_CLIENT_API_KEY=client + CLIENT_KEY[5:],
        PTERODACTYL_APPLICATION_API_KEY=application + APP_KEY[5:],
    )
    settings = load(env, tmp_path)
    assert settings.client_api_key.startswith(client) and settings.application_api_key.startswith(application)


@pytest.mark.parametrize(
    ("slot", "value"), [("PTERODACTYL_CLIENT_API_KEY", "papp_"), ("PTERODACTYL_APPLICATION_API_KEY", "plcn_")]
)
def test_a_key_of_the_wrong_family_names_both_settings_masked(tmp_path: Path, slot: str, value: str) -> None:
    wrong = value + "W" * 39 + "WXYZ"
    found = problems(dict(GOOD_ENV, **{slot: wrong}), tmp_path)
    assert len(found) == 1, found
    text = found[0]
    assert text.startswith(f"{slot} (env): holds")
    assert "PTERODACTYL_CLIENT_API_KEY = " in text and "PTERODACTYL_APPLICATION_API_KEY = " in text
    assert f"{value}…WXYZ" in text and "W" * 10 not in text  # masked, both of them
    assert CLIENT_KEY[5:-4] not in text and APP_KEY[5:-4] not in text


def test_a_key_with_no_known_prefix_lists_the_prefixes_we_accept(tmp_path: Path) -> None:
    found = problems(dict(GOOD_ENV, PTERODACTYL_CLIENT_API_KEY="abcd_" + "x" * 43), tmp_path)
    assert len(found) == 1 and "must start with one of ptlc_, plcn_, pacc_" in found[0]
    found = problems(dict(GOOD_ENV, PTERODACTYL_APPLICATION_API_KEY="abcd_" + "x" * 43), tmp_path)
    assert len(found) == 1 and "must start with one of ptla_, peli_, papp_" in found[0]


# -- live updates, alerts and audit keys (issues 11 and 13) ------------------------------------------


def test_alert_audit_and_live_keys_default_to_off_and_parse(tmp_path: Path) -> None:
    settings = load(GOOD_ENV, tmp_path)
    assert (settings.alert_channel_id, settings.alert_mention, settings.alert_after) == (None, None, 60)
    assert settings.audit_channel_id is None and settings.live_updates == "auto"
    ini = (
        "[Alerts]\nChannelID = 123456789012345679\nMention = On Call\nAfter = 0\n"
        "[Audit]\nChannelID = 223456789012345679\n"
    )
    settings = load(dict(GOOD_ENV, LIVE_UPDATES="OFF"), tmp_path, ini)
    assert (settings.alert_channel_id, settings.alert_mention, settings.alert_after) == (
        123456789012345679,
        "On Call",
        0,
    )
    assert settings.audit_channel_id == 223456789012345679 and settings.live_updates == "off"


def test_bad_alert_and_audit_values_are_all_reported_at_once(tmp_path: Path) -> None:
    env = dict(
        GOOD_ENV,
        ALERT_CHANNEL_ID="general",
        ALERT_MENTION="@everyone",
        ALERT_AFTER="-5",
        AUDIT_CHANNEL_ID="12",
        LIVE_UPDATES="sometimes",
    )
    found = "\n".join(problems(env, tmp_path))
    for fragment in (
        "ALERT_CHANNEL_ID (env): must be a Discord channel id",
        "ALERT_MENTION (env): must name one role (by name or id), never @everyone",
        "ALERT_AFTER (env): must be a whole number of seconds from 0 to 86400",
        "AUDIT_CHANNEL_ID (env): must be a Discord channel id",
        "LIVE_UPDATES (env): must be one of auto, off",
    ):
        assert fragment in found, found
