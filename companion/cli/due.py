"""The agenda's notices in the terminal chat: due reminders, the briefing,
follow-ups and check-ins, shown as her lines.

The chat asks before each prompt (so from a pipe, notices come between lines).
On a terminal a thread also asks every :data:`POLL_SECONDS` while the prompt
waits, and prints what is due above the line being typed (prompt_toolkit's
``patch_stdout`` keeps that line intact); "typing" is a non-empty prompt line,
which holds back unprompted notices (a reminder shows anyway). While the chat
handles a line (a reply streams, a command runs) it holds :attr:`DueNotices.busy`
and the thread does not ask at all: a reminder due then is claimed and shown
when the reply has ended, not in the middle of it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from companion.errors import CompanionError, StoreLockedError
from companion.text import safe

if TYPE_CHECKING:
    from companion.agenda.fire import Poller
    from companion.agenda.model import Notice

#: How often the chat's thread asks for due notices (seconds).
POLL_SECONDS = 0.5

log = logging.getLogger("companion")


class DueNotices:
    """Asks ``poller`` for notices, writes each as ``Name: text`` (``name()``: her
    name now), marks them given.

    ``write`` prints one line (above the prompt on a terminal); ``typing``
    says whether the user has typed something not yet sent.
    """

    def __init__(
        self,
        poller: Poller,
        name: Callable[[], str],
        write: Callable[[str], None],
        *,
        typing: Callable[[], bool] = lambda: False,
        interval: float = POLL_SECONDS,
    ) -> None:
        self.poller = poller
        self.name = name
        self.write = write
        self.typing = typing
        self.interval = interval
        #: Held by the chat while it handles a line; the thread stays away then.
        self.busy = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed = False

    def give(self, notices: list[Notice]) -> None:
        """Show ``notices``, then record them as given (a crash in between: shown again)."""
        if not notices:
            return
        for notice in notices:
            self.write(f"{safe(self.name(), one_line=True)}: {safe(notice.text, one_line=True)}")
        self.poller.delivered(notices)

    def check(self, *, typing: bool = False) -> int:
        """Give what is due now; returns how many were given."""
        try:
            notices = self.poller.due_notices(typing=typing)
            self.give(notices)
        except StoreLockedError:
            return 0  # another process is writing: the next poll asks again
        except CompanionError as exc:
            if not self._failed:  # once, not every half second
                log.warning("the agenda could not be checked: %s", exc)
                self._failed = True
            return 0
        return len(notices)

    def opening(self) -> int:
        """The session's opening notices (briefing, follow-ups)."""
        try:
            notices = self.poller.opening()
            self.give(notices)
        except CompanionError as exc:
            log.warning("the agenda could not be checked: %s", exc)
            return 0
        return len(notices)

    @contextmanager
    def handling(self) -> Iterator[None]:
        """Around the chat's handling of one line: nothing is shown meanwhile."""
        with self.busy:
            yield

    # -- the thread --------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="companion-due", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def poll_once(self) -> int:
        """One poll of the thread: skipped while the chat is busy with a line."""
        if not self.busy.acquire(blocking=False):
            return 0
        try:
            return self.check(typing=self.typing())
        finally:
            self.busy.release()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll_once()
