"""``companion chat``: the terminal conversation.

Replies stream as they are generated. Ctrl-C during a reply stops it and keeps
what was said (stored as interrupted); Ctrl-C at the prompt clears the line;
Ctrl-D or ``/quit`` ends the chat. On a terminal the prompt has line editing
and a history kept in the data directory (a private file: it holds every line
typed); from a pipe, lines are read as they come, so the chat can be scripted.

Nothing the user types ends the chat with a traceback: a line that is not
UTF-8 or too long, a bad id, a locked store each get one line, and the chat
goes on. Everything printed that comes from the user, a card, a file or the
model goes through :func:`companion.text.safe`. A reply is stored before its
last piece is printed, so a reply seen in full is a reply kept.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO

from companion.cli.commands import CommandContext, run_command
from companion.cli.options import config_from_args
from companion.cli.output import echo
from companion.dialog import Companion
from companion.errors import CompanionError, ConfigError, InputError, StoreError, StoreLockedError
from companion.paths import data_dir, private_dir
from companion.reply import Reply
from companion.text import MAX_MESSAGE_CHARS, safe
from companion.types import Turn

if TYPE_CHECKING:
    from companion.cli.due import DueNotices
    from companion.cli.voice import SpokenReply
    from companion.voice.speaker import Speaker

Reader = Callable[[str], str]


#: The longest line read from a pipe (a message's limit in UTF-8's widest form).
MAX_LINE_BYTES = 4 * MAX_MESSAGE_CHARS + 2


def _stdin_reader(stream: IO[Any]) -> Reader:
    """Lines from ``stream``, each decoded on its own: a line that is not UTF-8 is an
    :class:`InputError` for that line only, and the next line is read as usual."""
    source = getattr(stream, "buffer", stream)

    def read(_prompt: str) -> str:
        raw = source.readline(MAX_LINE_BYTES)
        if not raw:
            raise EOFError
        if isinstance(raw, str):
            return raw.rstrip("\n")
        if len(raw) >= MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := source.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            raise InputError(f"line too long (the limit is {MAX_MESSAGE_CHARS:,} characters); "
                             "nothing was sent")
        try:
            return str(raw.decode("utf-8")).rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise InputError(f"that line is not UTF-8 text (bad byte at {exc.start}); "
                             "nothing was sent") from exc

    return read


def _private_history(home: Path) -> Path:
    """The prompt's history file, created (or made) readable by the user only."""
    path = home / "history"
    try:
        private_dir(home)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        os.chmod(path, 0o600)  # an older one may have been created 0644
    except OSError as exc:
        raise ConfigError(f"cannot create the history file: {exc.strerror or exc}",
                          path=path) from exc
    return path


class TerminalReader:
    """prompt_toolkit's prompt; what another thread prints while it waits goes
    above the line being typed, which stays as it was."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def __call__(self, prompt: str) -> str:
        from prompt_toolkit.patch_stdout import patch_stdout

        with patch_stdout():
            return str(self.session.prompt(prompt))

    def typing(self) -> bool:
        """Whether the prompt is waiting with a line not yet sent."""
        return bool(self.session.app.is_running and self.session.default_buffer.text)

    def above(self, line: str) -> None:
        print(line, file=sys.stdout, flush=True)  # patched while the prompt waits


def make_reader(home: Path) -> Reader:
    """prompt_toolkit on a terminal (editing, history); plain lines from a pipe."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, History, InMemoryHistory

        from companion.memory.crypto import encryption

        # No file of typed lines beside an encrypted store: it would hold them in clear.
        history: History = (InMemoryHistory() if encryption(home / "companion.db")
                            else FileHistory(str(_private_history(home))))
        session: PromptSession[str] = PromptSession(history=history)
        return TerminalReader(session)
    return _stdin_reader(sys.stdin)


