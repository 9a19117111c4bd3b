"""Per-turn generation settings: ``Companion.say(text, temperature=0, stop=["\\n"])``.

A turn may override any field of :class:`~companion.types.GenerationParams`
but the dialog's own (:data:`INTERNAL`): :func:`check_overrides` validates the
keyword arguments once, before anything of the turn is stored, and
:func:`apply_overrides` puts them on the params the dialog built from the config.
``None`` leaves a setting as configured; ``stop`` strings are added to the
companion's own, which always hold. New fields of ``GenerationParams`` can be
overridden without a change here: a value is checked against the config's rule
for the setting of that name when there is one, else against the field's type.
"""

from __future__ import annotations

import types
import typing
from dataclasses import fields, replace
from typing import Any

from companion.config import Config
from companion.errors import ConfigError, InputError
from companion.types import GenerationParams

#: Fields the dialog sets itself, per turn: not for a caller to override.
INTERNAL = frozenset({"prefill", "echo_text", "hard_limit"})

_FIELDS = frozenset(f.name for f in fields(GenerationParams))
_CONFIG = frozenset(f.name for f in fields(Config))


def check_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides given (``None`` dropped, ``stop`` as a tuple), validated.

    Raises :class:`TypeError` for a name that is not an overridable field (as a
    call with an unknown keyword does) and :class:`InputError` for a bad value.
    """
    unknown = sorted(set(overrides) - (_FIELDS - INTERNAL))
    if unknown:
        allowed = ", ".join(sorted(_FIELDS - INTERNAL))
        raise TypeError(f"unknown generation setting(s) {', '.join(unknown)} (known: {allowed})")
    given = {k: v for k, v in overrides.items() if v is not None}
    if "stop" in given:
        given["stop"] = _stops(given["stop"])
    hints = typing.get_type_hints(GenerationParams)
    for name, value in given.items():
        if name == "stop":
            continue
        if name in _CONFIG:
            try:
                Config().with_overrides(**{name: value})
            except ConfigError as exc:
                raise InputError(str(exc)) from exc
        elif not _fits(value, hints[name]):
            want = " or ".join(getattr(t, "__name__", str(t)) for t in _options(hints[name]))
            raise InputError(f"{name} must be {want}, not {type(value).__name__}")
        if float in _options(hints[name]) and isinstance(value, int):
            given[name] = float(value)
    return given


def apply_overrides(params: GenerationParams, overrides: dict[str, Any]) -> GenerationParams:
    """``params`` with checked ``overrides`` (see :func:`check_overrides`) on top."""
    if not overrides:
        return params
    extra: tuple[str, ...] = overrides.get("stop", ())
    stop = tuple(dict.fromkeys(params.stop + extra))
    # A max_tokens asked for is a limit: no running on to finish a sentence.
    hard = params.hard_limit or overrides.get("max_tokens") is not None
    return replace(params, **{**overrides, "stop": stop, "hard_limit": hard})


def _stops(value: Any) -> tuple[str, ...]:
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list | tuple) or not all(isinstance(s, str) for s in stops):
        raise InputError("stop must be a string or a list of strings")
    return tuple(s for s in stops if s)


def _options(hint: Any) -> tuple[Any, ...]:
    """The types a field's annotation allows: ``int | None`` -> ``(int, NoneType)``."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    return typing.get_args(hint) if union else (hint,)


def _fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` has the field's type (an int is a float; a bool is not a number)."""
    for option in _options(hint):
        if option is float and isinstance(value, int | float) and not isinstance(value, bool):
            return True
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if option in (str, bool) and type(value) is option:
            return True
    return False

