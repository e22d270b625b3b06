"""Configuration: environment variables over config.ini, validated into a frozen Settings.

One table, ``CONFIG_KEYS``, describes every key: its environment name, its place in config.ini, the
Settings field it fills, its default and the converter that checks it. ``load_settings`` loops over
the table and reports every problem at once (``ConfigValidationError``); ``main()`` prints that and
exits 2. A new key costs one row here and one field in ``Settings``.
"""

from __future__ import annotations

import configparser
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigValidationError(Exception):
    """Every configuration problem found at start-up, reported together."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"Pterodisbot cannot start: {len(self.problems)} configuration problem(s):"]
        lines += [f"  - {problem}" for problem in self.problems]
        lines.append("Set them as environment variables or in config.ini (see config.ini.example).")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Settings:
    """The validated configuration. Secrets are kept out of repr()."""

    discord_token: str = field(repr=False)
    allowed_guild_id: int
    control_roles: tuple[str, ...]
    panel_url: str
    client_api_key: str = field(repr=False)
    application_api_key: str = field(repr=False)
    server_scope: str = "mine"  # mine: servers the client key's user owns or shares; all: every server
    update_interval: float = 10.0
    force_update_interval: float = 600.0
    cpu_change_threshold: float = 50.0
    log_level: str = "INFO"
    live_updates: str = "auto"  # auto: Wings websocket where it works, polling elsewhere; off: polling
    alert_channel_id: int | None = None  # down/up alerts go here (unset: no alerts)
    alert_mention: str | None = None  # a role (name or id) mentioned in down alerts
    alert_after: int = 60  # seconds a server must stay down before the alert
    audit_channel_id: int | None = None  # the audit trail of power presses (unset: the log only)

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.discord_token, self.client_api_key, self.application_api_key)


def mask_secret(value: str) -> str:
    """Show at most a key's 5-character type prefix and its last 4 characters."""
    if len(value) <= 12:
        return f"<{len(value)} characters>"
    return f"{value[:5]}…{value[-4:]}"


# -- converters: each takes the raw text and returns the value, or raises ValueError ---------------

Converter = Callable[[str], Any]
# Discord snowflakes: 64-bit, with a timestamp in the top 42 bits, so any real id is at least 2**22.
SNOWFLAKE_MIN, SNOWFLAKE_MAX = 1 << 22, (1 << 63) - 1


def _has_space_or_control(value: str) -> bool:
    return any(ch.isspace() or not ch.isprintable() for ch in value)


def secret_text(value: str) -> str:
    if _has_space_or_control(value):
        raise ValueError(
            f"contains a space or control character (wrapped over two lines?) (got {mask_secret(value)})"
        )
    return value


def snowflake(value: str) -> int:
    if not value.isdigit() or not SNOWFLAKE_MIN <= int(value) <= SNOWFLAKE_MAX:
        raise ValueError(f"must be a Discord server id: a number of 17 to 20 digits (got {value!r})")
    return int(value)


def optional(convert: Converter) -> Converter:
    """Unset (empty) means None; anything else must pass ``convert``."""

    def maybe(value: str) -> Any:
        return None if value == "" else convert(value)

    return maybe


def channel_id(value: str) -> int:
    if not value.isdigit() or not SNOWFLAKE_MIN <= int(value) <= SNOWFLAKE_MAX:
        raise ValueError(f"must be a Discord channel id: a number of 17 to 20 digits (got {value!r})")
    return int(value)


def whole_number(unit: str, *, minimum: int, maximum: int) -> Converter:
    def convert(value: str) -> int:
        if not value.isdigit() or not minimum <= int(value) <= maximum:
            raise ValueError(f"must be a whole number of {unit} from {minimum} to {maximum} (got {value!r})")
        return int(value)

    return convert


def role_name_or_id(value: str) -> str:
    if value.startswith("@") or value.casefold() in ("everyone", "here"):
        raise ValueError(f"must name one role (by name or id), never @everyone or @here (got {value!r})")
    return value


