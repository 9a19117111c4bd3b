"""Character cards in and out: CCv2/V1 JSON, PNG cards, and TOML written back."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from companion.errors import PersonaError
from companion.persona import (
    Persona,
    SpeechStyle,
    card_to_png,
    export_card,
    import_card,
    load_persona,
    parse_persona_toml,
    persona_from_card,
    persona_slug,
    persona_to_toml,
    save_persona_toml,
)
from companion.types import Mood

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CCV2: dict[str, Any] = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "Juniper",
        "description": "{{char}} is a night-owl astronomer.",
        "personality": "calm, dry, kind",
        "scenario": "A rooftop at night.",
        "first_mes": "Look up, {{user}}.",
        "mes_example": "<START>\n{{user}}: Hi\n{{char}}: Hello.",
        "creator_notes": "test card",
        "system_prompt": "You are {{char}}.",
        "post_history_instructions": "Stay brief.",
        "alternate_greetings": ["Evening."],
        "tags": ["space"],
        "creator": "someone",
        "character_version": "2",
        "character_book": {"entries": []},
        "extensions": {"talkativeness": "0.5"},
    },
}


def chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def tiny_png(*extra: bytes) -> bytes:
    """A 1x1 grey PNG with ``extra`` chunks before IEND, built by hand."""
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00\x80")
    return (
        PNG_SIGNATURE
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", idat)
        + b"".join(extra)
        + chunk(b"IEND", b"")
    )


def b64(card: dict[str, Any]) -> bytes:
    return base64.b64encode(json.dumps(card).encode("utf-8"))


def write_json(tmp_path: Path, card: object, name: str = "card.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(card), encoding="utf-8")
    return path


def card_error(path: Path) -> str:
    with pytest.raises(PersonaError) as info:
        import_card(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


# -- JSON cards -------------------------------------------------------------------


def test_import_ccv2(tmp_path: Path) -> None:
    persona = import_card(write_json(tmp_path, CCV2))
    assert persona.name == "Juniper"
    assert persona.first_mes == "Look up, {{user}}."
    assert persona.alternate_greetings == ("Evening.",)
    assert persona.tags == ("space",)
    assert persona.baseline == Mood() and persona.voice == SpeechStyle()


def test_ccv2_round_trip_keeps_companion_extension() -> None:
    persona = Persona(
        name="Juniper",
        description="d",
        tags=("a", "b"),
        baseline=Mood(0.25, -0.5),
        voice=SpeechStyle("english+f3", 150, 0.5),
    )
    card = export_card(persona)
    assert card["spec"] == "chara_card_v2" and card["spec_version"] == "2.0"
    assert card["data"]["extensions"]["companion"]["baseline"] == {"valence": 0.25, "arousal": -0.5}
    assert json.loads(json.dumps(card)) == card  # JSON-ready
    assert persona_from_card(card) == persona


def test_toml_card_toml_round_trip(tmp_path: Path) -> None:
    original = load_persona()
    text = persona_to_toml(original)
    path = write_json(tmp_path, export_card(parse_persona_toml(text)))
    assert persona_to_toml(import_card(path)) == text
    assert import_card(path) == original


def test_import_v1_flat_card(tmp_path: Path) -> None:
    v1 = {
        "name": "Old",
        "description": "d",
        "personality": "p",
        "scenario": "s",
        "first_mes": "hi",
        "mes_example": "",
    }
    persona = import_card(write_json(tmp_path, v1))
    assert (persona.name, persona.personality, persona.first_mes) == ("Old", "p", "hi")


def test_import_tavernai_names(tmp_path: Path) -> None:
    old = {
        "char_name": "Pyg",
        "char_persona": "shy",
        "world_scenario": "a cafe",
        "char_greeting": "oh, hi",
        "example_dialogue": "<START>",
    }
    persona = import_card(write_json(tmp_path, old))
    assert (persona.name, persona.personality, persona.scenario) == ("Pyg", "shy", "a cafe")
    assert (persona.first_mes, persona.mes_example) == ("oh, hi", "<START>")


def test_import_ccv3_and_nulls(tmp_path: Path) -> None:
    card: dict[str, Any] = {
        "spec": "chara_card_v3",
        "spec_version": "3.0",
        "data": {"name": "Tri", "tags": None},
    }
    card["data"]["nickname"] = "T"  # a V3 field we do not use
    persona = import_card(write_json(tmp_path, card))
    assert persona.name == "Tri" and persona.tags == ()


# -- PNG cards ----------------------------------------------------------------------


def test_import_png_text_chunk(tmp_path: Path) -> None:
    path = tmp_path / "card.png"
    path.write_bytes(tiny_png(chunk(b"tEXt", b"chara\0" + b64(CCV2))))
    assert import_card(path).name == "Juniper"


def test_png_prefers_ccv3_chunk(tmp_path: Path) -> None:
    v3 = {"spec": "chara_card_v3", "spec_version": "3.0", "data": {"name": "Three"}}
    path = tmp_path / "card.png"
    path.write_bytes(
        tiny_png(
            chunk(b"tEXt", b"Comment\0hello"),
            chunk(b"tEXt", b"chara\0" + b64(CCV2)),
            chunk(b"tEXt", b"ccv3\0" + b64(v3)),
        )
    )
    assert import_card(path).name == "Three"


def test_png_compressed_text_chunks(tmp_path: Path) -> None:
    ztxt = chunk(b"zTXt", b"chara\0\0" + zlib.compress(b64(CCV2)))
    (tmp_path / "z.png").write_bytes(tiny_png(ztxt))
    assert import_card(tmp_path / "z.png").name == "Juniper"
    itxt = chunk(b"iTXt", b"chara\0\x01\0en\0\0" + zlib.compress(b64(CCV2)))
    (tmp_path / "i.png").write_bytes(tiny_png(itxt))
    assert import_card(tmp_path / "i.png").name == "Juniper"


def test_card_to_png_round_trip(tmp_path: Path) -> None:
    persona = load_persona()
    stale = chunk(b"tEXt", b"chara\0" + b64(CCV2))
    for image in (None, tiny_png(stale)):
        path = tmp_path / "out.png"
        path.write_bytes(card_to_png(export_card(persona), image))
        assert import_card(path) == persona


def test_load_persona_reads_cards(tmp_path: Path) -> None:
    (tmp_path / "c.png").write_bytes(tiny_png(chunk(b"tEXt", b"chara\0" + b64(CCV2))))
    assert load_persona(tmp_path / "c.png").name == "Juniper"
    assert load_persona(str(write_json(tmp_path, CCV2))).name == "Juniper"


# -- malformed cards -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"spec": "chara_card_v2",\n "data": {,}}', "line 2: card is not valid JSON"),
        ("[1, 2]", "card must be a JSON object, got a list"),
        ('{"spec": "chara_card_v2", "data": "x"}', "card field 'data' must be an object"),
        ('{"spec": "other", "data": {}}', "unsupported card spec 'other'"),
        ('{"spec": "chara_card_v2", "data": {}}', "missing required field 'data.name'"),
        ('{"data": {"name": "A", "tags": "x"}}', "field 'data.tags' must be a list of strings"),
        ('{"name": "A", "first_mes": 3}', "field 'first_mes' must be a string, got an integer"),
        (
            '{"data": {"name": "A", "extensions": {"companion": {"baseline": {"valence": 9}}}}}',
            "field 'data.extensions.companion.baseline.valence' must be between -1 and 1",
        ),
        ('{"data": {"name": "A", "extensions": []}}', "'extensions' must be an object"),
    ],
)
def test_malformed_json_card(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    assert message in card_error(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a....", "not a PNG file"),
        (tiny_png(), "PNG holds no character card"),
        (tiny_png()[:-6], "PNG file is truncated"),
        (tiny_png(chunk(b"tEXt", b"chara\0%%%not base64")), "not base64-encoded UTF-8 JSON"),
        (tiny_png(chunk(b"zTXt", b"chara\0\0garbage")), "not valid compressed data"),
        (tiny_png(chunk(b"tEXt", b"chara\0" + base64.b64encode(b"{nope"))), "not valid JSON"),
    ],
)
def test_malformed_png_card(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(data)
    assert message in card_error(path)


def test_missing_card_file(tmp_path: Path) -> None:
    assert "card file not found" in card_error(tmp_path / "none.json")


# -- TOML writing ----------------------------------------------------------------------


def test_awkward_text_round_trips_through_toml() -> None:
    persona = Persona(
        name='Quote "Q" \\ Back',
        description="ends with quotes ''",
        personality="has '''triple''' quotes\nand lines",
        scenario="tab\there, bell \x07, crlf\r\nend",
        first_mes="x" * 200,
        mes_example="\nstarts with a newline",
        alternate_greetings=("one\ntwo", "'"),
        tags=("ü", "日本"),
        baseline=Mood(-1.0, 1e-05),
        voice=SpeechStyle("v", 40, 0.0),
    )
    assert parse_persona_toml(persona_to_toml(persona)) == persona


text_field = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60)


@given(
    name=text_field.filter(lambda s: s.strip() == s and s != ""),
    description=text_field,
    tags=st.lists(text_field, max_size=3),
    valence=st.floats(-1, 1),
)
def test_any_text_round_trips_through_toml(
    name: str, description: str, tags: list[str], valence: float
) -> None:
    persona = Persona(name=name, description=description, tags=tuple(tags), baseline=Mood(valence))
    assert parse_persona_toml(persona_to_toml(persona)) == persona


def test_save_persona_toml(tmp_path: Path) -> None:
    persona = import_card(write_json(tmp_path, CCV2))
    path = save_persona_toml(persona, tmp_path / "personas" / f"{persona_slug(persona.name)}.toml")
    assert path == tmp_path / "personas" / "juniper.toml"
    assert load_persona("juniper", user_dirs=[tmp_path / "personas"]) == persona
    assert [p.name for p in path.parent.iterdir()] == ["juniper.toml"]  # no temp file left


def test_save_persona_toml_error_is_persona_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PersonaError, match="cannot write persona"):
        save_persona_toml(Persona(name="A"), blocker / "a.toml")


def test_persona_slug() -> None:
    assert persona_slug("Dr. Ada Lovelace") == "dr-ada-lovelace"
    assert persona_slug("Zoë") == "zoe"
    assert persona_slug("???") == "persona"


# -- hostile PNG cards and PNG export ----------------------------------------------------


def zlib_bomb(inflated_mb: int) -> bytes:
    """A valid zlib stream of ``inflated_mb`` MiB of zeros, built without inflating it
    here: one fully flushed deflate block of 1 MiB of zeros, repeated (about 1 KB each)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(bytes(1 << 20)) + deflate.flush(zlib.Z_FULL_FLUSH)
    size = inflated_mb << 20
    adler = ((size % 65521) << 16) | 1  # Adler-32 of `size` zero bytes
    return b"\x78\xda" + block * inflated_mb + deflate.flush() + struct.pack(">I", adler)


