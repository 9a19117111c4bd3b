"""Loading personas: the bundled default, the user's own, and the errors people hit."""

from __future__ import annotations

from pathlib import Path

import pytest

from companion.errors import ConfigError, PersonaError
from companion.persona import (
    DEFAULT_PERSONA,
    Persona,
    list_personas,
    load_persona,
    parse_persona_toml,
    persona_to_toml,
)
from companion.persona.loader import find_key_line

MINIMAL = 'name = "Ada"\n'


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> PersonaError:
    with pytest.raises(PersonaError) as info:
        load_persona(path)
    assert "\n" not in str(info.value), "an error message is one line"
    return info.value


# -- the bundled persona -------------------------------------------------------


def test_default_persona_is_samantha() -> None:
    persona = load_persona()
    assert DEFAULT_PERSONA == "samantha"
    assert persona == load_persona("samantha")
    assert persona.name == "Samantha"


def test_bundled_persona_fills_every_field() -> None:
    persona = load_persona()
    for field in (
        "description",
        "personality",
        "scenario",
        "first_mes",
        "mes_example",
        "system_prompt",
        "post_history_instructions",
        "creator",
        "character_version",
        "creator_notes",
    ):
        assert getattr(persona, field).strip(), f"{field} is empty"
    assert persona.alternate_greetings and persona.tags
    assert -1 <= persona.baseline.valence <= 1 and -1 <= persona.baseline.arousal <= 1
    assert persona.baseline.valence > 0, "Samantha rests in a pleasant mood"
    assert 40 <= persona.voice.rate <= 600 and 0 <= persona.voice.volume <= 1


def test_bundled_system_prompt_suits_small_models() -> None:
    prompt = load_persona().system_prompt
    assert prompt.startswith("You are {{char}}")
    assert "{{user}}" in prompt
    assert len(prompt.split()) < 150, "a small model needs a short system prompt"
    assert "<START>" in load_persona().mes_example


def test_bundled_persona_is_listed() -> None:
    assert "samantha" in list_personas()


# -- the user's personas -------------------------------------------------------


def test_user_persona_by_name_and_listing(tmp_path: Path) -> None:
    write(tmp_path / "personas", "ada.toml", MINIMAL)
    write(tmp_path / "personas", ".hidden.toml", MINIMAL)
    write(tmp_path / "personas", "notes.txt", "not a persona")
    dirs = [tmp_path / "personas"]
    assert load_persona("ada", user_dirs=dirs).name == "Ada"
    assert load_persona("ADA", user_dirs=dirs).name == "Ada"
    assert list_personas(dirs) == ["ada", "samantha"]


def test_user_persona_shadows_bundled_one(tmp_path: Path) -> None:
    write(tmp_path, "samantha.toml", 'name = "My Samantha"\n')
    assert load_persona("samantha", user_dirs=[tmp_path]).name == "My Samantha"
    assert list_personas([tmp_path]).count("samantha") == 1


def test_missing_user_dir_is_not_an_error(tmp_path: Path) -> None:
    assert list_personas([tmp_path / "nowhere"]) == ["samantha"]
    assert load_persona(None, user_dirs=[tmp_path / "nowhere"]).name == "Samantha"


def test_load_by_path(tmp_path: Path) -> None:
    path = write(tmp_path, "ada.toml", MINIMAL)
    assert load_persona(path) == Persona(name="Ada")
    assert load_persona(str(path)).name == "Ada"


def test_unknown_name_lists_available(tmp_path: Path) -> None:
    write(tmp_path, "ada.toml", MINIMAL)
    with pytest.raises(PersonaError, match=r"unknown persona 'nobody'; available: ada, samantha"):
        load_persona("nobody", user_dirs=[tmp_path])


def test_missing_file_and_unsupported_type(tmp_path: Path) -> None:
    with pytest.raises(PersonaError, match="not found"):
        load_persona(tmp_path / "gone.toml")
    with pytest.raises(PersonaError, match=r"unsupported persona file type '\.yaml'"):
        load_persona(tmp_path / "ada.yaml")