def role_list(value: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    if not names:
        raise ValueError("must name at least one role")
    return names


def panel_url(value: str) -> str:
    example = "https://panel.example.com"
    if any(ch.isspace() for ch in value):
        raise ValueError(f"must not contain spaces, like {example} (got {value.split('@')[-1]!r})")
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None:  # never echo the password
        raise ValueError(
            f"must not contain a user name or password (got {parts.scheme}://…@{parts.hostname})"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL with a host, like {example} (got {value!r})")
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ValueError(f"must not have a query string or fragment, like {example} (got {value!r})")
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        port = 0
    if port == 0:
        raise ValueError(f"port must be between 1 and 65535 (got {value!r})")
    return value.rstrip("/")


# Key prefixes per family (pelican.md: Pelican renamed its prefixes once and may again).
KEY_PREFIXES = {
    "client": ("ptlc_", "plcn_", "pacc_"),  # Pterodactyl; Pelican before and since beta25
    "application": ("ptla_", "peli_", "papp_"),
}
KEY_SETTINGS = {"client": "PTERODACTYL_CLIENT_API_KEY", "application": "PTERODACTYL_APPLICATION_API_KEY"}


def key_family(value: str) -> str | None:
    return next((family for family, prefixes in KEY_PREFIXES.items() if value.startswith(prefixes)), None)


def api_key(family: str) -> Converter:
    """A panel API key of either family: which family it is, is checked with both keys at hand."""

    def convert(value: str) -> str:
        secret_text(value)
        if key_family(value) is None:
            accepted = ", ".join(KEY_PREFIXES[family])
            raise ValueError(
                f"must start with one of {accepted} (a {family} API key; got {mask_secret(value)})"
            )
        if len(value) < 20:
            raise ValueError(f"is too short to be a panel API key (got {mask_secret(value)})")
        return value

    return convert


def _key_families(parsed: Mapping[str, Any], where: Mapping[str, str]) -> str | None:
    """One problem naming both key settings when a key of the wrong family sits in a slot."""
    keys = {"client": parsed.get("client_api_key"), "application": parsed.get("application_api_key")}
    wrong = [slot for slot, value in keys.items() if value is not None and key_family(str(value)) != slot]
    if not wrong:
        return None
    shown = ", ".join(
        f"{KEY_SETTINGS[slot]} = {mask_secret(str(value)) if value is not None else '(not usable)'}"
        for slot, value in keys.items()
    )
    if len(wrong) == 2:
        return f"the two panel keys look swapped ({shown}): the client key goes in {KEY_SETTINGS['client']}"
    slot = wrong[0]
    other = "application" if slot == "client" else "client"
    return (
        f"{where[slot + '_api_key']}: holds {'an' if other == 'application' else 'a'} {other} API key "
        f"({shown}); it needs a {slot} key ({', '.join(KEY_PREFIXES[slot])})"
    )


def number(unit: str, *, minimum: float, maximum: float) -> Converter:
    """A number of ``unit`` from ``minimum`` to ``maximum``, both included."""

    def convert(value: str) -> float:
        try:
            result = float(value)
        except ValueError:
            raise ValueError(f"must be a number of {unit} (got {value!r})") from None
        if not minimum <= result <= maximum:  # also refuses nan and inf
            raise ValueError(f"must be between {minimum:g} and {maximum:g} {unit} (got {value!r})")
        return result

    return convert


def choice(*allowed: str) -> Converter:
    def convert(value: str) -> str:
        if value.lower() not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)} (got {value!r})")
        return value.lower()

    return convert


def log_level(value: str) -> str:
    if value.upper() not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)} (got {value!r})")
    return value.upper()


@dataclass(frozen=True, slots=True)
class ConfigKey:
    env: str
    section: str
    option: str
    attribute: str  # the Settings field
    default: str | None  # None means required
    convert: Converter
    secret: bool = False


SECONDS = "seconds"
CONFIG_KEYS: tuple[ConfigKey, ...] = (
    # env, section, option, Settings field, default (None: required), converter, secret
    ConfigKey("DISCORD_TOKEN", "Discord", "Token", "discord_token", None, secret_text, True),
    ConfigKey("ALLOWED_GUILD_ID", "Discord", "AllowedGuildID", "allowed_guild_id", None, snowflake),
    ConfigKey("CONTROL_ROLES", "Discord", "ControlRoles", "control_roles", "Game Server User", role_list),
    ConfigKey("PTERODACTYL_URL", "Pterodactyl", "PanelURL", "panel_url", None, panel_url),
    ConfigKey(
        "PTERODACTYL_CLIENT_API_KEY",
        "Pterodactyl",
        "ClientAPIKey",
        "client_api_key",
        None,
        api_key("client"),
        True,
    ),
    ConfigKey(
        "PTERODACTYL_APPLICATION_API_KEY",
        "Pterodactyl",
        "ApplicationAPIKey",
        "application_api_key",
        None,
        api_key("application"),
        True,
    ),
    ConfigKey("SERVER_SCOPE", "Pterodactyl", "ServerScope", "server_scope", "mine", choice("mine", "all")),
    ConfigKey(
        "UPDATE_INTERVAL",
        "Bot",
        "UpdateInterval",
        "update_interval",
        "10",
        number(SECONDS, minimum=1, maximum=3600),
    ),
    ConfigKey(
        "FORCE_UPDATE_INTERVAL",
        "Bot",
        "ForceUpdateInterval",
        "force_update_interval",
        "600",
        number(SECONDS, minimum=1, maximum=86400),
    ),
    ConfigKey(
        "CPU_CHANGE_THRESHOLD",
        "Bot",
        "CPUChangeThreshold",
        "cpu_change_threshold",
        "50",
        number("percentage points", minimum=0, maximum=10000),
    ),
    ConfigKey("LOG_LEVEL", "Bot", "LogLevel", "log_level", "INFO", log_level),
    ConfigKey("LIVE_UPDATES", "Bot", "LiveUpdates", "live_updates", "auto", choice("auto", "off")),
    ConfigKey("ALERT_CHANNEL_ID", "Alerts", "ChannelID", "alert_channel_id", "", optional(channel_id)),
    ConfigKey("ALERT_MENTION", "Alerts", "Mention", "alert_mention", "", optional(role_name_or_id)),
    ConfigKey(
        "ALERT_AFTER",
        "Alerts",
        "After",
        "alert_after",
        "60",
        whole_number("seconds", minimum=0, maximum=86400),
    ),
    ConfigKey("AUDIT_CHANNEL_ID", "Audit", "ChannelID", "audit_channel_id", "", optional(channel_id)),
)
SECTIONS = tuple(dict.fromkeys(key.section for key in CONFIG_KEYS))


