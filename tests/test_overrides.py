"""Per-turn settings: ``say(text, **overrides)`` changes that reply only, checks
its settings before anything is stored, and works for every GenerationParams field."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from companion.errors import InputError
from companion.llm.fake import FakeLLM
from companion.overrides import INTERNAL, apply_overrides, check_overrides
from companion.testing import open_test_companion
from companion.types import GenerationParams


def test_say_overrides_one_reply_and_keeps_her_stops(companion_home: Path) -> None:
    llm = FakeLLM(["alpha beta STOP gamma", "a b c d e f g h", "hello"])
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        configured = c.config
        reply = c.say("go", temperature=0, top_p=0.5, seed=7, max_tokens=40, stop=["STOP"])
        assert reply.text().strip() == "alpha beta"
        params = llm.params[-1]
        assert (params.temperature, params.top_p, params.seed, params.max_tokens) == (
            0.0, 0.5, 7, 40,
        )
        assert params.stop[-1] == "STOP" and "\nUser:" in params.stop  # hers hold too
        c.say("go on", max_tokens=3, temperature=None).text()  # None: as configured
        assert llm.params[-1].max_tokens == 3 and llm.params[-1].temperature == 0.7
        c.say("more").text()
        back = llm.params[-1]
        assert (back.temperature, back.max_tokens, back.seed) == (0.7, 200, None)
        assert "STOP" not in back.stop
        assert c.config == configured  # nothing was written to the companion


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"colour": "red"}, TypeError),
        ({"prefill": "Sure"}, TypeError),  # the dialog's own
        ({"temperature": "hot"}, InputError),
        ({"temperature": 9.0}, InputError),
        ({"max_tokens": 0}, InputError),
        ({"max_tokens": True}, InputError),
        ({"seed": 1.5}, InputError),
        ({"stop": 3}, InputError),
        ({"stop": ["ok", 4]}, InputError),
    ],
)
def test_a_bad_setting_is_refused_before_anything_is_stored(
    companion_home: Path, overrides: dict[str, Any], error: type[Exception]
) -> None:
    llm = FakeLLM()
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        with pytest.raises(error):
            c.say("My sister is called Maya.", **overrides)
        assert c.history() == [] and c.memories() == [] and llm.calls == []


def test_max_tokens_leaves_room_in_the_window(companion_home: Path) -> None:
    llm = FakeLLM()
    llm.context_length = 1024
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        for n in range(30):
            c.say(f"Here is a long message number {n}, " + "with many words in it " * 8).text()
        c.say("and now?").text()
        roomy = sum(llm.count_tokens(m.content) for m in llm.calls[-1])
        c.say("and now?", max_tokens=600).text()
        tight = sum(llm.count_tokens(m.content) for m in llm.calls[-1])
    assert tight < roomy and tight <= 1024 - 600


def _value(name: str, default: Any) -> Any:
    if isinstance(default, bool):
        return not default
    if isinstance(default, float):
        return round(default * 1.1, 3) if default else 0.5  # within every setting's range
    if isinstance(default, int):
        return default + 1
    if name == "seed":
        return 11
    if name == "stop":
        return ("END",)
    return default


@pytest.mark.parametrize(
    "name", sorted(f.name for f in fields(GenerationParams) if f.name not in INTERNAL)
)
def test_every_generation_field_can_be_overridden(name: str) -> None:
    base = GenerationParams(stop=("\nUser:",))
    value = _value(name, getattr(base, name))
    params = apply_overrides(base, check_overrides({name: value}))
    if name == "stop":
        assert params.stop == ("\nUser:", "END")
    else:
        assert getattr(params, name) == value
        assert params.stop == base.stop
