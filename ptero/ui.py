"""The Discord UI: the card's buttons (which own their checks and actions), the server picker, the
commands' bodies, and the sink that carries the board's cards to Discord."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, TypeAlias

import discord

from ptero.board import StatusBoard
from ptero.cards import GRAPH_FILENAME, Card, code, describe_panel_error, md, state_style, truncate
from ptero.panel import (
    PanelServer,
    PowerSignal,
    PterodactylAPIError,
    PterodactylAuthError,
    PterodactylError,
    RateLimitedError,
    ServerConflictError,
)
from ptero.records import CardGone, CardRefused, CardUnavailable
from ptero.store import EmbedLocation

if TYPE_CHECKING:
    from ptero.bot import PterodactylBot

log = logging.getLogger(__name__)

ButtonAction = Literal["start", "stop", "restart", "address"]
CUSTOM_ID_PREFIX = "pterodisbot"
CUSTOM_ID_PATTERN = r"pterodisbot:(?P<action>start|stop|restart|address):(?P<server>[A-Za-z0-9_-]{1,64})"
CUSTOM_ID_TEMPLATE = re.compile(CUSTOM_ID_PATTERN)
BUTTON_LOOKS: dict[str, tuple[str, discord.ButtonStyle, str]] = {
    "start": ("Start", discord.ButtonStyle.success, "▶️"),
    "stop": ("Stop", discord.ButtonStyle.danger, "⏹️"),
    "restart": ("Restart", discord.ButtonStyle.primary, "🔄"),
    "address": ("Show Address", discord.ButtonStyle.secondary, "🌐"),
}
POWER_SIGNAL_OF: dict[ButtonAction, PowerSignal] = {"start": "start", "stop": "stop", "restart": "restart"}
PICKER_PAGE_SIZE = 25  # Discord's limit of options in one select menu
REQUIRED_CHANNEL_PERMISSIONS = ("view_channel", "send_messages", "embed_links", "attach_files")
REPLY_TIMEOUT = 30.0
SHUTTING_DOWN = (
    "The bot is shutting down; the panel may have received the request — check the card after the restart."
)
SOMETHING_WENT_WRONG = "Something went wrong on the bot's side; the admin can see it in the logs."
Interaction: TypeAlias = "discord.Interaction[PterodactylBot]"


def make_custom_id(action: ButtonAction, server_id: str) -> str:
    custom_id = f"{CUSTOM_ID_PREFIX}:{action}:{server_id}"
    if not CUSTOM_ID_TEMPLATE.fullmatch(custom_id) or len(custom_id) > 100:
        raise ValueError(f"cannot build a button id for server {server_id!r}")
    return custom_id


def may_control(
    role_ids: Iterable[int], role_names: Iterable[str], is_administrator: bool, control_roles: Iterable[str]
) -> bool:
    """Administrators always may; otherwise a role matching a control role by id or (case-blind) name."""
    if is_administrator:
        return True
    ids = {str(i) for i in role_ids}
    names = {n.casefold() for n in role_names}
    return any(entry in ids if entry.isdigit() else entry.casefold() in names for entry in control_roles)


def member_may_control(interaction: discord.Interaction[Any], control_roles: Iterable[str]) -> bool:
    roles: list[discord.Role] = getattr(interaction.user, "roles", [])
    return may_control(
        (r.id for r in roles), (r.name for r in roles), interaction.permissions.administrator, control_roles
    )


async def reply(interaction: discord.Interaction[Any], text: str, **extra: Any) -> None:
    """An ephemeral answer, as a response or, once answered or deferred, as a followup.

    It gives up after REPLY_TIMEOUT (discord.py would otherwise wait out a long 429 or retry a
    failing Discord), well inside the interaction token's 15 minutes, and never raises.
    """
    try:
        if interaction.response.is_done():
            send = interaction.followup.send(text, ephemeral=True, **extra)
        else:
            send = interaction.response.send_message(text, ephemeral=True, **extra)
        await asyncio.wait_for(send, REPLY_TIMEOUT)
    except (discord.HTTPException, TimeoutError) as exc:
        log.warning("Could not answer an interaction: %s", str(exc) or "Discord did not answer in time")


# -- the card's buttons ---------------------------------------------------------------------------


class ServerButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=CUSTOM_ID_PATTERN):
    """One of a card's four buttons. The custom id carries the action and the server, so a click on a
    card posted before a restart of the bot still finds its handler."""

    def __init__(self, action: ButtonAction, server_id: str) -> None:
        label, style, emoji = BUTTON_LOOKS[action]
        super().__init__(
            discord.ui.Button(
                label=label, style=style, emoji=emoji, custom_id=make_custom_id(action, server_id)
            )
        )
        self.action: ButtonAction = action
        self.server_id = server_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        action: ButtonAction = match["action"]  # type: ignore[assignment]  # the template allows only these
        return cls(action, match["server"])

    # discord.py types items over an unbound client type; ours always run in a PterodactylBot.
    async def interaction_check(self, interaction: Interaction, /) -> bool:  # type: ignore[override]
        """Only in the served guild; power only for a control role or Administrator (refusals answered)."""
        settings, board = interaction.client.settings, interaction.client.board
        if interaction.guild_id != settings.allowed_guild_id:
            self.audit(interaction, "refused (another Discord server)")
            await reply(interaction, "Sorry, these buttons only work in the Discord server this bot serves.")
            return False
        if board.server(self.server_id) is None:
            await board.refresh_listing_briefly(wait=2.0)
        if board.server(self.server_id) is None:  # never answer for a server the bot's panel user cannot see
            await reply(interaction, "Sorry, this server is not one this bot can show or control.")
            return False
        if self.action != "address" and not member_may_control(interaction, settings.control_roles):
            self.audit(interaction, "refused (no control role)")
            roles = ", ".join(settings.control_roles)
            await reply(
                interaction,
                f"Sorry, only members with the **{roles}** role (or Administrator) "
                f"may {self.action} servers.",
            )
            return False
        return True

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        try:
            if self.action == "address":
                await self.show_address(interaction)
            else:
                await self.power(interaction)
        except Exception:
            log.exception("Button %s on %s failed", self.action, self.server_id)
            await reply(interaction, SOMETHING_WENT_WRONG)

    def audit(self, interaction: Interaction, outcome: str) -> None:
        """The audit trail of power presses (Show Address is not audited)."""
        if self.action != "address":
            bot = interaction.client
            name = bot.board.name(self.server_id)
            user = interaction.user
            bot.alerts.audit(user.id, user.display_name, self.action, self.server_id, name, outcome)

    async def power(self, interaction: Interaction) -> None:
        bot, board, action = interaction.client, interaction.client.board, self.action
        name = md(board.name(self.server_id))
        pending = board.power_claim(self.server_id)
        if pending is not None:
            self.audit(interaction, f"not sent ({pending.action} already in progress)")
            who = md(pending.user)
            await reply(
                interaction, f"A **{pending.action}** of **{name}** is already in progress (asked by {who})."
            )
            return
        state = board.known_state(self.server_id)
        if action == "stop" and state == "offline":
            self.audit(interaction, "not sent (already offline)")
            await reply(interaction, f"**{name}** is already offline.")
            return
        if action == "start" and state in ("running", "starting"):
            self.audit(interaction, f"not sent (already {state})")
            await reply(interaction, f"**{name}** is already {state}.")
            return
        board.claim_power(self.server_id, action, interaction.user.display_name)  # before the first await
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            async with bot.power_in_flight():
                await bot.api.send_power_action(self.server_id, POWER_SIGNAL_OF[action])
        except (PterodactylError, asyncio.CancelledError) as exc:
            board.release_power(self.server_id)
            if bot.stopping:  # the request may have reached the panel: say so, never "try again"
                self.audit(interaction, "unknown (the bot shut down while the panel had the request)")
                await reply(interaction, SHUTTING_DOWN)
                return
            if isinstance(exc, asyncio.CancelledError):
                raise
            refused = isinstance(exc, ServerConflictError | PterodactylAuthError | RateLimitedError)
            why = exc.detail if isinstance(exc, PterodactylAPIError) else str(exc)
            self.audit(interaction, f"{'refused by the panel' if refused else 'failed'} ({why})")
            await reply(interaction, describe_panel_error(exc, name))
            return
        self.audit(interaction, "sent")
        if action in ("stop", "restart"):
            bot.alerts.intend(self.server_id)  # the stop that follows is no outage
        board.record_action(self.server_id, action, interaction.user.id, interaction.user.display_name)
        await reply(
            interaction,
            f"{action.capitalize()} sent to **{name}**. The status message shows the new state shortly.",
        )

    async def show_address(self, interaction: Interaction) -> None:
        board = interaction.client.board
        server = board.server(self.server_id)
        name = md(board.name(self.server_id))
        if server is not None and server.allocation is not None:
            await reply(
                interaction, f"**{name}** is at {code(server.allocation.public_address(server.node_host))}"
            )
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            allocation = await interaction.client.api.get_primary_allocation(self.server_id)
        except PterodactylError as exc:
            await reply(interaction, describe_panel_error(exc, name))
            return
        node_host = server.node_host if server else None
        await reply(interaction, f"**{name}** is at {code(allocation.public_address(node_host))}")


class ServerStatusView(discord.ui.View):
    """Start, Stop, Restart and Show Address for one server; persistent (no timeout)."""

    def __init__(self, server_id: str) -> None:
        super().__init__(timeout=None)
        actions: tuple[ButtonAction, ...] = ("start", "stop", "restart", "address")
        for action in actions:
            self.add_item(ServerButton(action, server_id))


# -- the server picker ------------------------------------------------------------------------------


class PickerSource(Protocol):
    """What the picker needs to know: the states it can show, and how to learn more."""

    def known_state(self, server_id: str) -> str | None: ...

    async def check_states(self, server_ids: Sequence[str], wait: float = 2.0) -> None: ...


class ServerPickerView(discord.ui.View):
    """The private /server_status answer: a select menu of one page of servers, with paging."""

    def __init__(
        self,
        source: PickerSource,
        servers: Sequence[PanelServer],
        on_choice: Callable[[Interaction, str], Awaitable[None]],
    ) -> None:
        super().__init__(timeout=600)
        self.source = source
        self.servers = sorted(servers, key=lambda s: (s.name.casefold(), s.identifier))
        self.on_choice = on_choice
        self.page = 0
        if self.page_count == 1:
            self.remove_item(self.previous_button)
            self.remove_item(self.next_button)

    @discord.ui.select(cls=discord.ui.Select, placeholder="Choose a server to post its status here", row=0)
    async def select(self, interaction: Interaction, select: discord.ui.Select[ServerPickerView]) -> None:
        await self.on_choice(interaction, select.values[0])

    @discord.ui.button(label="Previous", emoji="◀️", style=discord.ButtonStyle.secondary, row=1)
    async def previous_button(
        self, interaction: Interaction, _button: discord.ui.Button[ServerPickerView]
    ) -> None:
        await self._turn(interaction, -1)

    @discord.ui.button(label="Next", emoji="▶️", style=discord.ButtonStyle.secondary, row=1)
    async def next_button(
        self, interaction: Interaction, _button: discord.ui.Button[ServerPickerView]
    ) -> None:
        await self._turn(interaction, +1)

    @property
    def page_count(self) -> int:
        return max(1, -(-len(self.servers) // PICKER_PAGE_SIZE))

    def page_servers(self) -> list[PanelServer]:
        start = self.page * PICKER_PAGE_SIZE
        return self.servers[start : start + PICKER_PAGE_SIZE]

    def render(self) -> str:
        """Fill the select for the current page; return the message text (summary and page)."""
        self.select.options = []
        for server in self.page_servers():
            state = self.source.known_state(server.identifier)
            state_text = state_style(state).label if state else "State not checked yet"
            description = f"{state_text} · {server.description}" if server.description else state_text
            self.select.options.append(
                discord.SelectOption(
                    label=truncate(server.name, 100),
                    value=server.identifier,
                    description=truncate(description, 100),
                )
            )
        self.previous_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.page_count - 1
        counts = {"running": 0, "offline": 0, "other": 0, "unknown": 0}
        for server in self.servers:
            state = self.source.known_state(server.identifier)
            key = state if state in ("running", "offline") else ("unknown" if state is None else "other")
            counts[key] += 1
        parts = [
            f"**{len(self.servers)}** servers",
            f"🟢 {counts['running']} running",
            f"🔴 {counts['offline']} offline",
        ]
        if counts["other"]:
            parts.append(f"{counts['other']} starting, stopping or blocked")
        if counts["unknown"]:
            parts.append(f"{counts['unknown']} not checked yet")
        text = " · ".join(parts)
        if self.page_count > 1:
            shown = self.page_servers()
            first = self.page * PICKER_PAGE_SIZE + 1
            text += (
                f"\nPage {self.page + 1} of {self.page_count} (servers {first} to {first + len(shown) - 1})"
            )
        if not self.servers:
            text += "\nThe panel lists no servers that this bot's keys can see."
        return text

    async def _turn(self, interaction: Interaction, step: int) -> None:
        await interaction.response.defer()  # the page's states may need a slow panel
        self.page = min(max(0, self.page + step), self.page_count - 1)
        await self.source.check_states([s.identifier for s in self.page_servers()])
        await interaction.edit_original_response(content=self.render(), view=self)


# -- the commands' bodies ---------------------------------------------------------------------------


async def open_picker(interaction: Interaction, board: StatusBoard) -> None:
    """/server_status: a private menu of the panel's servers."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    listing_old = board.clock() - board.listed_at > max(30.0, 2 * board.settings.update_interval)
    if listing_old and not await board.refresh_listing_briefly() and not board.listed_servers():
        await reply(interaction, "The panel is unreachable right now; try again in a minute.")
        return

    async def chosen(choice: Interaction, server_id: str) -> None:
        await post_card(choice, board, server_id)

    view = ServerPickerView(board, board.listed_servers(), chosen)
    await board.check_states([s.identifier for s in view.page_servers()])
    await interaction.followup.send(view.render(), view=view, ephemeral=True)


