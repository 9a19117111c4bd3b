"""Persona text for the prompt: placeholders, the system text, examples, greetings."""

from __future__ import annotations

import pytest

from companion.persona import (
    DEFAULT_USER_NAME,
    Persona,
    examples,
    fill,
    greeting,
    load_persona,
    post_history_text,
    system_text,
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{char}} and {{user}}", "Sam and Theo"),
        ("{{Char}} / {{USER}} / {{ char }}", "Sam / Theo / Sam"),
        ("<BOT>: hi <USER>, <bot> <user>", "Sam: hi Theo, Sam Theo"),
        ("no placeholders", "no placeholders"),
        ("{{charm}} {char}", "{{charm}} {char}"),
    ],
)
def test_fill(template: str, expected: str) -> None:
    assert fill(template, char="Sam", user="Theo") == expected


def test_fill_is_one_pass() -> None:
    assert fill("{{user}}", char="X", user="{{char}}") == "{{char}}"


def test_system_text_of_bundled_persona() -> None:
    persona = load_persona()
    text = system_text(persona, "Theo")
    assert text.startswith("You are Samantha")
    assert "Theo" in text and "{{" not in text and "<USER>" not in text
    assert "Samantha's personality:" in text and "Scenario:" in text


def test_system_text_default_prompt_when_empty() -> None:
    persona = Persona(name="Ada", description="{{char}} is a poet.", personality="dreamy")
    text = system_text(persona, None)
    assert text.splitlines()[0].startswith(f"You are Ada, talking with {DEFAULT_USER_NAME}.")
    assert "Ada is a poet." in text and "Ada's personality: dreamy" in text
    assert "Scenario" not in text


def test_system_text_original_placeholder() -> None:
    persona = Persona(name="Ada", system_prompt="{{original}}\nAlways rhyme.")
    text = system_text(persona, "Bo")
    assert text.startswith("You are Ada, talking with Bo.") and "Always rhyme." in text


def test_examples_parse_blocks_and_speakers() -> None:
    persona = Persona(
        name="Ada",
        mes_example=(
            "ignored preamble\n"
            "<START>\n"
            "{{user}}: Hello\n"
            "{{char}}: Hi {{user}}.\n"
            "A second line.\n"
            "<start>\r\n"
            "<USER>: Again\r\n"
            "<BOT>: Yes\n"
            "Theo: by name\n"
            "Ada:by name too\n"
        ),
    )
    assert examples(persona, "Theo") == [
        ("user", "Hello"),
        ("assistant", "Hi Theo.\nA second line."),
        ("user", "Again"),
        ("assistant", "Yes"),
        ("user", "by name"),
        ("assistant", "by name too"),
    ]


def test_examples_of_bundled_persona() -> None:
    pairs = examples(load_persona(), None)
    assert len(pairs) >= 4
    assert pairs[0][0] == "user" and {role for role, _ in pairs} == {"user", "assistant"}
    assert all(text and "{{" not in text for _, text in pairs)


def test_examples_empty() -> None:
    assert examples(Persona(name="A"), "B") == []


def test_greeting_rotates_through_alternates() -> None:
    persona = Persona(name="Ada", first_mes="Hi {{user}}", alternate_greetings=("Yo", " "))
    assert greeting(persona, "Bo") == "Hi Bo"
    assert greeting(persona, "Bo", index=1) == "Yo"
    assert greeting(persona, "Bo", index=2) == "Hi Bo"
    assert greeting(Persona(name="A")) == ""


def test_post_history_text() -> None:
    persona = load_persona()
    assert post_history_text(persona, "Theo").startswith("Reply as Samantha")
    assert post_history_text(Persona(name="A")) == ""
