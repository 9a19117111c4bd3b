"""The agenda in a turn: a reminder or a plan read from the user's message is
stored with its turn, goes into the private note, and the reply never states
another time than the item's (companion.agenda.intake, dialog)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from companion.testing import FakeClock, FakeLLM, open_test_companion

PARIS = ZoneInfo("Europe/Paris")
#: Monday 7 December 2026, 14:30 in Paris.
NOW = datetime(2026, 12, 7, 13, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


def _open(tmp_path, llm, clock):
    return open_test_companion(tmp_path, llm=llm, clock=clock, timezone="Europe/Paris",
                               reply_guard=True)


def test_reminder_is_stored_and_confirmed_from_the_item(tmp_path, clock):
    llm = FakeLLM(["Sounds good, she'll be glad to hear from you."])
    c = _open(tmp_path, llm, clock)
    reply = c.say("Remind me to call Maya on Friday at 6").text()
    assert reply.startswith("Okay, I'll remind you to call Maya on Friday at 6 pm.")
    [item] = c.agenda()
    assert item.kind == "reminder" and item.what == "call Maya"
    assert item.when == datetime(2026, 12, 11, 18, 0, tzinfo=PARIS)
    user_turn = [t for t in c.history() if t.role == "user"][-1]
    assert item.source_turn_id == user_turn.id
    note = "\n".join(m.content for m in llm.calls[-1] if m.role == "system")
    assert "set a reminder" in note and "call Maya" in note and "2026-12-11" in note
    # the confirmation is the reply's start, given to the model as a prefill
    assert llm.params[-1].prefill.startswith("Okay, I'll remind you")


def test_a_reply_stating_another_time_is_sampled_again(tmp_path, clock):
    llm = FakeLLM(["Sure, I will ping you on Saturday at 7 pm, okay?",
                   "Of course, she'll love that call."])
    c = _open(tmp_path, llm, clock)
    reply = c.say("remind me to call Maya on Friday at 6").text()
    assert "Saturday" not in reply and "7 pm" not in reply
    assert "she'll love that call" in reply
    assert c.last_guard is not None and "time" in c.last_guard.problems


def test_a_later_sentence_with_another_time_is_cut(tmp_path, clock):
    llm = FakeLLM(["That's exciting news for you. Good luck on Wednesday at 9 am! I mean it."])
    c = _open(tmp_path, llm, clock)
    reply = c.say("My interview is next Tuesday at 10am").text()
    assert "Wednesday" not in reply and "exciting" in reply
    [item] = c.agenda()
    assert item.kind == "plan" and item.when == datetime(2026, 12, 15, 10, tzinfo=PARIS)


def test_a_reply_that_keeps_the_wrong_time_becomes_the_confirmation(tmp_path, clock):
    wrong = "Okay, your interview is on Thursday at 4 pm then."
    llm = FakeLLM([wrong, wrong, wrong])
    c = _open(tmp_path, llm, clock)
    reply = c.say("My interview is next Tuesday at 10am").text()
    assert "Thursday" not in reply
    assert "Tuesday" in reply and "10 am" in reply


def test_a_time_already_past_is_asked_back_then_set(tmp_path, clock):
    llm = FakeLLM(["Done."])
    c = _open(tmp_path, llm, clock)
    asked = c.say("remind me to water the plants yesterday").text()
    assert "?" in asked and not c.agenda()
    assert llm.calls == []  # no model call for the question
    c.say("tomorrow at 9am").text()
    [item] = c.agenda()
    assert item.what == "water the plants"
    assert item.when == datetime(2026, 12, 8, 9, tzinfo=PARIS)


def test_ordinary_messages_make_no_item(tmp_path, clock):
    c = _open(tmp_path, FakeLLM(), clock)
    for text in ("I went to the beach on Sunday.", "I always forget my keys.",
                 "What time is it?", "My sister Maya lives in Lyon."):
        c.say(text).text()
    assert c.agenda() == []


def test_the_note_clock_is_in_the_users_zone(tmp_path, clock):
    llm = FakeLLM(["Hi."])
    c = _open(tmp_path, llm, clock)
    c.say("hello there").text()
    note = "\n".join(m.content for m in llm.calls[-1] if m.role == "system")
    assert "14:30" in note


def test_in_twenty_minutes_is_said_back_with_its_clock_time(tmp_path, clock):
    llm = FakeLLM(["Good thinking."])
    c = _open(tmp_path, llm, clock)
    reply = c.say("in 20 minutes remind me to check the oven").text()
    assert reply.startswith("Okay, I'll remind you to check the oven in 20 minutes (at 2:50 pm).")


def test_what_is_on_my_agenda_is_answered_from_the_store(tmp_path, clock):
    llm = FakeLLM(["Noted.", "Good luck!"])
    c = _open(tmp_path, llm, clock)
    empty = c.say("What's on my agenda?").text()
    assert "Nothing" in empty
    c.say("remind me to call Maya on Friday at 6").text()
    c.say("My interview is next Tuesday at 10am").text()
    calls = len(llm.calls)
    listed = c.say("what's on my agenda?").text()
    assert len(llm.calls) == calls  # no model call: the times come from the store
    assert "On Friday at 6 pm: remind you to call Maya." in listed
    assert "Tuesday 15 December at 10 am: your interview." in listed
    tomorrow = c.say("what do I have tomorrow?").text()
    assert tomorrow == "Nothing's on your agenda tomorrow."
    assert [t.role for t in c.history()][-2:] == ["user", "assistant"]


def test_a_reply_that_fails_the_guard_becomes_the_plans_confirmation(tmp_path, clock):
    desk = "I'm sorry, but I can't assist with that. How can I help you today?"
    llm = FakeLLM([desk, desk, desk])
    c = _open(tmp_path, llm, clock)
    reply = c.say("My interview is next Tuesday at 10am").text()
    assert reply == "Noted: your interview, on Tuesday 15 December at 10 am."


def test_a_reminders_failed_continuation_leaves_the_confirmation_alone(tmp_path, clock):
    desk = "I'm sorry, but I can't assist with that. How can I help you today?"
    llm = FakeLLM([desk, desk, desk])
    c = _open(tmp_path, llm, clock)
    reply = c.say("remind me to call Maya on Friday at 6").text()
    assert reply == "Okay, I'll remind you to call Maya on Friday at 6 pm."


def test_a_date_that_does_not_exist_is_asked_back_and_the_answer_set(tmp_path, clock):
    llm = FakeLLM(["Done."])
    c = _open(tmp_path, llm, clock)
    asked = c.say("Remind me on the 31st of February to renew my passport").text()
    assert asked == "There is no 31st of February. Which day did you mean?"
    c.say("the 28th then").text()
    [item] = c.agenda()
    assert item.what == "renew your passport"
    assert item.when == datetime(2027, 2, 28, 9, tzinfo=PARIS)