async def post_card(interaction: Interaction, board: StatusBoard, server_id: str) -> None:
    """Post a server's card where the picker was used, replacing its older one. Posting (and so
    moving) a card needs what its power buttons need, or Manage Messages in the channel; anyone
    else gets the card privately."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    if board.server(server_id) is None:
        await board.refresh_listing_briefly()
    server = board.server(server_id)
    if server is None:
        await reply(interaction, "That server is no longer one this bot can show.")
        return
    may_post = (
        member_may_control(interaction, board.settings.control_roles)
        or interaction.permissions.manage_messages
    )
    if not may_post:
        card = await board.preview(server_id)
        await reply(
            interaction,
            "Here is its status, just for you: posting a card here needs a control role or Manage Messages.",
            embed=card.embed,
            files=DiscordCards.files(card),
        )
        return
    if interaction.channel_id is None or not isinstance(interaction.channel, discord.abc.Messageable):
        await reply(interaction, "I cannot post in this kind of channel.")
        return
    try:
        result = await board.post(server_id, interaction.channel_id)
    except CardRefused as exc:
        perms = interaction.app_permissions
        missing = [p.replace("_", " ").title() for p in REQUIRED_CHANNEL_PERMISSIONS if not getattr(perms, p)]
        need = ", ".join(missing) if missing else "View Channel, Send Messages, Embed Links, Attach Files"
        log.warning("No permission to post in channel %s: %s", interaction.channel_id, exc.text)
        await reply(interaction, f"I can't post here: I need the **{need}** permission(s) in this channel.")
        return
    note = ""
    if result.replaced is not None and result.replaced_deleted:
        note = f" Its previous status message in <#{result.replaced.channel_id}> was removed."
    if not result.saved:
        note += " I could not save where it is, so it will not be updated after I restart (see my logs)."
    await reply(interaction, f"Posted the live status of **{md(result.server.name)}** here.{note}")


async def refresh_cards(interaction: Interaction, board: StatusBoard) -> None:
    """/refresh_embeds: re-render every card now."""
    if not (
        member_may_control(interaction, board.settings.control_roles) or interaction.permissions.manage_guild
    ):
        await reply(interaction, "Only members with a control role or Manage Server may refresh.")
        return
    await interaction.response.defer(ephemeral=True, thinking=True)
    report = await board.poll(force=True)
    text = (
        f"Refreshed {report.edited} status message(s). "
        f"{report.dropped} were missing and are no longer tracked."
    )
    if report.deferred:
        text += f" {report.deferred} more follow at Discord's pace (a few edits per channel every 5 s)."
    await reply(interaction, text)


# -- the board's way to Discord ---------------------------------------------------------------------


class DiscordCards:
    """The CardSink: posts, edits, retires and deletes card messages through the REST API."""

    def __init__(self, client: discord.Client, guild_id: int) -> None:
        self.client = client
        self.guild_id = guild_id

    def _message(self, location: EmbedLocation) -> discord.PartialMessage:
        channel = self.client.get_partial_messageable(location.channel_id, guild_id=self.guild_id)
        return channel.get_partial_message(location.message_id)

    @staticmethod
    def files(card: Card) -> list[discord.File]:
        return [discord.File(io.BytesIO(card.graph), filename=GRAPH_FILENAME)] if card.graph else []

    async def post(self, channel_id: int, server_id: str, card: Card) -> EmbedLocation:
        channel = self.client.get_partial_messageable(channel_id, guild_id=self.guild_id)
        with _translated():
            message = await channel.send(
                embed=card.embed, view=ServerStatusView(server_id), files=self.files(card)
            )
        return EmbedLocation(message.channel.id, message.id)

    async def edit(self, location: EmbedLocation, server_id: str, card: Card) -> None:
        with _translated():
            await self._message(location).edit(embed=card.embed, attachments=self.files(card))

    async def retire(self, location: EmbedLocation, embed: discord.Embed) -> None:
        with _translated():
            await self._message(location).edit(embed=embed, view=None, attachments=[])

    async def delete(self, location: EmbedLocation) -> None:
        with _translated():
            await self._message(location).delete()

    async def exists(self, location: EmbedLocation) -> bool:
        try:
            with _translated():
                await self._message(location).fetch()
        except CardGone:
            return False
        except (CardRefused, CardUnavailable):
            return True  # not known to be gone: the next edit will tell
        return True


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Discord's exceptions as the board's: gone, refused for good, or failed for now."""
    try:
        yield
    except discord.NotFound as exc:
        raise CardGone(exc.text) from exc
    except discord.HTTPException as exc:
        if 400 <= exc.status < 500 and exc.status != 429:  # Forbidden, an embed Discord refuses, ...
            raise CardRefused(exc.status, exc.code, exc.text) from exc
        raise CardUnavailable(f"{exc.status}: {exc.text}") from exc
