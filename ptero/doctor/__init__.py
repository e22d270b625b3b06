"""``python pterodisbot.py --check``: a read-only setup doctor that says what to fix before going live.

``CHECKS`` lists the checks in the order their lines print. Each is a small async function of the
``Doctor`` (the settings, an open panel client, Discord's HTTP client, and what earlier checks
learned) returning one ``Line`` or several. Checks run concurrently: one waits only for the checks it
``needs`` and is skipped when one of those did not pass. Every request has REQUEST_TIMEOUT, every check
its ``timeout``, the whole run OVERALL_TIMEOUT. Nothing is posted, synced or powered: the panel and
Discord are only read, and nothing is written but the log, as on a normal start.

The package: ``model`` (what checks share), ``panel_checks``, ``discord_checks``, and ``run`` (the
list of checks, the local ones, and running them).
"""

from ptero.doctor.discord_checks import channel_permissions, check_guild, check_token
from ptero.doctor.model import NEEDED, Check, Doctor, Line
from ptero.doctor.run import CHECKS, check_setup, diagnose, run_checks

__all__ = [
    "CHECKS",
    "NEEDED",
    "Check",
    "Doctor",
    "Line",
    "channel_permissions",
    "check_guild",
    "check_setup",
    "check_token",
    "diagnose",
    "run_checks",
]
