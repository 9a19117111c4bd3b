"""How the persona sounds right now: :func:`speech_style`.

The voice itself is steady (the persona's voice id, always); the delivery
follows the mood: arousal moves the pace by up to ±15% (excited: faster, calm:
slower), valence the volume by up to ±10% (glad: a little louder, low: softer).
Deterministic and bounded, whatever the state holds.
"""

from __future__ import annotations

import math

from companion.persona.model import Persona
from companion.types import PersonaState
from companion.voice.base import SpeechStyle

#: Largest change of pace from arousal, as a fraction of the persona's rate.
RATE_SWING = 0.15
#: Largest change of volume from valence, as a fraction of the persona's volume.
VOLUME_SWING = 0.10
#: Words per minute the result stays within.
RATE_BOUNDS = (80.0, 300.0)


def speech_style(persona: Persona, state: PersonaState | None = None) -> SpeechStyle:
    """The persona's voice, paced by its mood (``state``, else the persona's baseline)."""
    mood = state.mood if state is not None else persona.baseline
    arousal, valence = _unit(mood.arousal), _unit(mood.valence)
    base = persona.voice
    rate = _clamp(_finite(float(base.rate), 175.0) * (1.0 + RATE_SWING * arousal), *RATE_BOUNDS)
    volume = _clamp(_finite(base.volume, 0.9) * (1.0 + VOLUME_SWING * valence), 0.0, 1.0)
    return SpeechStyle(voice=base.voice, rate=round(rate, 1), volume=round(volume, 3))


def _unit(x: float) -> float:
    return _clamp(_finite(x, 0.0), -1.0, 1.0)


def _finite(x: float, default: float) -> float:
    return x if math.isfinite(x) else default


def _clamp(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)
