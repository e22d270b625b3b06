"""Point discord.py at the local Discord stand-in (tests only).

Put this directory on the bot process's ``PYTHONPATH`` and set
``DISCORD_STANDIN_URL=http://127.0.0.1:PORT``. Python imports ``sitecustomize``
at start-up; without the variable this file does nothing. With it, an import
hook patches discord.py right after its modules load (discord is not imported
here, so start-up stays fast and processes that never import discord are untouched):

* ``discord.http.Route.BASE`` -> ``{URL}/api/v{N}``, and ``_set_api_version`` keeps it local;
* ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` -> ``ws://HOST:PORT/gateway``;
* ``discord.asset.Asset.BASE`` -> ``{URL}/cdn``.

Optional: ``DISCORD_STANDIN_GUILD_READY_TIMEOUT=0.2`` makes discord.py's default
``guild_ready_timeout`` (2 s of silence after the last GUILD_CREATE before ``on_ready``)
shorter, unless the bot passes its own value.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from typing import Any

_URL = os.environ.get("DISCORD_STANDIN_URL", "").rstrip("/")
_GUILD_READY_TIMEOUT = os.environ.get("DISCORD_STANDIN_GUILD_READY_TIMEOUT")


def _ws_url(url: str) -> str:
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :] + "/gateway"
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :] + "/gateway"
    return url + "/gateway"


def _patch_http(module: Any) -> None:
    route = module.Route
    version = getattr(module, "INTERNAL_API_VERSION", 10)
    route.BASE = f"{_URL}/api/v{version}"
    original = module._set_api_version
    if getattr(original, "_standin", False):
        return

    def _set_api_version(value: int) -> None:
        original(value)
        module.Route.BASE = f"{_URL}/api/v{value}"

    _set_api_version._standin = True  # type: ignore[attr-defined]
    module._set_api_version = _set_api_version


def _patch_gateway(module: Any) -> None:
    import yarl

    module.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(_ws_url(_URL))


def _patch_asset(module: Any) -> None:
    module.Asset.BASE = f"{_URL}/cdn"


def _patch_state(module: Any) -> None:
    if not _GUILD_READY_TIMEOUT:
        return
    cls = module.ConnectionState
    original = cls.__init__
    if getattr(original, "_standin", False):
        return
    value = float(_GUILD_READY_TIMEOUT)

    def __init__(self: Any, *args: Any, **options: Any) -> None:
        options.setdefault("guild_ready_timeout", value)
        original(self, *args, **options)

    __init__._standin = True  # type: ignore[attr-defined]
    cls.__init__ = __init__


_PATCHES = {
    "discord.http": _patch_http,
    "discord.gateway": _patch_gateway,
    "discord.asset": _patch_asset,
    "discord.state": _patch_state,
}


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, wrapped: Any, patch: Any) -> None:
        self._wrapped = wrapped
        self._patch = patch

    def create_module(self, spec: Any) -> Any:
        return self._wrapped.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._wrapped.exec_module(module)
        self._patch(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, is_package ...
        return getattr(self._wrapped, name)


class _StandinFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        patch = _PATCHES.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchingLoader(spec.loader, patch)
        return spec


def _install() -> None:
    if not _URL:
        return
    for name, patch in _PATCHES.items():
        module = sys.modules.get(name)
        if module is not None:  # already imported (unusual): patch in place
            patch(module)
    if not any(isinstance(f, _StandinFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _StandinFinder())


_install()