# -- errors in the file ----------------------------------------------------------


def test_broken_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.toml", 'name = "Ada"\ndescription = "unclosed\ntags = []\n')
    err = error_of(path)
    assert str(err).startswith(f"{path}, line 2: invalid TOML")
    assert err.path == path and err.line == 2
    assert isinstance(err, ConfigError)
    assert isinstance(err.__cause__, Exception)  # tomllib's error is kept as the cause


def test_toml_error_at_end_of_file(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.toml", 'name = "Ada"\nname = "Bea"')
    err = error_of(path)
    assert err.line == 2 and "invalid TOML at end of file" in str(err)


def test_missing_name(tmp_path: Path) -> None:
    path = write(tmp_path, "nameless.toml", 'description = "who am I"\n')
    assert str(error_of(path)) == f"{path}: missing required field 'name'"


def test_empty_name(tmp_path: Path) -> None:
    path = write(tmp_path, "blank.toml", 'name = "  "\n')
    assert "field 'name' must not be empty" in str(error_of(path))


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            'name = "A"\n\ntags = "warm"\n',
            3,
            "field 'tags' must be a list of strings, got a string",
        ),
        ('name = "A"\ntags = ["warm", 3]\n', 2, "item 2 is an integer"),
        ("name = 42\n", 1, "field 'name' must be a string, got an integer"),
        (
            'name = "A"\n[baseline]\nvalence = 1.5\n',
            3,
            "'baseline.valence' must be between -1 and 1",
        ),
        ('name = "A"\n[baseline]\narousal = "high"\n', 3, "'baseline.arousal' must be a number"),
        ('name = "A"\n[baseline]\nvalence = true\n', 3, "must be a number, got a boolean"),
        ('name = "A"\nbaseline.valence = -2\n', 2, "'baseline.valence' must be between"),
        ('name = "A"\nbaseline = 0.5\n', 2, "field 'baseline' must be a table, got a number"),
        ('name = "A"\n[voice]\nrate = "fast"\n', 3, "'voice.rate' must be a number, got a string"),
        ('name = "A"\n[voice]\nrate = 5\n', 3, "'voice.rate' must be between 40 and 600"),
        ('name = "A"\n[voice]\nvolume = 2\n', 3, "'voice.volume' must be between 0 and 1"),
        ('name = "A"\npersonalty = "x"\n', 2, "'personalty' is not a persona field (did you mean"),
        ('name = "A"\n[voice]\nspeed = 200\n', 3, "'voice.speed' is not a persona field"),
    ],
)
def test_bad_field_names_file_field_and_line(
    tmp_path: Path, body: str, line: int, message: str
) -> None:
    path = write(tmp_path, "bad.toml", body)
    err = error_of(path)
    assert message in str(err)
    assert err.line == line
    assert str(err).startswith(f"{path}, line {line}: ")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes(b'name = "Ada"\ndescription = "caf\xe9"\n')
    err = error_of(path)
    assert err.line == 2 and "not UTF-8" in str(err)


def test_int_baseline_is_accepted() -> None:
    persona = parse_persona_toml('name = "A"\n[baseline]\nvalence = 1\narousal = -1\n')
    assert (persona.baseline.valence, persona.baseline.arousal) == (1.0, -1.0)


def test_find_key_line_skips_multiline_strings() -> None:
    text = 'description = """\nname = "inside"\n"""\nname = "Ada"\n[voice]\nrate = 1\n'
    assert find_key_line(text, "name") == 4
    assert find_key_line(text, "voice.rate") == 6
    assert find_key_line(text, "voice.volume") == 5  # falls back to the table header
    assert find_key_line(text, "tags") is None


def test_bundled_persona_survives_toml_round_trip() -> None:
    persona = load_persona()
    assert parse_persona_toml(persona_to_toml(persona)) == persona
