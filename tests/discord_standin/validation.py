"""Validation of message, component, modal and command payloads with Discord's limits.

Each function adds to a :class:`FormErrors` at the exact path Discord reports
(``embeds.0.title``, ``components.1.components.0.custom_id``, ``0.options.2.name``...).
"""

from __future__ import annotations

import datetime
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from .errors import FormErrors, Path

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_ROWS = 5
MAX_FILES = 10
MAX_V2_COMPONENTS = 40
MAX_V2_TEXT = 4000

FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_COMPONENTS_V2 = 1 << 15

BUTTON = 2
STRING_SELECT = 3
TEXT_INPUT = 4
AUTO_SELECTS = (5, 6, 7, 8)  # user, role, mentionable, channel selects
V2_TOP_LEVEL = (1, 9, 10, 12, 13, 14, 17)


def _str_field(
    errors: FormErrors,
    obj: dict[str, Any],
    key: str,
    path: Path,
    limit: int,
    *,
    required: bool = False,
    min_length: int = 0,
) -> str | None:
    value = obj.get(key)
    if value is None or (required and value == ""):
        if required:
            errors.required((*path, key))
        return None
    if not isinstance(value, str):
        errors.wrong_type((*path, key), "string")
        return None
    if len(value) > limit or len(value) < min_length:
        if min_length:
            errors.bad_length((*path, key), min_length, limit)
        else:
            errors.max_length((*path, key), limit)
    return value


def _check_url(errors: FormErrors, path: Path, value: Any, schemes: tuple[str, ...]) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        errors.wrong_type(path, "string")
        return
    if len(value) > 2048:
        errors.max_length(path, 2048)
        return
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        allowed = ", ".join(repr(s) for s in schemes)
        errors.add(
            path,
            "URL_TYPE_INVALID_SCHEME",
            f'Scheme "{parts.scheme}" is not supported. Scheme must be one of ({allowed}).',
        )
    elif parts.scheme != "attachment" and not parts.netloc:
        errors.add(path, "URL_TYPE_INVALID_URL", "Not a well formed URL.")


def validate_embed(errors: FormErrors, embed: Any, path: Path) -> int:
    """Validate one embed; return its character count toward the 6000 limit."""
    if not isinstance(embed, dict):
        errors.wrong_type(path, "dict")
        return 0
    size = 0
    for key, limit in (("title", 256), ("description", 4096)):
        value = _str_field(errors, embed, key, path, limit)
        size += len(value or "")
    _check_url(errors, (*path, "url"), embed.get("url"), ("http", "https"))
    colour = embed.get("color")
    if colour is not None:
        if not isinstance(colour, int) or isinstance(colour, bool):
            errors.wrong_type((*path, "color"), "int")
        elif colour > 0xFFFFFF:
            errors.add(
                (*path, "color"), "NUMBER_TYPE_MAX", "int value should be less than or equal to 16777215."
            )
        elif colour < 0:
            errors.add((*path, "color"), "NUMBER_TYPE_MIN", "int value should be greater than or equal to 0.")
    timestamp = embed.get("timestamp")
    if timestamp is not None:
        try:
            datetime.datetime.fromisoformat(str(timestamp))
        except ValueError:
            errors.add(
                (*path, "timestamp"), "DATE_TYPE_PARSE", f'Could not parse "{timestamp}". Should be ISO8601.'
            )
    footer = embed.get("footer")
    if footer is not None:
        if isinstance(footer, dict):
            text = _str_field(errors, footer, "text", (*path, "footer"), 2048, required=True)
            size += len(text or "")
            _check_url(
                errors, (*path, "footer", "icon_url"), footer.get("icon_url"), ("http", "https", "attachment")
            )
        else:
            errors.wrong_type((*path, "footer"), "dict")
    author = embed.get("author")
    if author is not None:
        if isinstance(author, dict):
            name = _str_field(errors, author, "name", (*path, "author"), 256, required=True)
            size += len(name or "")
            _check_url(errors, (*path, "author", "url"), author.get("url"), ("http", "https"))
            _check_url(
                errors, (*path, "author", "icon_url"), author.get("icon_url"), ("http", "https", "attachment")
            )
        else:
            errors.wrong_type((*path, "author"), "dict")
    for key in ("image", "thumbnail"):
        media = embed.get(key)
        if media is None:
            continue
        if not isinstance(media, dict):
            errors.wrong_type((*path, key), "dict")
        elif not media.get("url"):
            errors.required((*path, key, "url"))
        else:
            _check_url(errors, (*path, key, "url"), media.get("url"), ("http", "https", "attachment"))
    fields = embed.get("fields")
    if fields is not None:
        if not isinstance(fields, list):
            errors.wrong_type((*path, "fields"), "list")
        else:
            if len(fields) > 25:
                errors.max_length((*path, "fields"), 25)
            for index, field in enumerate(fields):
                fpath = (*path, "fields", index)
                if not isinstance(field, dict):
                    errors.wrong_type(fpath, "dict")
                    continue
                name = _str_field(errors, field, "name", fpath, 256, required=True)
                value = _str_field(errors, field, "value", fpath, 1024, required=True)
                size += len(name or "") + len(value or "")
                inline = field.get("inline")
                if inline is not None and not isinstance(inline, bool):
                    errors.wrong_type((*fpath, "inline"), "bool")
    return size


