"""Everything the panel client raises: one tree under PterodactylError."""

from __future__ import annotations

from typing import Any


class PterodactylError(Exception):
    """Root of everything the API client raises."""


class PterodactylConnectionError(PterodactylError):
    """The panel could not be reached, or did not answer in time."""


class MalformedResponseError(PterodactylError):
    """The panel answered something that is not the JSON we expect (HTML, a redirect, bad JSON)."""


class PterodactylAPIError(PterodactylError):
    """The panel answered with an HTTP error status."""

    def __init__(self, status: int, detail: str, code: str | None = None) -> None:
        self.status = status
        self.detail = detail
        self.code = code
        super().__init__(f"panel answered {status}: {detail}")


class PterodactylAuthError(PterodactylAPIError):
    """401 or 403: the key is wrong, of the wrong type, or lacks a permission."""


class ServerNotFoundError(PterodactylAPIError):
    """404."""


class ServerConflictError(PterodactylAPIError):
    """409: the server is suspended, installing, transferring, restoring a backup or its node is down."""


class RateLimitedError(PterodactylAPIError):
    """429, with the number of seconds the panel asked us to wait."""

    def __init__(self, status: int, detail: str, code: str | None = None, retry_after: float = 1.0) -> None:
        super().__init__(status, detail, code)
        self.retry_after = retry_after


class PanelServerError(PterodactylAPIError):
    """5xx: the panel or the node's daemon (wings) failed."""


class NodeUnreachableError(PanelServerError):
    """The panel answered, but could not reach the node (Wings) the server runs on: Pterodactyl's
    DaemonConnectionException (502/504), or a 500 from Pelican's /power (pelican.md)."""


def error_for_status(status: int, code: str | None = None) -> type[PterodactylAPIError]:
    if status in (401, 403):
        return PterodactylAuthError
    if status == 404:
        return ServerNotFoundError
    if status == 409:
        return ServerConflictError
    if status >= 500:
        return NodeUnreachableError if code == "DaemonConnectionException" else PanelServerError
    return PterodactylAPIError


def error_detail(body: Any, status: int) -> tuple[str, str | None]:
    """The panel's error detail from {"errors": [{"code", "status", "detail"}]} when present."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0]
        if isinstance(first, dict):
            code = first.get("code")
            return str(first.get("detail") or f"HTTP {status}"), code if isinstance(code, str) else None
    return f"HTTP {status}", None