def _read_config_file(path: Path, problems: list[str]) -> dict[tuple[str, str], str]:
    """Read config.ini into {(section, option): value}; unknown sections or keys are problems."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep the documented case
    try:
        with path.open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        problems.append(f"{path}: cannot be read: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        return {}
    known = {(k.section.lower(), k.option.lower()): k for k in CONFIG_KEYS}
    values: dict[tuple[str, str], str] = {}
    for option in parser.defaults():
        problems.append(f"{path}: [DEFAULT] {option} is not a known key (put it in its own section)")
    for section in parser.sections():
        if section.lower() not in {s.lower() for s in SECTIONS}:
            problems.append(f"{path}: unknown section [{section}] (known: {', '.join(SECTIONS)})")
            continue
        for option, value in parser.items(section, raw=True):
            if option in parser.defaults():
                continue
            key = known.get((section.lower(), option.lower()))
            if key is None:
                names = ", ".join(k.option for k in CONFIG_KEYS if k.section.lower() == section.lower())
                problems.append(f"{path}: unknown key {option} in [{section}] (known: {names})")
                continue
            values[(key.section, key.option)] = value.strip()
    return values


def load_settings(environ: Mapping[str, str], config_path: Path | None = None) -> Settings:
    """Build Settings from the environment over config.ini; raise ConfigValidationError listing all problems.

    The file is CONFIG_FILE from the environment, else ``config_path``, else ./config.ini; it is optional.
    """
    problems: list[str] = []
    explicit = environ.get("CONFIG_FILE")
    path = Path(explicit) if explicit else (config_path or Path("config.ini"))
    file_values: dict[tuple[str, str], str] = {}
    if path.is_file():
        file_values = _read_config_file(path, problems)
    elif explicit and path.is_dir():
        problems.append(f"CONFIG_FILE points to {path}, which is a directory, not a file")
    elif path.is_dir():  # what Docker makes of a bind mount whose file does not exist on the host
        problems.append(
            f"{path} is a directory, not a file (Docker creates one when the file to mount does not exist)"
        )
    elif explicit:
        problems.append(f"CONFIG_FILE points to {path}, which does not exist")

    parsed: dict[str, Any] = {}
    where_from: dict[str, str] = {}
    for key in CONFIG_KEYS:
        env_value = environ.get(key.env, "").strip()
        if env_value:
            value, where = env_value, f"{key.env} (env)"
        elif file_values.get((key.section, key.option)):
            value, where = file_values[(key.section, key.option)], f"[{key.section}] {key.option} ({path})"
        elif key.default is not None:
            value, where = key.default, f"{key.env} (default)"
        else:
            problems.append(f"{key.env} / [{key.section}] {key.option} is required but not set")
            continue
        where_from[key.attribute] = where
        try:
            parsed[key.attribute] = key.convert(value)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    families = _key_families(parsed, where_from)
    if families:
        problems.append(families)
    interval, force = parsed.get("update_interval"), parsed.get("force_update_interval")
    if interval is not None and force is not None and force < interval:
        problems.append(
            f"{where_from['force_update_interval']}: must be at least UPDATE_INTERVAL ({interval:g}) "
            f"(got {force:g})"
        )

    if problems:
        raise ConfigValidationError(problems)
    return Settings(**parsed)


def config_warnings(environ: Mapping[str, str]) -> list[str]:
    """Environment variables that look like ours but are not (a typo would otherwise go unnoticed)."""
    known = [key.env for key in CONFIG_KEYS] + ["CONFIG_FILE"]
    warnings = []
    for name in sorted(environ):
        if name in known:
            continue
        close = [k for k in difflib.get_close_matches(name, known, n=3, cutoff=0.8) if k[:3] == name[:3]][:1]
        if close:
            warnings.append(f"{name} is not a Pterodisbot setting and is ignored; did you mean {close[0]}?")
        elif name.startswith(("PTERODACTYL_", "PTERODISBOT_")):
            warnings.append(f"{name} is not a Pterodisbot setting and is ignored (see config.ini.example)")
    return warnings