def validate_embeds(errors: FormErrors, embeds: Any, path: Path) -> None:
    if embeds is None:
        return
    if not isinstance(embeds, list):
        errors.wrong_type(path, "list")
        return
    if len(embeds) > MAX_EMBEDS:
        errors.max_length(path, MAX_EMBEDS)
    total = 0
    for index, embed in enumerate(embeds):
        total += validate_embed(errors, embed, (*path, index))
    if total > MAX_EMBED_TOTAL:
        errors.add(path, "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}")


def _check_int_range(
    errors: FormErrors, obj: dict[str, Any], key: str, path: Path, low: int, high: int
) -> None:
    value = obj.get(key)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        errors.wrong_type((*path, key), "int")
    elif value > high:
        errors.add((*path, key), "NUMBER_TYPE_MAX", f"int value should be less than or equal to {high}.")
    elif value < low:
        errors.add((*path, key), "NUMBER_TYPE_MIN", f"int value should be greater than or equal to {low}.")


class _ComponentChecker:
    def __init__(self, errors: FormErrors) -> None:
        self.errors = errors
        self.custom_ids: set[str] = set()
        self.count = 0
        self.text_length = 0

    def custom_id(self, comp: dict[str, Any], path: Path, *, required: bool = True) -> None:
        value = comp.get("custom_id")
        if value is None or value == "":
            if required:
                self.errors.required((*path, "custom_id"))
            return
        if not isinstance(value, str):
            self.errors.wrong_type((*path, "custom_id"), "string")
            return
        if len(value) > 100:
            self.errors.bad_length((*path, "custom_id"), 1, 100)
        if value in self.custom_ids:
            self.errors.add(
                (*path, "custom_id"),
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        self.custom_ids.add(value)

    def button(self, comp: dict[str, Any], path: Path) -> None:
        style = comp.get("style")
        if style not in (1, 2, 3, 4, 5, 6):
            self.errors.add((*path, "style"), "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4, 5, 6}.")
        _str_field(self.errors, comp, "label", path, 80)
        if style == 5:
            if comp.get("custom_id") is not None:
                self.errors.add(
                    path,
                    "BUTTON_COMPONENT_CUSTOM_ID_URL_MUTUALLY_EXCLUSIVE",
                    "A custom id and url cannot both be specified",
                )
            if not comp.get("url"):
                self.errors.add(path, "BUTTON_COMPONENT_URL_REQUIRED", "A url is required")
            else:
                _check_url(self.errors, (*path, "url"), comp["url"], ("http", "https", "discord"))
        elif style == 6:
            if not comp.get("sku_id"):
                self.errors.required((*path, "sku_id"))
        else:
            if comp.get("url") is not None:
                self.errors.add(
                    path,
                    "BUTTON_COMPONENT_CUSTOM_ID_URL_MUTUALLY_EXCLUSIVE",
                    "A custom id and url cannot both be specified",
                )
            self.custom_id(comp, path)
            if not comp.get("label") and not comp.get("emoji"):
                self.errors.add(
                    path, "BUTTON_COMPONENT_LABEL_OR_EMOJI_REQUIRED", "A label or emoji is required"
                )

    def select(self, comp: dict[str, Any], path: Path, kind: int) -> None:
        self.custom_id(comp, path)
        _str_field(self.errors, comp, "placeholder", path, 150)
        _check_int_range(self.errors, comp, "min_values", path, 0, 25)
        _check_int_range(self.errors, comp, "max_values", path, 1, 25)
        low, high = comp.get("min_values", 1), comp.get("max_values", 1)
        if isinstance(low, int) and isinstance(high, int) and low > high:
            self.errors.add(
                (*path, "min_values"),
                "SELECT_COMPONENT_MIN_VALUES_GREATER_THAN_MAX",
                "min_values must be less than or equal to max_values",
            )
        if kind != STRING_SELECT:
            return
        options = comp.get("options")
        if not isinstance(options, list):
            self.errors.required((*path, "options"))
            return
        if not 1 <= len(options) <= 25:
            self.errors.bad_length((*path, "options"), 1, 25)
        if isinstance(high, int) and options and high > len(options):
            self.errors.add(
                (*path, "max_values"),
                "NUMBER_TYPE_MAX",
                f"int value should be less than or equal to {len(options)}.",
            )
        seen: set[str] = set()
        for index, option in enumerate(options):
            opath = (*path, "options", index)
            if not isinstance(option, dict):
                self.errors.wrong_type(opath, "dict")
                continue
            _str_field(self.errors, option, "label", opath, 100, required=True, min_length=1)
            value = _str_field(self.errors, option, "value", opath, 100, required=True, min_length=1)
            _str_field(self.errors, option, "description", opath, 100)
            if value is not None:
                if value in seen:
                    self.errors.add(
                        (*opath, "value"),
                        "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED",
                        "Select component option value cannot be duplicated",
                    )
                seen.add(value)

    def interactive(self, comp: Any, path: Path) -> int:
        """Validate a row child; return its width."""
        if not isinstance(comp, dict):
            self.errors.wrong_type(path, "dict")
            return 1
        self.count += 1
        kind = comp.get("type")
        if kind == BUTTON:
            self.button(comp, path)
            return 1
        if kind == STRING_SELECT or kind in AUTO_SELECTS:
            self.select(comp, path, kind)
            return 5
        self.errors.add(
            (*path, "type"), "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (2, 3, 5, 6, 7, 8).'
        )
        return 1

    def row(self, row: Any, path: Path) -> None:
        if not isinstance(row, dict):
            self.errors.wrong_type(path, "dict")
            return
        self.count += 1
        children = row.get("components")
        if not isinstance(children, list):
            self.errors.required((*path, "components"))
            return
        if not 1 <= len(children) <= 5:
            self.errors.bad_length((*path, "components"), 1, 5)
        width = sum(self.interactive(child, (*path, "components", i)) for i, child in enumerate(children))
        if width > 5:
            self.errors.add(
                (*path, "components"),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            )

    def v2(self, comp: Any, path: Path, *, top: bool = False) -> None:
        if not isinstance(comp, dict):
            self.errors.wrong_type(path, "dict")
            return
        kind = comp.get("type")
        if kind == 1:
            self.row(comp, path)
            return
        if kind in (BUTTON, STRING_SELECT, *AUTO_SELECTS) and not top:
            self.interactive(comp, path)
            return
        self.count += 1
        if kind == 10:  # text display
            content = comp.get("content")
            if not isinstance(content, str) or not content:
                self.errors.required((*path, "content"))
            else:
                self.text_length += len(content)
        elif kind in (9, 17):  # section, container
            children = comp.get("components")
            if not isinstance(children, list) or not children:
                self.errors.required((*path, "components"))
            else:
                for index, child in enumerate(children):
                    self.v2(child, (*path, "components", index))
            accessory = comp.get("accessory")
            if kind == 9:
                if accessory is None:
                    self.errors.required((*path, "accessory"))
                elif isinstance(accessory, dict) and accessory.get("type") == BUTTON:
                    self.interactive(accessory, (*path, "accessory"))
                else:
                    self.count += 1
        elif kind in (11, 12, 13, 14):  # thumbnail, media gallery, file, separator
            pass
        else:
            allowed = ", ".join(str(k) for k in V2_TOP_LEVEL)
            self.errors.add(
                (*path, "type"), "UNION_TYPE_CHOICES", f'Value of field "type" must be one of ({allowed}).'
            )


def validate_components(errors: FormErrors, components: Any, path: Path, *, v2: bool) -> None:
    if components is None:
        return
    if not isinstance(components, list):
        errors.wrong_type(path, "list")
        return
    checker = _ComponentChecker(errors)
    if v2:
        for index, comp in enumerate(components):
            checker.v2(comp, (*path, index), top=True)
        if checker.count > MAX_V2_COMPONENTS:
            errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_V2_COMPONENTS} or fewer in length.")
        if checker.text_length > MAX_V2_TEXT:
            errors.add(
                path,
                "MAX_TEXT_DISPLAY_LENGTH_EXCEEDED",
                f"Text display length must be {MAX_V2_TEXT} or fewer.",
            )
        return
    if len(components) > MAX_ROWS:
        errors.max_length(path, MAX_ROWS)
    for index, row in enumerate(components):
        if isinstance(row, dict) and row.get("type") != 1:
            errors.add(
                (*path, index, "type"), "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1,).'
            )
            continue
        checker.row(row, (*path, index))


