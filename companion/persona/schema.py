"""Validation: a plain mapping (from TOML or a card) to a ``Persona``, and back.

The layout is the one of a persona TOML file: the Character Card V2 fields at the
top level, and the companion's own ``[baseline]`` and ``[voice]`` tables. Every
problem is a ``PersonaError`` that names the file, the field and, when the caller
can find it, the line.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from companion.config import SAMPLING_KEYS, sampling_range
from companion.errors import PersonaError
from companion.persona.model import Persona, SpeechStyle
from companion.types import Mood

#: The Character Card V2 ``data`` fields a persona keeps, in the order the spec lists them.
CARD_FIELDS: tuple[str, ...] = (
    "name",
    "description",
    "personality",
    "scenario",
    "first_mes",
    "mes_example",
    "creator_notes",
    "system_prompt",
    "post_history_instructions",
    "alternate_greetings",
    "tags",
    "creator",
    "character_version",
)
LIST_FIELDS: tuple[str, ...] = ("alternate_greetings", "tags")
TEXT_FIELDS: tuple[str, ...] = tuple(f for f in CARD_FIELDS if f not in LIST_FIELDS)
TABLE_FIELDS: dict[str, tuple[str, ...]] = {
    "baseline": ("valence", "arousal"),
    "voice": ("voice", "rate", "volume"),
    "sampling": SAMPLING_KEYS,
}
KNOWN_FIELDS: frozenset[str] = frozenset(CARD_FIELDS + tuple(TABLE_FIELDS))

# Speech rate bounds (words per minute) that any TTS engine can honour.
MIN_RATE, MAX_RATE = 40, 600

Locate = Callable[[str], int | None]
Display = Callable[[str], str]


def _nowhere(_field: str) -> int | None:
    return None


def _same(field: str) -> str:
    return field


def type_name(value: object, *, table: str = "a table") -> str:
    """How a value's type reads in an error message ("a string", "an integer", ...)."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return table
    return f"a {type(value).__name__}"


