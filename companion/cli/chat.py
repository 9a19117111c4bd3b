"""``companion chat``: the terminal conversation.

Replies stream as they are generated. Ctrl-C during a reply stops it and keeps
what was said (stored as interrupted); Ctrl-C at the prompt clears the line;
Ctrl-D or ``/quit`` ends the chat. On a terminal the prompt has line editing
and a history kept in the data directory; from a pipe, lines are read as they
come, so the chat can be scripted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from companion.cli.commands import CommandContext, run_command
from companion.config import Config, load_config
from companion.dialog import Companion
from companion.errors import CompanionError, InputError
from companion.paths import data_dir
from companion.reply import Reply
from companion.types import Turn

if TYPE_CHECKING:
    from companion.voice.speaker import Speaker

Reader = Callable[[str], str]


def _stdin_reader(stream: TextIO) -> Reader:
    def read(_prompt: str) -> str:
        line = stream.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    return read


def make_reader(home: Path) -> Reader:
    """prompt_toolkit on a terminal (editing, history); plain lines from a pipe."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        home.mkdir(parents=True, exist_ok=True)
        session: PromptSession[str] = PromptSession(history=FileHistory(str(home / "history")))
        return session.prompt
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
    ) -> None:
        self.companion = companion
        self.read = read
        self.out = out
        self.err = err
        self.home = home
        self.interactive = out.isatty()
        #: Reads replies aloud (``--speak``); a new reply cuts off the one still playing.
        self.speaker = speaker

    def show(self, reply: Reply[Turn | None]) -> None:
        """Stream a reply; Ctrl-C stops it and keeps what was said."""
        self.out.write(f"{self.companion.persona.name}: ")
        self.out.flush()
        try:
            if self.speaker is not None:
                self._speak(reply)
            else:
                for chunk in reply:
                    self.out.write(chunk)
                    self.out.flush()
        except KeyboardInterrupt:
            if self.speaker is not None and self.speaker.current is not None:
                self.speaker.current.stop()
            reply.interrupt()
            self.out.write(" [stopped]")
        self.out.write("\n")
        self.out.flush()
        for note in reply.notes:
            print(f"(note: {note})", file=self.err)

    def _printed(self, reply: Reply[Turn | None]) -> Iterator[str]:
        chunks = iter(reply)
        try:
            for chunk in chunks:
                self.out.write(chunk)
                self.out.flush()
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _speak(self, reply: Reply[Turn | None]) -> None:
        # The text prints as it is generated and is spoken sentence by sentence
        # meanwhile; the prompt comes back once the text is complete.
        from companion.cli.voice import speak_reply

        assert self.speaker is not None
        speech = speak_reply(self.speaker, self.companion, self._printed(reply))
        while not speech.wait_text(0.1):
            pass
        if speech.error is not None:
            raise speech.error

    def finish_speaking(self) -> None:
        """Let the last reply be heard to the end (Ctrl-C stops it)."""
        current = self.speaker.current if self.speaker is not None else None
        if current is None:
            return
        try:
            current.wait()
        except KeyboardInterrupt:
            current.stop()

    def run(self, *, greet: bool = True) -> int:
        if self.interactive:
            print("(Type /help for commands, Ctrl-D to leave.)", file=self.err)
        if greet:
            self.show(self.companion.greet())
        prompt = "you> " if self.interactive else ""
        while True:
            try:
                line = self.read(prompt)
            except EOFError:
                return 0
            except KeyboardInterrupt:
                if not self.interactive:
                    return 130
                continue
            if line.startswith("/") and not line.startswith("//"):
                ctx = CommandContext(self.companion, self.out, self.err, self.home, self.show)
                if run_command(ctx, line) == "quit":
                    return 0
                continue
            if line.startswith("//"):
                line = line[1:]
            try:
                reply = self.companion.say(line)
            except InputError as exc:
                if line.strip() or not self.interactive:
                    print(f"({exc})", file=self.err)
                continue
            self.show(reply)


def config_from_args(args: argparse.Namespace) -> Config:
    """The config file(s), overridden by the model and sampling options given."""
    return load_config(
        Path(args.config) if args.config else None,
        user=args.user,
        model=args.model,
        persona=args.persona,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        seed=args.seed,
        threads=args.threads,
    )


def run_chat(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    home = data_dir()

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    speaker: Speaker | None = None
    if getattr(args, "speak", False) or getattr(args, "save_audio", None):
        from companion.cli.voice import open_chat_voice

        speaker = open_chat_voice(config, args.save_audio, sys.stderr)
    companion = Companion.open(config=config, progress=progress)
    try:
        loop = ChatLoop(companion, make_reader(home), sys.stdout, sys.stderr, home, speaker)
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
            print(f"companion: warning: {exc}", file=sys.stderr)