def validate_message(
    errors: FormErrors, payload: dict[str, Any], path: Path = (), *, flags: int | None = None
) -> None:
    """Field-level checks of a create/edit message body (emptiness is checked by the caller)."""
    if flags is None:
        flags = payload.get("flags") or 0
    content = payload.get("content")
    if content is not None:
        if not isinstance(content, str):
            errors.wrong_type((*path, "content"), "string")
        elif len(content) > MAX_CONTENT:
            errors.max_length((*path, "content"), MAX_CONTENT)
    v2 = bool(flags & FLAG_COMPONENTS_V2)
    if v2:
        for key in ("content", "embeds", "poll", "sticker_ids"):
            if payload.get(key):
                errors.add(
                    (*path, key),
                    "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                    f"The '{key}' field cannot be used when using MessageFlags.IS_COMPONENTS_V2",
                )
    validate_embeds(errors, payload.get("embeds"), (*path, "embeds"))
    validate_components(errors, payload.get("components"), (*path, "components"), v2=v2)
    stickers = payload.get("sticker_ids")
    if isinstance(stickers, list) and len(stickers) > 3:
        errors.max_length((*path, "sticker_ids"), 3)
    attachments = payload.get("attachments")
    if attachments is not None:
        if not isinstance(attachments, list):
            errors.wrong_type((*path, "attachments"), "list")
        else:
            if len(attachments) > MAX_FILES:
                errors.max_length((*path, "attachments"), MAX_FILES)
            for index, att in enumerate(attachments):
                if not isinstance(att, dict) or att.get("id") is None:
                    errors.required((*path, "attachments", index, "id"))