class ChatLoop:
    """Reads lines, runs commands or turns, prints replies as they stream."""

    def __init__(
        self,
        companion: Companion,
        read: Reader,
        out: TextIO,
        err: TextIO,
        home: Path,
        speaker: Speaker | None = None,
        due: DueNotices | None = None,
        *,
        watch: bool | None = None,
    ) -> None:
        self.companion = companion
        self.read = read
        self.out = out
        self.err = err
        self.home = home
        self.interactive = out.isatty()
        #: Reads replies aloud (``--speak``); a new reply cuts off the one still playing.
        self.speaker = speaker
        #: A message not sent because the store stayed locked (Enter alone sends it).
        self.pending: str | None = None
        #: The agenda's notices: asked before each prompt, and (``watch``, on a
        #: terminal by default) by a thread while the prompt waits.
        self.due = due
        self.watch = self.interactive if watch is None else watch

    def show(self, reply: Reply[Turn | None]) -> None:
        """Stream a reply; Ctrl-C stops it and keeps what was said.

        Printing runs one piece behind the model: the last piece is printed
        only once the reply has ended, which is when it is stored.
        """
        self.out.write(f"{safe(self.companion.persona.name, one_line=True)}: ")
        self.out.flush()
        held = ""
        unstored: StoreError | None = None
        # With --speak each piece is also handed to the speaker, which only speaks.
        spoken = self._start_speaking()
        try:
            for chunk in reply:
                if held:
                    self.out.write(safe(held))
                    self.out.flush()
                held = chunk
                if spoken is not None:
                    spoken.say(chunk)
            self.out.write(safe(held))
            if spoken is not None:
                spoken.end()
        except KeyboardInterrupt:
            if spoken is not None:
                spoken.stop()
            reply.interrupt()
            self.out.write(f"{safe(held)} [stopped]")
        except StoreError as exc:  # e.g. locked: the reply was seen but could not be kept
            self.out.write(safe(held))
            unstored = exc
        self.out.write("\n")
        self.out.flush()
        if unstored is not None:
            echo(f"(this reply could not be stored: {unstored})", self.err)
        for note in reply.notes:
            echo(f"(note: {note})", self.err)

    def ask(self, question: str) -> bool:
        """A yes/no question answered on the next line; no at the end of input."""
        try:
            if self.interactive:
                answer = self.read(f"{question} [y/N] ")
            else:
                echo(f"{question} [y/N]", self.out)
                self.out.flush()
                answer = self.read("")
        except (EOFError, KeyboardInterrupt, InputError):
            return False
        return answer.strip().lower() in ("y", "yes")

    def _send(self, line: str) -> Reply[Turn | None] | None:
        """Say ``line``; while another process holds the store, wait and try again
        (Ctrl-C stops waiting and keeps the line: Enter alone sends it then)."""
        waiting = False
        while True:
            try:
                reply = self.companion.say(line)
            except StoreLockedError:
                if not waiting:
                    echo("(the memory is locked by another companion process; waiting for it "
                         "- Ctrl-C to stop waiting, your message is kept)", self.err)
                    self.err.flush()
                    waiting = True
                time.sleep(0.2)  # each try already waited for the lock; do not spin
                continue
            except KeyboardInterrupt:
                if not waiting:
                    raise
                self.pending = line
                echo("(not sent: press Enter alone to send it again)", self.err)
                return None
            if waiting:
                echo("(the memory is free again; sending)", self.err)
            return reply

    def _start_speaking(self) -> SpokenReply | None:
        if self.speaker is None:
            return None
        from companion.cli.voice import SpokenReply

        return SpokenReply(self.speaker, self.companion)

    def finish_speaking(self) -> None:
        """Let the last reply be heard to the end (Ctrl-C stops it)."""
        current = self.speaker.current if self.speaker is not None else None
        if current is None:
            return
        try:
            current.wait()
        except KeyboardInterrupt:
            current.stop()

    def write_notice(self, line: str) -> None:
        """One of her notices, on its own line (above the prompt on a terminal)."""
        above = getattr(self.read, "above", None)
        if above is not None:
            above(line)
        else:
            self.out.write(line + "\n")
            self.out.flush()
        if self.speaker is not None:  # --speak: said aloud too, after what is playing
            from companion.voice.style import speech_style

            playing = self.speaker.current
            if playing is not None and not playing.done:
                playing.wait()
            words = line.split(": ", 1)[-1]
            self.speaker.start([words], speech_style(self.companion.persona, self.companion.state))

    def run(self, *, greet: bool = True) -> int:
        if self.interactive:
            print("(Type /help for commands, Ctrl-D to leave.)", file=self.err)
        if greet:
            self.show(self.companion.greet())
        if self.due is not None:
            self.due.opening()
            if self.watch:
                self.due.start()
        try:
            return self._loop()
        finally:
            if self.due is not None:
                self.due.stop()

    def _handling(self) -> AbstractContextManager[None]:
        """Held while a line is handled: no notice is shown in the middle of a reply."""
        return self.due.handling() if self.due is not None else nullcontext()

    def _loop(self) -> int:
        prompt = "you> " if self.interactive else ""
        while True:
            if self.due is not None:
                with self._handling():
                    self.due.check()
            try:
                line = self.read(prompt)
            except EOFError:
                return 0
            except KeyboardInterrupt:
                if not self.interactive:
                    return 130
                continue
            except InputError as exc:
                echo(f"({exc})", self.err)
                continue
            with self._handling():
                if self._handle(line) == "quit":
                    return 0

    def _handle(self, line: str) -> str | None:
        """Run one line: a command, or a message and her reply."""
        if not line.strip() and self.pending is not None:
            line = self.pending
        self.pending = None
        if line.startswith("/") and not line.startswith("//"):
            ctx = CommandContext(self.companion, self.out, self.err, self.home, self.show,
                                 self.ask)
            return run_command(ctx, line)
        if line.startswith("//"):
            line = line[1:]
        try:
            reply = self._send(line)
        except InputError as exc:
            if line.strip() or not self.interactive:
                echo(f"({exc})", self.err)
            return None
        if reply is not None:
            self.show(reply)
        return None


def agenda_notices(
    companion: Companion, write: Callable[[str], None], typing: Callable[[], bool] | None
) -> DueNotices:
    """The agenda's notices for a chat with ``companion``, written by ``write``."""
    from companion.cli.due import DueNotices

    return DueNotices(companion.poller(), lambda: companion.persona.name, write,
                      typing=typing or (lambda: False))


def run_chat(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    home = data_dir()

    def progress(message: str) -> None:
        echo(message, sys.stderr)
        sys.stderr.flush()

    speaker: Speaker | None = None
    if getattr(args, "speak", False) or getattr(args, "save_audio", None):
        from companion.cli.voice import open_chat_voice

        speaker = open_chat_voice(config, args.save_audio, sys.stderr)
    companion = Companion.open(config=config, progress=progress)
    try:
        reader = make_reader(home)
        loop = ChatLoop(companion, reader, sys.stdout, sys.stderr, home, speaker)
        loop.due = agenda_notices(companion, loop.write_notice, getattr(reader, "typing", None))
        try:
            return loop.run(greet=not args.no_greeting)
        finally:
            loop.finish_speaking()
            if speaker is not None:
                speaker.device.close()
    finally:
        try:
            companion.close()
        except CompanionError as exc:  # the chat's turns are already stored
            echo(f"companion: warning: {exc}", sys.stderr)
