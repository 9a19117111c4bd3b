"""Sampling settings of a reply: bundled config < persona ``[sampling]`` < the user's."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from companion import FakeLLM
from companion.config import SAMPLING_KEYS, Config, load_config
from companion.errors import ConfigError, PersonaError
from companion.persona import load_persona
from companion.testing import open_test_companion
from companion.turnparams import RETRY_STRENGTH, generation_params, sampling_settings

PERSONA = """\
name = "Juno"
system_prompt = "You are Juno, talking with {{user}}."

[sampling]
temperature = 0.35
repetition_penalty = 1.2
dry_multiplier = 0.9
dry_allowed_length = 3
max_sentences = 2
"""


def write_persona(home: Path, text: str = PERSONA, name: str = "juno") -> Path:
    path = home / "personas" / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_persona_sampling_beats_the_bundled_defaults(companion_home: Path) -> None:
    config = load_config(home=companion_home)
    persona = load_persona(write_persona(companion_home))
    s = sampling_settings(config, persona.sampling)
    assert s["temperature"] == 0.35 and s["repetition_penalty"] == 1.2
    assert s["max_sentences"] == 2 and isinstance(s["max_sentences"], int)
    assert s["dry_allowed_length"] == 3 and isinstance(s["dry_allowed_length"], int)
    assert s["top_p"] == config.top_p  # what the persona does not set stays
    assert set(s) == set(SAMPLING_KEYS)


def test_the_users_config_file_beats_the_persona(companion_home: Path) -> None:
    companion_home.mkdir(parents=True, exist_ok=True)
    (companion_home / "config.toml").write_text("temperature = 0.9\n", encoding="utf-8")
    config = load_config(home=companion_home)
    assert "temperature" in config.explicit
    s = sampling_settings(config, {"temperature": 0.35, "max_sentences": 2})
    assert s["temperature"] == 0.9 and s["max_sentences"] == 2


def test_the_users_file_beats_the_persona_even_when_it_repeats_the_default(
    companion_home: Path,
) -> None:
    default = Config().temperature
    companion_home.mkdir(parents=True, exist_ok=True)
    (companion_home / "config.toml").write_text(f"temperature = {default}\n", encoding="utf-8")
    s = sampling_settings(load_config(home=companion_home), {"temperature": 0.35})
    assert s["temperature"] == default


def test_an_override_beats_the_persona(companion_home: Path) -> None:
    config = load_config(home=companion_home).with_overrides(max_sentences=5)
    s = sampling_settings(config, {"temperature": 0.35, "max_sentences": 2})
    assert s["max_sentences"] == 5 and s["temperature"] == 0.35


def test_the_dialog_samples_with_the_layers(companion_home: Path) -> None:
    write_persona(companion_home)
    companion_home.mkdir(parents=True, exist_ok=True)
    (companion_home / "config.toml").write_text("repetition_penalty = 1.05\n", encoding="utf-8")
    llm = FakeLLM(["Hi."])
    with open_test_companion(
        companion_home, llm=llm, user="theo", persona="juno", dry_multiplier=0.2
    ) as c:
        c.say("hello there").text()
    params = llm.params[0]
    assert params.temperature == 0.35  # the persona
    assert params.max_sentences == 2  # the persona
    assert params.repetition_penalty == 1.05  # the user's file
    assert params.dry_multiplier == 0.2  # the override
    assert params.top_p == Config().top_p  # the bundled default


def test_the_default_persona_asks_for_three_sentences(companion_home: Path) -> None:
    llm = FakeLLM(["Hi."])
    with open_test_companion(companion_home, llm=llm, user="theo") as c:
        assert c.persona.sampling == {"max_sentences": 3}
        c.say("hello there").text()
    assert llm.params[0].max_sentences == 3


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ('temperature = "hot"', ["sampling.temperature", "must be a number", "line 5"]),
        ("temperature = 9", ["sampling.temperature", "between 0 and 5", "line 5"]),
        ("min_p = -0.5", ["sampling.min_p", "between 0 and 1"]),
        ("temprature = 0.5", ["sampling.temprature", "did you mean 'temperature'"]),
        ("temperature = true", ["sampling.temperature", "must be a number"]),
    ],
)
def test_a_bad_sampling_value_is_one_line(
    companion_home: Path, table: str, words: list[str]
) -> None:
    text = f'name = "Juno"\nsystem_prompt = "You are Juno."\n\n[sampling]\n{table}\n'
    with pytest.raises(PersonaError) as err:
        load_persona(write_persona(companion_home, text))
    message = str(err.value)
    assert "\n" not in message and "juno.toml" in message
    for word in words:
        assert word in message


def test_a_sampling_value_that_is_not_a_table(companion_home: Path) -> None:
    text = 'name = "Juno"\nsampling = 0.5\n'
    with pytest.raises(PersonaError, match="sampling"):
        load_persona(write_persona(companion_home, text))


def test_a_bad_sampling_value_in_the_users_config_is_a_config_error(
    companion_home: Path,
) -> None:
    companion_home.mkdir(parents=True, exist_ok=True)
    (companion_home / "config.toml").write_text("dry_multiplier = 50\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="dry_multiplier must be between"):
        load_config(home=companion_home)


# -- the guard's retries ---------------------------------------------------------


def test_retries_get_another_seed_and_stronger_penalties() -> None:
    config = Config(seed=11, repetition_penalty=1.1, echo_penalty=0.5)
    p0, p1, p2 = (generation_params(config, {}, echo="hi", attempt=n) for n in range(3))
    assert p0.seed == 11 and p0.repetition_penalty == 1.1 and p0.echo_penalty == 0.5
    assert len({p0.seed, p1.seed, p2.seed}) == 3
    assert p0.repetition_penalty < p1.repetition_penalty < p2.repetition_penalty
    assert p0.dry_multiplier < p1.dry_multiplier < p2.dry_multiplier
    assert p0.echo_penalty < p1.echo_penalty < p2.echo_penalty
    assert p1.echo_penalty == pytest.approx(1.0 * RETRY_STRENGTH)
    assert p2.temperature >= p1.temperature >= p0.temperature
    assert p0.echo_text == p2.echo_text == "hi"
    # what the guard does not touch stays as set
    assert p2.top_p == p0.top_p and p2.max_tokens == p0.max_tokens


def test_a_retry_without_a_seed_stays_unseeded() -> None:
    p = generation_params(Config(seed=None), {}, attempt=2)
    assert p.seed is None


def test_a_retry_keeps_a_greedy_setting_from_repeating_itself() -> None:
    # temperature 0 would give the same bad start again: a retry samples
    p = generation_params(replace(Config(), temperature=0.0), {}, attempt=1)
    assert p.temperature > 0