def validate_modal(errors: FormErrors, data: Any, path: Path) -> None:
    if not isinstance(data, dict):
        errors.required(path)
        return
    _str_field(errors, data, "title", path, 45, required=True, min_length=1)
    checker = _ComponentChecker(errors)
    checker.custom_id(data, path)
    components = data.get("components")
    if not isinstance(components, list) or not 1 <= len(components) <= 5:
        errors.bad_length((*path, "components"), 1, 5)
        return
    custom_ids: set[str] = set()
    for index, comp in enumerate(components):
        cpath = (*path, "components", index)
        if not isinstance(comp, dict):
            errors.wrong_type(cpath, "dict")
            continue
        if comp.get("type") == 1:
            inner = comp.get("components") or []
            items = [(child, (*cpath, "components", i)) for i, child in enumerate(inner)]
        elif comp.get("type") == 18:  # label
            _str_field(errors, comp, "label", cpath, 45, required=True)
            items = [(comp.get("component"), (*cpath, "component"))]
        elif comp.get("type") == 10:
            continue
        else:
            errors.add(
                (*cpath, "type"), "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1, 10, 18).'
            )
            continue
        for child, child_path in items:
            if not isinstance(child, dict):
                errors.required(child_path)
                continue
            custom_id = child.get("custom_id")
            if not custom_id:
                errors.required((*child_path, "custom_id"))
            elif custom_id in custom_ids:
                errors.add(
                    (*child_path, "custom_id"),
                    "COMPONENT_CUSTOM_ID_DUPLICATED",
                    "Component custom id cannot be duplicated",
                )
            else:
                custom_ids.add(custom_id)
            if child.get("type") == TEXT_INPUT:
                _str_field(errors, child, "placeholder", child_path, 100)
                _str_field(errors, child, "value", child_path, 4000)
                if comp.get("type") == 1:
                    _str_field(errors, child, "label", child_path, 45, required=True)


def validate_autocomplete(errors: FormErrors, data: Any, path: Path) -> None:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list):
        errors.required((*path, "choices"))
        return
    if len(choices) > 25:
        errors.max_length((*path, "choices"), 25)
    for index, choice in enumerate(choices):
        cpath = (*path, "choices", index)
        if not isinstance(choice, dict):
            errors.wrong_type(cpath, "dict")
            continue
        _str_field(errors, choice, "name", cpath, 100, required=True, min_length=1)
        if "value" not in choice:
            errors.required((*cpath, "value"))
        elif isinstance(choice["value"], str) and len(choice["value"]) > 100:
            errors.max_length((*cpath, "value"), 100)


