"""The companion's evolving state towards one user: pure update functions.

Mood is a point in valence/arousal space. Left alone it drifts back to the
persona's baseline, exponentially, with a half-life of ``MOOD_HALF_LIFE``. Each
user message is appraised (``affect.appraise``) and the mood moves part of the way
towards an empathic blend of the baseline and what the user seems to feel; the
stronger the feeling in the message, the further it moves. A message with no
feeling in it leaves the mood where time has put it.

No I/O and no clock: the caller passes ``now`` (a timezone-aware datetime). A
``now`` earlier than the state's last update (a clock set back) decays nothing.
Decay is memoryless, so it is applied lazily: whoever reads the mood at a time
(``update_state``, ``render_state``, ``describe_state``) decays it to that time.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from companion.persona.affect import appraise
from companion.persona.model import Persona
from companion.types import Mood, PersonaState, Relationship

MOOD_HALF_LIFE = timedelta(hours=3)
# The mood a message pulls towards: this much of what the user seems to feel,
# the rest the persona's own baseline.
EMPATHY = 0.8
# How far towards that target a message moves the mood, times the strength of
# the feeling on each axis: a message with no feeling in it moves nothing.
RESPONSIVENESS = 0.8

STATE_VERSION = 1


def initial_state(persona: Persona, now: datetime) -> PersonaState:
    """A fresh state: the persona's baseline mood, and a relationship not yet begun."""
    _check_aware(now)
    return PersonaState(mood=persona.baseline, relationship=Relationship(), updated_at=now)


def decay(state: PersonaState, persona: Persona, now: datetime) -> PersonaState:
    """The state at ``now``: mood moved back towards the baseline for the time passed."""
    _check_aware(now)
    if state.updated_at is None:
        return replace(state, updated_at=now)
    elapsed = (now - state.updated_at).total_seconds()
    if elapsed <= 0:
        return state
    keep = 0.5 ** (elapsed / MOOD_HALF_LIFE.total_seconds())
    base = persona.baseline
    mood = Mood(
        valence=_clamp(base.valence + (state.mood.valence - base.valence) * keep),
        arousal=_clamp(base.arousal + (state.mood.arousal - base.arousal) * keep),
    )
    return replace(state, mood=mood, updated_at=now)


def update_state(
    state: PersonaState, persona: Persona, user_text: str, now: datetime
) -> PersonaState:
    """The state after the user says ``user_text`` at ``now``: one more turn."""
    state = decay(state, persona, now)
    felt = appraise(user_text)
    mood = Mood(
        valence=_toward(state.mood.valence, persona.baseline.valence, felt.valence),
        arousal=_toward(state.mood.arousal, persona.baseline.arousal, felt.arousal),
    )
    rel = state.relationship
    relationship = replace(
        rel,
        turns=rel.turns + 1,
        first_seen=rel.first_seen or now,
        last_seen=now if rel.last_seen is None else max(rel.last_seen, now),
    )
    return replace(state, mood=mood, relationship=relationship)


def begin_session(state: PersonaState, now: datetime) -> PersonaState:
    """The state at the start of a new session (at ``now``): one more session.

    The mood is not decayed here: decay is memoryless, so ``update_state``,
    ``render_state`` and ``describe_state`` decaying to their own ``now`` give the
    same mood as decaying here first would.
    """
    _check_aware(now)
    rel = state.relationship
    return replace(
        state,
        relationship=replace(rel, sessions=rel.sessions + 1),
        updated_at=state.updated_at or now,
    )


def state_to_dict(state: PersonaState) -> dict[str, Any]:
    """JSON-safe form of a state (ISO 8601 times with their offset)."""
    rel = state.relationship
    return {
        "version": STATE_VERSION,
        "mood": {"valence": state.mood.valence, "arousal": state.mood.arousal},
        "relationship": {
            "turns": rel.turns,
            "sessions": rel.sessions,
            "first_seen": _iso(rel.first_seen),
            "last_seen": _iso(rel.last_seen),
        },
        "updated_at": _iso(state.updated_at),
    }


def state_from_dict(data: dict[str, Any]) -> PersonaState:
    """The state ``state_to_dict`` wrote. Missing parts take their defaults.

    Raises ``ValueError`` naming the field when a value has the wrong type; times
    without an offset are read as UTC, and moods are clamped to -1 .. +1.
    """
    mood = _section(data, "mood")
    rel = _section(data, "relationship")
    return PersonaState(
        mood=Mood(
            valence=_clamp(_number(mood, "valence", "mood.")),
            arousal=_clamp(_number(mood, "arousal", "mood.")),
        ),
        relationship=Relationship(
            turns=_count(rel, "turns"),
            sessions=_count(rel, "sessions"),
            first_seen=_time(rel.get("first_seen"), "relationship.first_seen"),
            last_seen=_time(rel.get("last_seen"), "relationship.last_seen"),
        ),
        updated_at=_time(data.get("updated_at"), "updated_at"),
    )


def _check_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be a timezone-aware datetime, got naive {now.isoformat()}")


def _toward(current: float, baseline: float, felt: float) -> float:
    """One axis of the mood after a message that felt like ``felt``."""
    target = (1.0 - EMPATHY) * baseline + EMPATHY * felt
    return _clamp(current + RESPONSIVENESS * abs(felt) * (target - current))


def _clamp(x: float) -> float:
    return max(-1.0, min(1.0, x))


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"persona state field {key!r} must be an object")
    return value


def _number(data: dict[str, Any], key: str, prefix: str) -> float:
    value = data.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValueError(f"persona state field {prefix + key!r} must be a number")
    return float(value)


def _count(data: dict[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"persona state field 'relationship.{key}' must be a count (int >= 0)")
    return value


def _time(value: object, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"persona state field {name!r} must be an ISO 8601 time")
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(
            f"persona state field {name!r} is not an ISO 8601 time: {value!r}"
        ) from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
