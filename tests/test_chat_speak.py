"""``chat --speak``: the text flows one way. The chat pulls the reply and prints it on
its own thread; the speaker is handed the pieces and only speaks them."""

from __future__ import annotations

import io
import threading
from pathlib import Path

from companion.cli.chat import ChatLoop
from companion.testing import FakeLLM, open_test_companion
from companion.voice.speaker import NoSpeaker, Speaker
from companion.voice.tts.fake import FakeTTS

# Several sentences: after its first clause, the reply guard passes a reply on a
# sentence at a time.
REPLY = (
    "Jazz is lovely, really. Do you play an instrument yourself? Or do you only listen? "
    "I play a little piano. Well, in my head."
)


class ThreadRecorder(io.StringIO):
    """An output stream that notes which thread wrote to it."""

    def __init__(self) -> None:
        super().__init__()
        self.writers: set[str] = set()

    def write(self, text: str) -> int:
        self.writers.add(threading.current_thread().name)
        return super().write(text)


def test_speak_prints_on_the_chat_thread_and_the_speaker_only_speaks(tmp_path: Path) -> None:
    companion = open_test_companion(tmp_path, llm=FakeLLM([REPLY], delay=0.002), user="theo")
    tts = FakeTTS()
    speaker = Speaker(NoSpeaker(), tts)
    lines = iter(["I love jazz."])

    def read(_prompt: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    out = ThreadRecorder()
    loop = ChatLoop(companion, read, out, io.StringIO(), tmp_path, speaker)
    assert loop.run(greet=False) == 0
    loop.finish_speaking()
    assert out.writers == {threading.current_thread().name}
    assert f"{companion.persona.name}: {REPLY}\n" in out.getvalue()
    assert " ".join(tts.texts).split() == REPLY.split()  # every word spoken, in order
    [stored] = [t for t in companion.history() if t.role == "assistant"]
    assert stored.content == REPLY and not stored.interrupted
    companion.close()


def test_ctrl_c_during_a_spoken_reply_stops_both(tmp_path: Path) -> None:
    companion = open_test_companion(tmp_path, llm=FakeLLM([REPLY]), user="theo")
    speaker = Speaker(NoSpeaker(), FakeTTS())
    out = ThreadRecorder()
    loop = ChatLoop(companion, lambda _p: "", out, io.StringIO(), tmp_path, speaker)
    reply = companion.say("I love jazz.")
    pieces = iter(reply)
    handed: list[str] = []

    class Interrupting:
        notes = reply.notes

        def __iter__(self) -> Interrupting:
            return self

        def __next__(self) -> str:
            if len(handed) == 3:  # Ctrl-C while the fourth piece is generated
                raise KeyboardInterrupt
            handed.append(next(pieces))
            return handed[-1]

        def interrupt(self) -> None:
            reply.interrupt()

    loop.show(Interrupting())  # type: ignore[arg-type]
    assert out.getvalue() == f"{companion.persona.name}: {''.join(handed)} [stopped]\n"
    assert speaker.current is not None and speaker.current.stopped
    assert reply.done and reply.result is not None and reply.result.interrupted
    companion.close()


def test_speak_also_says_her_notices(tmp_path: Path) -> None:
    companion = open_test_companion(tmp_path, llm=FakeLLM(["Sure."]), user="theo")
    tts = FakeTTS()
    speaker = Speaker(NoSpeaker(), tts)
    loop = ChatLoop(companion, lambda _p: "", io.StringIO(), io.StringIO(), tmp_path, speaker)
    loop.write_notice("Samantha: It's 6 pm: call Maya.")
    assert speaker.current is not None
    speaker.current.wait(timeout=5)
    assert " ".join(tts.texts) == "It's 6 pm: call Maya."
    assert "call Maya" in loop.out.getvalue()
    companion.close()
