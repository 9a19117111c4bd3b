"""The state in words: a short block for the prompt, and a report for ``/mood``.

The prompt block is second person and concrete, so that even a small model
changes its wording with the mood: a feeling, a style instruction that follows
from it, and how well the companion knows the user. Both functions decay the mood
to ``now`` first, so a state read after a long silence shows the settled mood.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from companion.persona.model import Persona
from companion.persona.state import decay
from companion.timefmt import ago, span
from companion.types import Mood, PersonaState

# A silence shorter than this is the same conversation going on.
CONVERSATION_GAP = timedelta(minutes=20)

# Valence bands (upper bounds, exclusive) and arousal bands, low to high.
_VALENCE_BANDS = (
    (-0.5, "very unpleasant"),
    (-0.15, "unpleasant"),
    (0.15, "neutral"),
    (0.55, "pleasant"),
    (float("inf"), "very pleasant"),
)
_AROUSAL_BANDS = ((-0.35, "calm"), (0.35, "steady"), (float("inf"), "lively"))

# (valence band, arousal band) -> (how you feel, how to speak)
_GENTLE = "Be softer and gentler: use fewer words, speak slowly, and leave out the jokes."
FEELINGS: dict[tuple[int, int], tuple[str, str]] = {
    (4, 2): (
        "bright and playful",
        "Let it show: be lively and quick, laugh easily; an exclamation mark is welcome.",
    ),
    (4, 1): ("happy and warm", "Let it show: be warm and light, and tease a little."),
    (4, 0): ("content and peaceful", "Speak in an easy, unhurried way, warmly."),
    (3, 2): ("curious and lively", "Be lively and curious; follow what interests you."),
    (3, 1): ("warm and cheerful", "Be warm and natural; a little teasing is welcome."),
    (3, 0): ("calm and content", "Speak in an easy, unhurried way."),
    (2, 2): ("alert and restless", "Be quick and direct; keep it short."),
    (2, 1): ("calm and attentive", "Speak plainly and listen closely."),
    (2, 0): ("quiet and thoughtful", "Speak slowly and simply; short sentences are fine."),
    (1, 2): ("uneasy and tense", "Stay steady: short, clear sentences, no jokes."),
    (1, 1): ("a little down", _GENTLE),
    (1, 0): ("low and a little sad", _GENTLE),
    (0, 2): (
        "upset and worried",
        "Stay steady and soft: short, clear sentences; no jokes, no exclamations.",
    ),
    (0, 1): ("sad and heavy-hearted", "Be very gentle: few words, soft and slow."),
    (0, 0): ("sad and tired", "Be very gentle: few words, soft and slow."),
}


def mood_words(mood: Mood) -> str:
    """How a mood feels, in a few words: ``"bright and playful"``."""
    return FEELINGS[_bands(mood)][0]


def mood_style(mood: Mood) -> str:
    """The speaking style a mood asks for, as an instruction."""
    return FEELINGS[_bands(mood)][1]


def render_state(
    state: PersonaState,
    persona: Persona,
    *,
    now: datetime,
    user_name: str | None,
    last_talked: datetime | None = None,
) -> str:
    """Three lines for the system prompt: the feeling, the style it asks for, the relationship.

    ``last_talked`` is when the companion last heard from the user before this
    conversation; it defaults to ``state.relationship.last_seen``. A caller that
    runs ``update_state`` before rendering sets ``last_seen`` to now, so it passes
    the ``last_seen`` from before the update to have the gap mentioned.
    """
    mood = decay(state, persona, now).mood
    lines = [f"You feel {mood_words(mood)} right now.", mood_style(mood)]
    lines.append(_relationship_line(state, now, user_name, last_talked))
    return "\n".join(lines)


def describe_state(state: PersonaState, persona: Persona, *, now: datetime) -> str:
    """A report of the state for the ``/mood`` command: numbers, words and figures."""
    mood = decay(state, persona, now).mood
    base = persona.baseline
    vi, ai = _bands(mood)
    rel = state.relationship
    lines = [
        f"{persona.name} feels {mood_words(mood)}.",
        f"  valence {mood.valence:+.2f} ({_VALENCE_BANDS[vi][1]}), baseline {base.valence:+.2f}",
        f"  arousal {mood.arousal:+.2f} ({_AROUSAL_BANDS[ai][1]}), baseline {base.arousal:+.2f}",
    ]
    if rel.first_seen is None:
        lines.append("  not met yet")
    else:
        lines.append(
            f"  known for {_span(now - rel.first_seen)}: {_plural(rel.turns, 'message')}"
            f" in {_plural(rel.sessions, 'session')}"
        )
    if rel.last_seen is not None:
        lines.append(f"  last talked {ago(rel.last_seen, now)}")
    return "\n".join(lines)


def _relationship_line(
    state: PersonaState, now: datetime, user_name: str | None, last_talked: datetime | None
) -> str:
    rel = state.relationship
    who = user_name.strip() if user_name and user_name.strip() else "them"
    if rel.first_seen is None or now - rel.first_seen < CONVERSATION_GAP:
        return f"This is the first time you are talking with {who}."
    known = now - rel.first_seen
    if known < timedelta(hours=22):
        line = f"You met {who} {_span(known)} ago and have talked {_times(rel.turns)}"
    else:
        line = f"You have known {who} for {_span(known)} and talked {_times(rel.turns)}"
    last = last_talked if last_talked is not None else rel.last_seen
    if last is not None and now - last >= CONVERSATION_GAP:
        line += f"; you last talked {_span(now - last)} ago"
    return line + "."


def _span(length: timedelta) -> str:
    return span(length.total_seconds())


def _bands(mood: Mood) -> tuple[int, int]:
    # NaN falls in no band: read it as neutral rather than fail.
    vi = next((i for i, (hi, _) in enumerate(_VALENCE_BANDS) if mood.valence < hi), 2)
    ai = next((i for i, (hi, _) in enumerate(_AROUSAL_BANDS) if mood.arousal < hi), 1)
    return vi, ai


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