# --- application commands ---------------------------------------------------

_NAME_EXTRA = set("-_'")


def _valid_chat_name(name: Any) -> bool:
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        return False
    for char in name:
        if char in _NAME_EXTRA:
            continue
        category = unicodedata.category(char)
        if category[0] not in ("L", "N", "M"):
            return False
        if char.lower() != char:
            return False
    return True


_OPTION_TYPES = set(range(1, 12))


def _validate_options(errors: FormErrors, options: Any, path: Path, *, depth: int = 0) -> None:
    if options is None:
        return
    if not isinstance(options, list):
        errors.wrong_type(path, "list")
        return
    if len(options) > 25:
        errors.max_length(path, 25)
    names: set[str] = set()
    seen_optional = False
    for index, option in enumerate(options):
        opath = (*path, index)
        if not isinstance(option, dict):
            errors.wrong_type(opath, "dict")
            continue
        kind = option.get("type")
        if kind not in _OPTION_TYPES:
            errors.add(
                (*opath, "type"), "BASE_TYPE_CHOICES", f"Value must be one of {sorted(_OPTION_TYPES)}."
            )
        name = option.get("name")
        if not _valid_chat_name(name):
            errors.add((*opath, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        elif name in names:
            errors.add(path, "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Option names must be unique")
        else:
            names.add(name)
        _str_field(errors, option, "description", opath, 100, required=True, min_length=1)
        if kind in (1, 2):
            if depth >= 2 or (kind == 2 and depth >= 1):
                errors.add(
                    (*opath, "type"), "APPLICATION_COMMAND_OPTION_TYPE_INVALID", "Subcommands nest too deep"
                )
            _validate_options(errors, option.get("options"), (*opath, "options"), depth=depth + 1)
            continue
        if option.get("required"):
            if seen_optional:
                errors.add(
                    path,
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True
        choices = option.get("choices")
        if choices is not None:
            if not isinstance(choices, list) or len(choices) > 25:
                errors.max_length((*opath, "choices"), 25)
            else:
                for cindex, choice in enumerate(choices):
                    cpath = (*opath, "choices", cindex)
                    if not isinstance(choice, dict):
                        errors.wrong_type(cpath, "dict")
                        continue
                    _str_field(errors, choice, "name", cpath, 100, required=True, min_length=1)
                    if isinstance(choice.get("value"), str) and len(choice["value"]) > 100:
                        errors.max_length((*cpath, "value"), 100)


def validate_commands(errors: FormErrors, commands: Any) -> None:
    if not isinstance(commands, list):
        errors.add((), "BASE_TYPE_LIST", "Must be an array.")
        return
    counts = {1: 0, 2: 0, 3: 0}
    seen: set[tuple[int, str]] = set()
    for index, command in enumerate(commands):
        if not isinstance(command, dict):
            errors.wrong_type((index,), "dict")
            continue
        kind = command.get("type", 1)
        if kind not in (1, 2, 3, 4):
            errors.add((index, "type"), "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4}.")
            continue
        counts[kind] = counts.get(kind, 0) + 1
        name = command.get("name")
        if kind == 1:
            if not _valid_chat_name(name):
                errors.add((index, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            _str_field(errors, command, "description", (index,), 100, required=True, min_length=1)
            _validate_options(errors, command.get("options"), (index, "options"))
        else:
            if not isinstance(name, str) or not 1 <= len(name) <= 32:
                errors.bad_length((index, "name"), 1, 32)
            if command.get("description"):
                errors.add(
                    (index, "description"),
                    "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
                    "Context menu commands cannot have a description",
                )
        if isinstance(name, str):
            key = (kind, name)
            if key in seen:
                errors.add(
                    (),
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    f"Application command names must be unique: {name}",
                )
            seen.add(key)
    if counts[1] > 100:
        errors.add((), "APPLICATION_COMMANDS_TOO_MANY", "Maximum number of chat input commands reached (100)")
    if counts[2] > 15 or counts[3] > 15:
        errors.add(
            (), "APPLICATION_COMMANDS_TOO_MANY", "Maximum number of context menu commands reached (15)"
        )
