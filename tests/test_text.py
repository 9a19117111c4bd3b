"""Input cleaning: control characters and escape sequences never pass."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from companion.errors import InputError
from companion.text import MAX_ID, MAX_MESSAGE_CHARS, clean_message, parse_id, safe, strip_controls


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


def test_safe_is_the_print_filter() -> None:
    assert safe("\u001b]0;pwned\u0007\u001b[31mEvil") == "Evil"
    assert safe("a\u202eb\u2066c") == "abc"  # no bidirectional reordering
    assert safe("lone \ud800 surrogate") == "lone ? surrogate"  # printable, encodable
    assert safe("two\nlines\tand tab") == "two\nlines\tand tab"
    assert safe("two\r\nlines\tand tab", one_line=True) == "two lines and tab"
    assert safe(12) == "12"


@given(st.text(), st.booleans())
def test_safe_output_is_always_printable(text: str, one_line: bool) -> None:
    out = safe(text, one_line=one_line)
    out.encode("utf-8")
    assert not any(ord(ch) < 32 and ch not in "\n\t" or 0x7F <= ord(ch) <= 0x9F for ch in out)
    assert not one_line or ("\n" not in out and "\t" not in out)


def test_parse_id_takes_ascii_digits_in_range() -> None:
    assert parse_id("12") == 12 and parse_id(" 7 ") == 7 and parse_id(str(MAX_ID)) == MAX_ID
    for words in ("²", "١٢", "jazz", "", "-3", "1.5", "s3"):
        assert parse_id(words) is None
    for huge in (str(MAX_ID + 1), "9" * 23, "9" * 10_000):
        with pytest.raises(InputError, match="too large"):
            parse_id(huge)
