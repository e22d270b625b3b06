"""The panel client: typed results, one error tree, a rate-limit budget. It never imports discord."""

from ptero.panel.budget import RequestBudget
from ptero.panel.client import PterodactylAPI
from ptero.panel.errors import (
    MalformedResponseError,
    NodeUnreachableError,
    PanelServerError,
    PterodactylAPIError,
    PterodactylAuthError,
    PterodactylConnectionError,
    PterodactylError,
    RateLimitedError,
    ServerConflictError,
    ServerNotFoundError,
)
from ptero.panel.models import (
    BLOCKING_STATUSES,
    POWER_SIGNALS,
    Account,
    Allocation,
    PanelServer,
    PowerSignal,
    ServerLimits,
    ServerResources,
)

__all__ = [
    "BLOCKING_STATUSES",
    "POWER_SIGNALS",
    "Account",
    "Allocation",
    "MalformedResponseError",
    "NodeUnreachableError",
    "PanelServer",
    "PanelServerError",
    "PowerSignal",
    "PterodactylAPI",
    "PterodactylAPIError",
    "PterodactylAuthError",
    "PterodactylConnectionError",
    "PterodactylError",
    "RateLimitedError",
    "RequestBudget",
    "ServerConflictError",
    "ServerLimits",
    "ServerNotFoundError",
    "ServerResources",
]
