"""The agenda's side of one conversation: :class:`AgendaDesk`.

The dialog manager asks it, each turn, whether a message is a question about
the agenda or sets a reminder or a plan, and files what it sets with the
user's turn; between turns the chat, voice and server ask it what is due (see
:mod:`companion.agenda.fire`). It holds what a conversation must remember:
the user's zone, a question she asked back, each turn's entry (for a retry),
and the session's poller.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from companion.agenda import store as agenda_store
from companion.agenda.ask import answer, asked_span
from companion.agenda.fire import Poller
from companion.agenda.intake import Entry, Intake, file_entry
from companion.agenda.model import AgendaItem, Notice, Status
from companion.agenda.proactive import Policy
from companion.agenda.zone import user_zone
from companion.config import Config
from companion.memory.store import Store
from companion.types import SessionInfo


class AgendaDesk:
    """Reminders and plans for one user in one conversation."""

    def __init__(
        self,
        store: Store,
        user: str,
        config: Config,
        templates: dict[str, str],
        clock: Callable[[], datetime],
        session: Callable[[], SessionInfo],
    ) -> None:
        self.store = store
        self.user = user
        self.config = config
        self._templates = templates
        self._clock = clock
        self._session = session
        self._zone: ZoneInfo | None = None
        self._intake = Intake(self.zone, templates)
        self._entries: dict[int, Entry] = {}
        self._poller: Poller | None = None

    def zone(self) -> ZoneInfo:
        """The user's time zone (config ``timezone``, else the system's)."""
        if self._zone is None:
            self._zone = user_zone(self.config)
        return self._zone

    # -- in a turn ------------------------------------------------------------------

    def read(self, text: str, now: datetime) -> Entry | None:
        """What ``text`` sets in the agenda (or asks about it), or None."""
        return self._intake.read(text, now)

    def file(self, entry: Entry, now: datetime, turn_id: int) -> None:
        """Store what ``entry`` sets, taken from the user's turn ``turn_id``
        (inside the caller's transaction)."""
        file_entry(self.store, self.user, entry, self.zone(), now, turn_id)
        self._entries[turn_id] = entry

    def entry(self, turn_id: int) -> Entry | None:
        """The entry the user's turn ``turn_id`` made (a retry answers it again)."""
        return self._entries.get(turn_id)

    def answer(self, text: str, now: datetime) -> str:
        """Her answer to a question about the agenda, from the store."""
        local = now.astimezone(self.zone())
        start, end, span = asked_span(text, local)
        found = agenda_store.between(self.store, self.user, start, end)
        return answer(found, local, span, self._templates)

    # -- between turns --------------------------------------------------------------

    def items(self, statuses: tuple[Status, ...] = ("pending", "snoozed")) -> list[AgendaItem]:
        return agenda_store.list_items(self.store, self.user, statuses=statuses)

    def poller(self) -> Poller:
        """What asks for due notices in this session."""
        if self._poller is None:
            self._poller = Poller(
                self.store, self.user, policy=Policy.from_config(self.config, self.zone()),
                clock=self._clock, session=self._session,
            )
        return self._poller

    def due(self) -> list[Notice]:
        """Due notices, delivered (stored as her turns) and returned."""
        poller = self.poller()
        notices = poller.due_notices()
        poller.delivered(notices)
        return notices

    def opening(self) -> list[Notice]:
        """The session's opening notices, delivered and returned."""
        poller = self.poller()
        notices = poller.opening()
        poller.delivered(notices)
        return notices
