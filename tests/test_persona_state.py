"""The evolving persona state: appraisal, decay, updates, rendering, serialization."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from companion.persona import (
    MOOD_HALF_LIFE,
    Persona,
    appraise,
    begin_session,
    decay,
    describe_state,
    initial_state,
    mood_words,
    render_state,
    state_from_dict,
    state_to_dict,
    update_state,
)
from companion.types import Mood, PersonaState, Relationship

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PERSONA = Persona(name="Sam", baseline=Mood(0.3, 0.2))


def state_with(mood: Mood, **rel: Any) -> PersonaState:
    return PersonaState(mood=mood, relationship=Relationship(**rel), updated_at=T0)


# -- appraisal ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["I'm so happy today", "I love this!", "that was wonderful :)", "Great news 🎉", "not bad"],
)
def test_pleasant_messages_appraise_positive(text: str) -> None:
    assert appraise(text).valence > 0.2


@pytest.mark.parametrize(
    "text",
    ["I feel sad", "this is awful :(", "I'm not happy", "I am NOT okay", "I hate it 😡", "ugh"],
)
def test_unpleasant_messages_appraise_negative(text: str) -> None:
    assert appraise(text).valence < -0.2


def test_neutral_message_appraises_zero() -> None:
    assert appraise("I walked to the station and took the train.") == Mood(0.0, 0.0)
    assert appraise("") == Mood(0.0, 0.0)


def test_negation_flips_and_softens() -> None:
    happy, not_happy, sad = (
        appraise(t).valence for t in ("I am happy", "I am not happy", "I am sad")
    )
    assert happy > 0 > not_happy > sad
    assert appraise("I don't feel good").valence < 0
    assert appraise("I'm not sad, I'm happy").valence > 0  # the comma ends the negation


def test_intensifiers_and_softeners_scale() -> None:
    plain = appraise("I am happy").valence
    assert appraise("I am very happy").valence > plain > appraise("I am a bit happy").valence


def test_but_weighs_the_second_clause() -> None:
    assert appraise("I am tired but happy").valence > 0
    assert appraise("It was fun but I feel awful").valence < 0


def test_exclamations_and_caps_raise_arousal() -> None:
    calm = appraise("I got the job").arousal
    assert appraise("I got the job!!!").arousal > calm
    assert appraise("I GOT THE JOB").arousal > calm
    assert appraise("I feel calm and relaxed").arousal < 0
    assert appraise("I am TERRIFIED").arousal > appraise("I am terrified").arousal


def test_inflections_are_found() -> None:
    assert appraise("she loved it").valence > 0
    assert appraise("everyone hated it").valence < 0


# -- decay -------------------------------------------------------------------------


def test_initial_state_starts_at_baseline() -> None:
    state = initial_state(PERSONA, T0)
    assert state.mood == PERSONA.baseline and state.updated_at == T0
    assert state.relationship == Relationship()


def test_decay_halves_the_distance_each_half_life() -> None:
    state = state_with(Mood(-0.7, 1.0))
    later = decay(state, PERSONA, T0 + MOOD_HALF_LIFE)
    assert later.mood.valence == pytest.approx(0.3 + (-1.0) / 2)
    assert later.mood.arousal == pytest.approx(0.2 + 0.8 / 2)
    assert later.updated_at == T0 + MOOD_HALF_LIFE


def test_decay_converges_monotonically_to_baseline() -> None:
    state = state_with(Mood(-1.0, -1.0))
    distances = []
    for hours in range(0, 73, 3):
        mood = decay(state, PERSONA, T0 + timedelta(hours=hours)).mood
        distances.append(abs(mood.valence - 0.3) + abs(mood.arousal - 0.2))
    assert distances == sorted(distances, reverse=True)
    assert distances[-1] < 1e-6


def test_decay_is_memoryless() -> None:
    state = state_with(Mood(-0.9, 0.9))
    direct = decay(state, PERSONA, T0 + timedelta(hours=5))
    stepped = decay(
        decay(state, PERSONA, T0 + timedelta(hours=2)), PERSONA, T0 + timedelta(hours=5)
    )
    assert stepped.mood.valence == pytest.approx(direct.mood.valence)


def test_clock_going_backwards_changes_nothing() -> None:
    state = state_with(Mood(-0.9, 0.9))
    assert decay(state, PERSONA, T0 - timedelta(hours=5)) == state


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        initial_state(PERSONA, datetime(2026, 1, 1))


# -- updates -----------------------------------------------------------------------


def test_update_counts_turns_and_dates() -> None:
    state = initial_state(PERSONA, T0)
    state = update_state(state, PERSONA, "hello", T0)
    later = T0 + timedelta(minutes=5)
    state = update_state(state, PERSONA, "how are you?", later)
    assert state.relationship.turns == 2
    assert state.relationship.first_seen == T0
    assert state.relationship.last_seen == later
    assert state.updated_at == later


def test_update_moves_mood_with_the_user() -> None:
    start = initial_state(PERSONA, T0)
    happy = update_state(start, PERSONA, "I got the job!! I'm so happy!", T0)
    sad = update_state(start, PERSONA, "My dog died. I feel so sad.", T0)
    neutral = update_state(start, PERSONA, "I took the bus.", T0)
    assert happy.mood.valence > start.mood.valence > sad.mood.valence
    assert happy.mood.arousal > start.mood.arousal
    assert neutral.mood == start.mood


def test_sadness_lingers_over_a_few_messages() -> None:
    state = initial_state(PERSONA, T0)
    for text in ("I feel so sad today", "my cat died", "I miss her"):
        state = update_state(state, PERSONA, text, T0)
    assert state.mood.valence < -0.15


def test_begin_session_counts_sessions() -> None:
    state = begin_session(PersonaState(), T0)
    assert state.relationship.sessions == 1 and state.updated_at == T0
    again = begin_session(state, T0 + timedelta(days=1))
    assert again.relationship.sessions == 2 and again.updated_at == T0


# -- rendering ---------------------------------------------------------------------


def test_render_state_wording_follows_mood() -> None:
    bright = render_state(state_with(Mood(0.8, 0.7)), PERSONA, now=T0, user_name="Theo")
    low = render_state(state_with(Mood(-0.5, -0.5)), PERSONA, now=T0, user_name="Theo")
    assert bright != low
    assert "bright and playful" in bright and "exclamation" in bright
    assert "sad" in low and "gentle" in low and "exclamation" not in low
    for block in (bright, low):
        assert 2 <= len(block.splitlines()) <= 4
        assert block.startswith("You feel ")


def test_render_state_first_meeting() -> None:
    block = render_state(initial_state(PERSONA, T0), PERSONA, now=T0, user_name=None)
    assert "This is the first time you are talking with them." in block
    named = update_state(initial_state(PERSONA, T0), PERSONA, "hi", T0)
    assert "first time you are talking with Theo" in render_state(
        named, PERSONA, now=T0, user_name="Theo"
    )


def test_render_state_relationship_figures() -> None:
    now = T0 + timedelta(days=12)
    state = state_with(
        PERSONA.baseline, turns=148, first_seen=T0, last_seen=now - timedelta(hours=3)
    )
    block = render_state(state, PERSONA, now=now, user_name="Theo")
    assert "You have known Theo for" in block
    assert "talked 148 times; you last talked 3 hours ago." in block


def test_render_state_last_talked_after_update() -> None:
    """A caller that updates first passes the previous last_seen to keep the gap."""
    before = state_with(PERSONA.baseline, turns=3, first_seen=T0, last_seen=T0)
    now = T0 + timedelta(days=2)
    after = update_state(before, PERSONA, "hi again", now)
    assert "last talked" not in render_state(after, PERSONA, now=now, user_name="Theo")
    block = render_state(
        after, PERSONA, now=now, user_name="Theo", last_talked=before.relationship.last_seen
    )
    assert "you last talked 2 days ago" in block


def test_render_state_decays_to_now() -> None:
    state = state_with(Mood(-0.9, -0.9))
    later = T0 + timedelta(days=2)
    assert mood_words(PERSONA.baseline) in render_state(state, PERSONA, now=later, user_name=None)


def test_describe_state() -> None:
    now = T0 + timedelta(days=12)
    state = state_with(Mood(0.62, 0.4), turns=148, sessions=9, first_seen=T0, last_seen=T0)
    text = describe_state(state, PERSONA, now=T0)
    assert text.splitlines()[0] == "Sam feels bright and playful."
    assert "valence +0.62 (very pleasant), baseline +0.30" in text
    assert "arousal +0.40 (lively), baseline +0.20" in text
    assert "148 messages in 9 sessions" in text
    assert "not met yet" in describe_state(PersonaState(updated_at=now), PERSONA, now=now)


# -- serialization ----------------------------------------------------------------


def test_state_dict_round_trip() -> None:
    tz = timezone(timedelta(hours=2))
    state = PersonaState(
        mood=Mood(-0.25, 0.125),
        relationship=Relationship(turns=7, first_seen=T0, last_seen=T0.astimezone(tz), sessions=2),
        updated_at=T0,
    )
    data = json.loads(json.dumps(state_to_dict(state)))
    assert state_from_dict(data) == state
    assert data["relationship"]["last_seen"].endswith("+02:00")
    assert state_from_dict(state_to_dict(PersonaState())) == PersonaState()


def test_state_from_dict_is_lenient_on_missing_and_strict_on_wrong() -> None:
    assert state_from_dict({}) == PersonaState()
    naive = state_from_dict({"updated_at": "2026-03-01T12:00:00"})
    assert naive.updated_at == T0
    with pytest.raises(ValueError, match="'mood.valence' must be a number"):
        state_from_dict({"mood": {"valence": "high"}})
    with pytest.raises(ValueError, match="'relationship.turns'"):
        state_from_dict({"relationship": {"turns": -1}})
    with pytest.raises(ValueError, match="'updated_at' is not an ISO 8601 time"):
        state_from_dict({"updated_at": "yesterday"})


# -- property ---------------------------------------------------------------------


steps = st.lists(
    st.tuples(st.text(max_size=80), st.integers(min_value=-(10**6), max_value=10**9)),
    max_size=12,
)


@given(
    steps=steps,
    valence=st.floats(-1, 1),
    arousal=st.floats(-1, 1),
)
def test_mood_stays_in_range(steps: list[tuple[str, int]], valence: float, arousal: float) -> None:
    persona = Persona(name="P", baseline=Mood(valence, arousal))
    now = T0
    state = begin_session(initial_state(persona, now), now)
    for text, gap in steps:
        now += timedelta(seconds=gap)
        felt = appraise(text)
        assert -1 <= felt.valence <= 1 and -1 <= felt.arousal <= 1
        state = update_state(state, persona, text, now)
        for value in (state.mood.valence, state.mood.arousal):
            assert -1.0 <= value <= 1.0
        assert render_state(state, persona, now=now, user_name="U")
    assert state.relationship.turns == len(steps)