class _Checker:
    """Reads typed fields out of a mapping, raising ``PersonaError`` with a location."""

    def __init__(
        self, path: Path | str | None, locate: Locate, table: str, display: Display
    ) -> None:
        self.path = path
        self.locate = locate
        self.table = table
        self.display = display

    def fail(self, field: str, problem: str) -> PersonaError:
        shown = self.display(field)
        return PersonaError(f"field {shown!r} {problem}", path=self.path, line=self.locate(field))

    def text(self, data: Mapping[str, object], key: str, prefix: str = "") -> str:
        value = data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.fail(prefix + key, f"must be a string, got {self._name(value)}")
        self.unicode(value, prefix + key)
        return value

    def unicode(self, value: str, field: str) -> None:
        """Refuse a lone surrogate (from a JSON ``\\ud800`` escape): no file can hold it."""
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise self.fail(field, f"is not valid Unicode (a lone surrogate at {exc.start})") \
                from exc

    def strings(self, data: Mapping[str, object], key: str) -> tuple[str, ...]:
        value = data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise self.fail(key, f"must be a list of strings, got {self._name(value)}")
        for i, item in enumerate(value, start=1):
            if not isinstance(item, str):
                raise self.fail(
                    key, f"must be a list of strings, but item {i} is {self._name(item)}"
                )
            self.unicode(item, key)
        return tuple(value)

    def number(
        self,
        data: Mapping[str, object],
        key: str,
        prefix: str,
        lo: float,
        hi: float,
        default: float,
    ) -> float:
        value = data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(prefix + key, f"must be a number, got {self._name(value)}")
        if not (math.isfinite(value) and lo <= value <= hi):
            raise self.fail(prefix + key, f"must be between {lo:g} and {hi:g}, got {value!r}")
        return float(value)

    def table_of(self, data: Mapping[str, object], key: str, prefix: str = "") -> Mapping[str, Any]:
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(prefix + key, f"must be {self.table}, got {self._name(value)}")
        return value

    def no_unknown(self, data: Mapping[str, object], known: frozenset[str], prefix: str) -> None:
        for key in data:
            if key not in known:
                hint = difflib.get_close_matches(key, sorted(known), n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                known_list = ", ".join(sorted(known))
                raise self.fail(prefix + key, f"is not a persona field{extra}; known: {known_list}")

    def _name(self, value: object) -> str:
        return type_name(value, table=self.table)


def persona_from_mapping(
    data: Mapping[str, Any],
    *,
    path: Path | str | None = None,
    locate: Locate = _nowhere,
    strict: bool = True,
    table: str = "a table",
    display: Display = _same,
) -> Persona:
    """Build a ``Persona`` from the TOML layout, checking every field.

    ``strict`` refuses unknown fields (a typo in a hand-written file should not pass
    silently); card import turns it off, since cards carry fields we do not use.
    ``locate`` maps a dotted field name to a line number; ``table`` is how a nested
    mapping is called in messages ("a table" for TOML, "an object" for JSON);
    ``display`` maps a dotted field name to the name shown in messages (a card
    keeps ``baseline`` under ``data.extensions.companion``).
    """
    check = _Checker(path, locate, table, display)
    if strict:
        check.no_unknown(data, KNOWN_FIELDS, "")
    if data.get("name") is None:
        raise PersonaError(f"missing required field {display('name')!r}", path=path)
    name = check.text(data, "name")
    if not name.strip():
        raise check.fail("name", "must not be empty")
    texts = {key: check.text(data, key) for key in TEXT_FIELDS if key != "name"}

    baseline = check.table_of(data, "baseline")
    voice = check.table_of(data, "voice")
    if strict:
        check.no_unknown(baseline, frozenset(TABLE_FIELDS["baseline"]), "baseline.")
        check.no_unknown(voice, frozenset(TABLE_FIELDS["voice"]), "voice.")
    tuning = check.table_of(data, "sampling")
    if strict:
        check.no_unknown(tuning, frozenset(TABLE_FIELDS["sampling"]), "sampling.")
    sampling = {
        key: check.number(tuning, key, "sampling.", *sampling_range(key), 0.0)
        for key in SAMPLING_KEYS
        if key in tuning
    }
    bp, vp = "baseline.", "voice."
    mood = Mood(
        valence=check.number(baseline, "valence", bp, -1.0, 1.0, 0.0),
        arousal=check.number(baseline, "arousal", bp, -1.0, 1.0, 0.0),
    )
    default_voice = SpeechStyle()
    sound = SpeechStyle(
        voice=check.text(voice, "voice", vp),
        rate=check.number(voice, "rate", vp, MIN_RATE, MAX_RATE, default_voice.rate),
        volume=check.number(voice, "volume", vp, 0.0, 1.0, default_voice.volume),
    )
    return Persona(
        name=name.strip(),
        alternate_greetings=check.strings(data, "alternate_greetings"),
        tags=check.strings(data, "tags"),
        baseline=mood,
        voice=sound,
        sampling=sampling,
        **texts,
    )


def persona_to_mapping(persona: Persona) -> dict[str, Any]:
    """The TOML layout of a persona (plain, JSON-safe data), fields in card order."""
    out: dict[str, Any] = {}
    for key in CARD_FIELDS:
        value = getattr(persona, key)
        out[key] = list(value) if key in LIST_FIELDS else value
    out["baseline"] = {
        "valence": persona.baseline.valence,
        "arousal": persona.baseline.arousal,
    }
    out["voice"] = {
        "voice": persona.voice.voice,
        "rate": _whole(persona.voice.rate),
        "volume": persona.voice.volume,
    }
    if persona.sampling:
        out["sampling"] = {k: _whole(v) for k, v in persona.sampling.items()}
    return out


def _whole(value: float) -> float:
    """``175.0`` as ``175``: a rate is usually a whole number of words a minute."""
    return int(value) if float(value).is_integer() else value
