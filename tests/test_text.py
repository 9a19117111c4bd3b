"""Input cleaning: control characters and escape sequences never pass."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from companion.errors import InputError
from companion.text import MAX_MESSAGE_CHARS, clean_message, strip_controls


@pytest.mark.parametrize("text", ["", "   ", "\n\t \n", "\x1b[2J", "\x00\x07", "\x1b]0;title\x07"])
def test_empty_after_cleaning_is_refused(text: str) -> None:
    with pytest.raises(InputError, match="empty"):
        clean_message(text)


def test_escape_sequences_are_removed() -> None:
    assert clean_message("hi \x1b[31mred\x1b[0m there") == "hi red there"
    assert clean_message("\x1b]0;evil title\x07hello") == "hello"
    assert clean_message("a\x08b\x7fc") == "abc"
    assert clean_message("line1\r\nline2\ttab") == "line1\nline2\ttab"


def test_unicode_is_kept() -> None:
    assert clean_message("  Ça va? 😊 日本語 ") == "Ça va? 😊 日本語"


def test_too_long_is_refused_with_the_sizes() -> None:
    with pytest.raises(InputError, match="too long"):
        clean_message("x" * (MAX_MESSAGE_CHARS + 1))


@given(st.text())
def test_no_control_character_survives(text: str) -> None:
    out = strip_controls(text)
    assert not any(ord(ch) < 32 and ch not in "\n\t" for ch in out)
    assert "\x1b" not in out and "\x7f" not in out
