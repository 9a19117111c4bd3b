"""The sampling settings of one reply, from the config, the persona and the turn.

Layers, later wins: the bundled config defaults, the persona's ``[sampling]``
table, then what the user set (their config file, command-line options,
keyword arguments). A reply the guard sends back (``attempt`` 1, 2) gets
another seed and stronger penalties against repeating and echoing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from companion.config import SAMPLING_KEYS, Config
from companion.prompt import PromptTemplates
from companion.types import GenerationParams

#: How much stronger the penalties get with each guard retry.
RETRY_STRENGTH = 1.6


def sampling_settings(config: Config, persona: Mapping[str, float]) -> dict[str, Any]:
    """The sampling settings in force: the persona's where the user set none."""
    values = {key: getattr(config, key) for key in SAMPLING_KEYS}
    for key, value in persona.items():
        if key in values and key not in config.explicit:
            values[key] = type(values[key])(value)
    return values


def generation_params(
    config: Config,
    persona: Mapping[str, float],
    *,
    stop: tuple[str, ...] = (),
    prefill: str = "",
    echo: str = "",
    attempt: int = 0,
) -> GenerationParams:
    """The :class:`GenerationParams` of one reply (``attempt`` > 0: a guard retry)."""
    s = sampling_settings(config, persona)
    params = GenerationParams(
        max_tokens=config.max_tokens,
        temperature=s["temperature"],
        top_p=s["top_p"],
        seed=config.seed,
        stop=stop,
        prefill=prefill,
        min_p=s["min_p"],
        repetition_penalty=s["repetition_penalty"],
        frequency_penalty=s["frequency_penalty"],
        presence_penalty=s["presence_penalty"],
        dry_multiplier=s["dry_multiplier"],
        dry_base=s["dry_base"],
        dry_allowed_length=s["dry_allowed_length"],
        echo_penalty=s["echo_penalty"],
        echo_text=echo,
        max_sentences=s["max_sentences"],
    )
    if attempt <= 0:
        return params
    k = RETRY_STRENGTH ** min(attempt, 2)  # stronger, but not without bound
    return replace(
        params,
        seed=None if params.seed is None else params.seed + 7919 * attempt,
        temperature=max(params.temperature, 0.5 + 0.15 * min(attempt, 2)),
        repetition_penalty=1.0 + (max(params.repetition_penalty, 1.05) - 1.0) * k,
        dry_multiplier=max(params.dry_multiplier, 0.8) * k,
        echo_penalty=max(params.echo_penalty, 1.0) * k,
    )


def reply_stops(
    templates: PromptTemplates, names: tuple[str, ...], *, in_sentences: bool
) -> tuple[str, ...]:
    """Where a reply ends before the model writes someone else's line: a new
    line starting with the user's ``names`` or "User:"; the start of her private
    note, or a line that starts like one of its lines, or a list (a small model
    sometimes copies its note); and, for a persona that speaks in a few
    sentences (``in_sentences``), any new line."""
    leaks = (templates.context_header, templates.memories.split("{facts}")[0].strip())
    starts = tuple(f"\n{' '.join(s.split()[:3])}" for s in leaks if s)
    speakers = tuple(f"\n{n}:" for n in names if n)
    stops = (*speakers, "\nUser:", "\nuser:", *(s for s in leaks if s), *starts, "\n- ")
    return tuple(dict.fromkeys(stops + (("\n",) if in_sentences else ())))
