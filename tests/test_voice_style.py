"""speech_style: a steady voice, pace and volume following the mood, bounded."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from companion.persona.model import Persona
from companion.types import Mood, PersonaState
from companion.voice.base import SpeechStyle
from companion.voice.style import speech_style

PERSONA = Persona(name="Sam", voice=SpeechStyle(voice="gmw/en-us", rate=170, volume=0.8))


def at(valence: float, arousal: float) -> SpeechStyle:
    return speech_style(PERSONA, PersonaState(mood=Mood(valence=valence, arousal=arousal)))


def test_neutral_mood_is_the_persona_voice() -> None:
    assert at(0.0, 0.0) == SpeechStyle(voice="gmw/en-us", rate=170.0, volume=0.8)


def test_arousal_moves_pace_by_up_to_fifteen_percent() -> None:
    assert at(0.0, 1.0).rate == 195.5
    assert at(0.0, -1.0).rate == 144.5
    assert at(0.0, -0.5).rate < at(0.0, 0.0).rate < at(0.0, 0.5).rate


def test_valence_moves_volume_slightly() -> None:
    assert at(1.0, 0.0).volume == 0.88
    assert at(-1.0, 0.0).volume == 0.72


def test_no_state_uses_the_persona_baseline() -> None:
    excited = Persona(name="Joy", baseline=Mood(valence=0.0, arousal=1.0))
    assert speech_style(excited, None).rate > speech_style(excited, PersonaState()).rate


mood_value = st.floats(allow_nan=True, allow_infinity=True)


@given(mood_value, mood_value)
def test_bounded_deterministic_and_the_voice_never_changes(valence: float, arousal: float) -> None:
    style = at(valence, arousal)
    assert style == at(valence, arousal)
    assert style.voice == "gmw/en-us"
    assert math.isfinite(style.rate) and 144.5 <= style.rate <= 195.5
    assert math.isfinite(style.volume) and 0.72 <= style.volume <= 0.88


def test_loud_persona_volume_stays_at_most_one() -> None:
    loud = Persona(name="Max", voice=SpeechStyle(volume=1.0, rate=290))
    style = speech_style(loud, PersonaState(mood=Mood(valence=1.0, arousal=1.0)))
    assert style.volume == 1.0 and style.rate == 300.0