@pytest.mark.parametrize("kind", ["zTXt", "iTXt"])
def test_compressed_chunk_bomb_is_refused_in_little_memory(tmp_path: Path, kind: str) -> None:
    import tracemalloc

    bomb = zlib_bomb(480)
    assert 450_000 < len(bomb) < 550_000  # a 500 KB file that inflates to 480 MiB
    body = b"chara\0\0" + bomb if kind == "zTXt" else b"chara\0\x01\0en\0\0" + bomb
    path = tmp_path / "bomb.png"
    path.write_bytes(tiny_png(chunk(kind.encode(), body)))
    tracemalloc.start()
    try:
        message = card_error(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "inflates to more than 4 MB" in message
    assert peak < 24 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"


def test_compressed_chunk_under_the_cap_and_truncated_streams(tmp_path: Path) -> None:
    text = zlib.compress(b64(CCV2))
    (tmp_path / "ok.png").write_bytes(tiny_png(chunk(b"zTXt", b"chara\0\0" + text)))
    assert import_card(tmp_path / "ok.png").name == "Juniper"
    (tmp_path / "cut.png").write_bytes(tiny_png(chunk(b"zTXt", b"chara\0\0" + text[:-9])))
    assert "not valid compressed data" in card_error(tmp_path / "cut.png")


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every chunk of a PNG file, each CRC checked."""
    assert data.startswith(PNG_SIGNATURE)
    pos, out = len(PNG_SIGNATURE), []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, f"bad CRC in {kind!r}"
        out.append((kind, body))
        pos += 12 + length
    return out


def assert_valid_png(data: bytes) -> None:
    """A decodable image: IHDR first, IEND last, pixel data of the size IHDR says."""
    chunks = png_chunks(data)
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(pixels) == height * (1 + width * channels * depth // 8)


def test_persona_export_png_is_a_real_png_card_and_imports_back(
    tmp_path: Path, companion_home: Path
) -> None:
    from companion.cli.main import main

    original = load_persona()
    out = tmp_path / "card.png"
    assert main(["persona", "export", original.name.lower(), "-o", str(out)]) == 0
    data = out.read_bytes()
    assert_valid_png(data)
    texts = [body for kind, body in png_chunks(data) if kind == b"tEXt"]
    assert len(texts) == 1 and texts[0].startswith(b"chara\0")
    card = json.loads(base64.b64decode(texts[0].removeprefix(b"chara\0")))
    assert card == export_card(original) and card["spec"] == "chara_card_v2"

    assert main(["persona", "import", str(out), "--name", "again"]) == 0
    assert load_persona("again", user_dirs=[companion_home / "personas"]) == original


def test_persona_export_json_stays_json(tmp_path: Path) -> None:
    from companion.cli.main import main

    out = tmp_path / "card.json"
    assert main(["persona", "export", load_persona().name.lower(), "-o", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == export_card(load_persona())
    assert import_card(out) == load_persona()


def test_persona_export_png_to_a_missing_folder_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from companion.cli.main import main

    out = tmp_path / "no" / "such" / "card.png"
    assert main(["persona", "export", load_persona().name.lower(), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write card" in err


@pytest.mark.parametrize("name", ["card.png", "card.json"])
def test_persona_export_never_replaces_a_file_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    from companion.cli.main import main

    out = tmp_path / name
    out.write_bytes(b"precious")
    persona = load_persona().name.lower()
    assert main(["persona", "export", persona, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err
    assert out.read_bytes() == b"precious"
    assert main(["persona", "export", persona, "-o", str(out), "--force"]) == 0
    assert import_card(out) == load_persona()


def test_a_persona_voice_is_the_speech_style_a_tts_engine_takes() -> None:
    from companion.voice.base import SpeechStyle as EngineStyle

    assert EngineStyle is SpeechStyle
    persona = Persona(name="A", voice=SpeechStyle("v", 150.5, 0.5))
    assert parse_persona_toml(persona_to_toml(persona)) == persona
    assert persona_from_card(export_card(persona)) == persona
    assert "rate = 175\n" in persona_to_toml(Persona(name="B"))  # whole rates stay whole


def test_one_card_field_list_for_reading_writing_and_checking() -> None:
    from companion.persona.schema import CARD_FIELDS, KNOWN_FIELDS, TABLE_FIELDS

    data = export_card(load_persona())["data"]
    assert list(data) == [*CARD_FIELDS, "extensions"]
    assert {*CARD_FIELDS, *TABLE_FIELDS} == KNOWN_FIELDS
    full = {key: ["x"] if key in ("tags", "alternate_greetings") else "x" for key in CARD_FIELDS}
    persona = persona_from_card({"spec": "chara_card_v2", "data": full})
    assert all(getattr(persona, key) in ("x", ("x",)) for key in CARD_FIELDS)


def test_toml_escapes_what_a_terminal_would_act_on_when_shown() -> None:
    persona = Persona(name="\x9b31mEvil", description="a\x1b]0;t\x07\nb", tags=("\u202eabc",))
    text = persona_to_toml(persona)
    assert not any(ch in text for ch in "\x9b\x1b\x07\u202e")
    assert parse_persona_toml(text) == persona


def test_a_card_with_a_lone_surrogate_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    path.write_text('{"name": "A", "tags": ["ok", "\\udc80"]}', encoding="utf-8")
    assert "field 'tags' is not valid Unicode" in card_error(path)
    path.write_text('{"name": "\\ud800"}', encoding="utf-8")
    assert "field 'name' is not valid Unicode" in card_error(path)


def test_persona_import_as_first_use_creates_a_private_data_directory(
    tmp_path: Path, companion_home: Path
) -> None:
    from companion.cli.main import main

    assert not companion_home.exists()
    assert main(["persona", "import", str(write_json(tmp_path, CCV2))]) == 0
    for folder in (companion_home, companion_home / "personas"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder


def test_a_card_file_too_large_to_be_a_card_is_not_read(tmp_path: Path) -> None:
    from companion.persona.card import MAX_CARD_FILE

    path = tmp_path / "huge.png"
    with path.open("wb") as fh:  # sparse: nothing is written but the size
        fh.truncate(MAX_CARD_FILE + 1)
    assert "card file is too large" in card_error(path)
