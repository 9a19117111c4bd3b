"""The agenda in the terminal chat: due notices between lines (from a pipe) and
above the prompt (a thread, within a second), and /agenda, /done, /snooze, /cancel."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from companion.agenda import store as agenda
from companion.agenda.model import Draft
from companion.cli.chat import ChatLoop, agenda_notices
from companion.dialog import Companion
from companion.llm.fake import FakeLLM
from companion.testing import FakeClock, open_test_companion

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


def _open(home: Path, clock: FakeClock, llm: FakeLLM | None = None, *,
          proactive: bool = False) -> Companion:
    """Proactive off unless asked for: reminders fire either way, briefings do not."""
    return open_test_companion(home, clock=clock, llm=llm, timezone="Europe/Paris",
                               proactive=proactive)


def _add(c: Companion, what: str, when: datetime, kind: str = "reminder", **kw: object) -> int:
    draft = Draft(what=what, when=when, kind=kind, **kw)  # type: ignore[arg-type]
    return agenda.add_item(c.store, c.user, draft, tz="Europe/Paris", now=c._clock()).id


def _scripted(lines: list[str], clock: FakeClock, step: timedelta) -> Callable[[str], str]:
    """Reads ``lines`` one by one; the clock moves ``step`` before each."""
    todo = list(lines)

    def read(_prompt: str) -> str:
        if not todo:
            raise EOFError
        clock.now += step
        return todo.pop(0)

    return read


def _loop(c: Companion, read: Callable[[str], str], home: Path, *,
          watch: bool = False, typing: Callable[[], bool] | None = None,
          ) -> tuple[ChatLoop, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    loop = ChatLoop(c, read, out, err, home, watch=watch)
    loop.due = agenda_notices(c, loop.write_notice, typing)
    return loop, out, err


def test_a_due_reminder_is_printed_between_lines_and_stored(companion_home: Path) -> None:
    clock = FakeClock(paris(2026, 12, 7, 14, 0))
    c = _open(companion_home, clock, FakeLLM(["Hi!", "Sure.", "Okay."]))
    _add(c, "call Maya", paris(2026, 12, 7, 14, 20))  # it fires with proactive off too
    loop, out, _ = _loop(c, _scripted(["hello", "how are you", "bye"], clock,
                                      timedelta(minutes=10)), companion_home)
    assert loop.run(greet=False) == 0
    # "how are you" is read at 14:20, the reminder's time: it comes after the reply
    lines = out.getvalue().splitlines()
    assert lines == ["Samantha: Hi!", "Samantha: Sure.", "Samantha: Hey, it's time: call Maya.",
                     "Samantha: Okay."]
    said = [(t.role, t.content) for t in c.history()]
    assert said == [("user", "hello"), ("assistant", "Hi!"), ("user", "how are you"),
                    ("assistant", "Sure."), ("assistant", "Hey, it's time: call Maya."),
                    ("user", "bye"), ("assistant", "Okay.")]
    c.close()


def test_the_briefing_opens_the_chat_after_the_greeting(companion_home: Path) -> None:
    clock = FakeClock(paris(2026, 12, 7, 9, 0))
    c = _open(companion_home, clock, FakeLLM(["Good morning!"]), proactive=True)
    _add(c, "dentist appointment", paris(2026, 12, 7, 15, 0), kind="plan")
    loop, out, _ = _loop(c, _scripted([], clock, timedelta(0)), companion_home)
    loop.run(greet=True)
    assert out.getvalue().splitlines()[-1] == "Samantha: Here's your day: 3 pm dentist appointment."
    c.close()


def test_a_due_notice_shows_within_a_second_while_the_prompt_waits(
    companion_home: Path,
) -> None:
    clock = FakeClock(paris(2026, 12, 7, 14, 0))
    c = _open(companion_home, clock)
    _add(c, "call Maya", paris(2026, 12, 7, 14, 30))
    release = threading.Event()
    seen: dict[str, float] = {}
    reads = 0

    def read(_prompt: str) -> str:  # the user sits at the prompt, typing
        nonlocal reads
        reads += 1
        if reads > 1:
            raise EOFError
        release.wait(10)
        return "/quit"

    loop, out, _ = _loop(c, read, companion_home, watch=True, typing=lambda: True)
    runner = threading.Thread(target=loop.run, kwargs={"greet": False})
    runner.start()
    time.sleep(0.3)
    assert out.getvalue() == ""
    clock.now = paris(2026, 12, 7, 14, 30)  # the reminder's time comes
    due = time.monotonic()
    while time.monotonic() - due < 3 and "call Maya" not in out.getvalue():
        time.sleep(0.01)
    seen["delay"] = time.monotonic() - due
    release.set()
    runner.join(5)
    assert out.getvalue() == "Samantha: Hey, it's time: call Maya.\n"
    assert seen["delay"] < 1.0, seen
    assert [t.content for t in c.history()] == ["Hey, it's time: call Maya."]
    c.close()


def test_no_notice_while_a_reply_streams_it_comes_after(companion_home: Path) -> None:
    clock = FakeClock(paris(2026, 12, 7, 14, 0))
    c = _open(companion_home, clock, FakeLLM(["one two three four five six seven eight"],
                                             delay=0.15))
    _add(c, "call Maya", paris(2026, 12, 7, 14, 0, 1))
    lines = ["tell me a story"]
    done = threading.Event()

    def read(_prompt: str) -> str:
        if lines:
            return lines.pop(0)
        clock.now = paris(2026, 12, 7, 14, 1)  # due only now, while the reply streams
        done.wait(2)
        raise EOFError

    loop, out, _ = _loop(c, read, companion_home, watch=True)
    real_show = loop.show

    def show(reply):  # type: ignore[no-untyped-def]
        clock.now = paris(2026, 12, 7, 14, 1)
        real_show(reply)

    loop.show = show  # type: ignore[method-assign]
    runner = threading.Thread(target=loop.run, kwargs={"greet": False})
    runner.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "Reminder" not in out.getvalue():
        time.sleep(0.01)
    done.set()
    runner.join(5)
    assert out.getvalue().splitlines() == [
        "Samantha: one two three four five six seven eight", "Samantha: Hey, it's time: call Maya."]
    c.close()


def test_agenda_done_snooze_and_cancel(companion_home: Path) -> None:
    clock = FakeClock(paris(2026, 12, 7, 14, 0))
    c = _open(companion_home, clock)
    call = _add(c, "call Maya", paris(2026, 12, 7, 18, 0))
    pills = _add(c, "take the pills", paris(2026, 12, 8, 9, 0), rrule="FREQ=DAILY")
    party = _add(c, "Maya's party", paris(2026, 12, 12), kind="plan", all_day=True)
    script = ["/agenda", f"/snooze {call} 30m", f"/done {pills}", f"/cancel {party}",
              "/done", "/done x", f"/snooze {call}", f"/snooze {call} forever", "/done 999",
              f"/cancel {call} now", "/agenda"]
    loop, out, err = _loop(c, _scripted(script, clock, timedelta(0)), companion_home)
    loop.run(greet=False)
    assert out.getvalue().splitlines() == [  # as `companion agenda list` shows them
        f"[{call}] Mon 07 Dec 2026 18:00  call Maya  (reminder, pending)",
        f"[{pills}] Tue 08 Dec 2026 09:00  take the pills  (every day)  (reminder, pending)",
        f"[{party}] Sat 12 Dec 2026 (all day)  Maya's party  (plan, pending)",
        f"Snoozed: [{call}] Mon 07 Dec 2026 18:00  call Maya  "
        "(reminder, snoozed until Mon 18:30)",
        f"Done: [{pills}] Wed 09 Dec 2026 09:00  take the pills  (every day)  "
        "(reminder, pending, fired 08 Dec 09:00)",
        f"Cancelled: [{party}] Sat 12 Dec 2026 (all day)  Maya's party  (plan, cancelled)",
        f"[{call}] Mon 07 Dec 2026 18:00  call Maya  (reminder, snoozed until Mon 18:30)",
        f"[{pills}] Wed 09 Dec 2026 09:00  take the pills  (every day)  "
        "(reminder, pending, fired 08 Dec 09:00)",
    ]
    errors = err.getvalue().splitlines()
    assert len(errors) == 6
    assert all(e.startswith("(error: ") for e in errors), errors
    assert "usage: /done N" in errors[0] and "usage: /done N" in errors[1]
    assert "usage: /snooze N 10m" in errors[2]
    assert "not a duration" in errors[3]
    assert "no agenda item 999" in errors[4]
    assert "usage: /cancel N" in errors[5]
    assert agenda.get_item(c.store, c.user, pills).when == paris(2026, 12, 9, 9, 0)
    assert agenda.get_item(c.store, c.user, call).status == "snoozed"
    c.close()


def test_empty_agenda(companion_home: Path) -> None:
    clock = FakeClock(paris(2026, 12, 7, 14, 0))
    c = _open(companion_home, clock)
    loop, out, _ = _loop(c, _scripted(["/agenda"], clock, timedelta(0)), companion_home)
    loop.run(greet=False)
    assert out.getvalue() == "(nothing in your agenda; try \"remind me to ...\")\n"
    c.close()


def test_voice_speaks_a_due_reminder_between_turns(companion_home: Path) -> None:
    from companion.cli.voice import agenda_voice
    from companion.voice.devices import VirtualDevice
    from companion.voice.loop import Event, Heard, ReplyDone, VoiceLoop
    from companion.voice.stt import FakeSTT
    from companion.voice.tts import FakeTTS
    from companion.voice.vad import EnergyVAD
    from tests.test_voice_loop import voice

    clock = FakeClock(paris(2026, 12, 7, 13, 59))
    c = _open(companion_home, clock, FakeLLM(["Hello Theo."]))
    _add(c, "call Maya", paris(2026, 12, 7, 14, 0))

    def time_passes(event: Event) -> None:  # her reply ends: the reminder's time comes
        if isinstance(event, ReplyDone):
            clock.now = paris(2026, 12, 7, 14, 0)

    device = VirtualDevice([voice(1.0)], speed=16.0, tail_s=4.0)
    tts = FakeTTS()
    loop = VoiceLoop(c, device, FakeSTT(["hi"]), tts, EnergyVAD(), on_event=time_passes,
                     between_turns=agenda_voice(c, interval=0.0), speculate=False)
    try:
        loop.run(greet=False)
    finally:
        device.close()
    # (how much of her first reply is heard is the echo guard's business, not the agenda's)
    assert tts.texts[0] == "Hello Theo."
    assert " ".join(tts.texts[1:]) == "Hey, it's time: call Maya."
    done = [(e.text, e.interrupted) for e in loop.events if isinstance(e, ReplyDone)]
    assert done[-1] == ("Hey, it's time: call Maya.", False) and len(done) == 2
    assert [e.text for e in loop.events if isinstance(e, Heard)] == ["hi"]
    turns = [(t.role, t.content) for t in c.history()]
    assert turns[0] == ("user", "hi") and turns[-1] == ("assistant", "Hey, it's time: call Maya.")
    assert len(turns) == 3
    c.close()


def test_on_a_terminal_the_typed_line_survives_a_notice_above_it() -> None:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from companion.cli.chat import TerminalReader

    with create_pipe_input() as keys:
        reader = TerminalReader(PromptSession(input=keys, output=DummyOutput()))
        got: list[str] = []
        runner = threading.Thread(target=lambda: got.append(reader("you> ")))
        runner.start()
        deadline = time.monotonic() + 5
        assert not reader.typing()
        keys.send_text("call me ")
        while not reader.typing() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reader.typing()
        reader.above("Samantha: Hey, it's time: call Maya.")  # from the poll thread
        keys.send_text("later\r")
        runner.join(5)
    assert got == ["call me later"]
    assert not reader.typing()
