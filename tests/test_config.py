"""Config layers and the one-line errors for broken files."""

from __future__ import annotations

from pathlib import Path

import pytest

from companion.config import load_config
from companion.errors import ConfigError


def test_defaults_from_the_bundled_file() -> None:
    c = load_config()
    assert c.model and c.persona == "samantha" and c.user


def test_user_file_then_overrides(companion_home: Path) -> None:
    companion_home.mkdir(parents=True)
    (companion_home / "config.toml").write_text('temperature = 0.2\nuser = "theo"\n')
    c = load_config()
    assert c.temperature == 0.2 and c.user == "theo"
    assert load_config(user="maya").user == "maya"


def test_broken_toml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('model = "fake"\ntemperature = = 3\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and "line 2" in msg and "\n" not in msg


def test_unknown_key_and_wrong_type_are_located(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('model = "fake"\n\ntemprature = 0.5\n')
    with pytest.raises(ConfigError, match=r"line 3: unknown setting 'temprature'"):
        load_config(path)
    path.write_text('max_tokens = "many"\n')
    with pytest.raises(ConfigError, match="line 1: max_tokens must be int"):
        load_config(path)
    path.write_text("top_p = 3.0\n")
    with pytest.raises(ConfigError, match="top_p must be between"):
        load_config(path)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize("user", ["../../x", "", ".hidden", "a/b"])
def test_a_user_id_in_the_config_file_follows_the_command_lines_rule(
    tmp_path: Path, user: str
) -> None:
    (tmp_path / "config.toml").write_text(f'user = "{user}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="user") as err:
        load_config(home=tmp_path)
    assert "line 1" in str(err.value) or err.value.line == 1
