"""Character cards: import and export in the formats other chat front ends use.

- Character Card V2 JSON: ``{"spec": "chara_card_v2", "spec_version": "2.0", "data": {...}}``;
  V3 (``chara_card_v3``) is read the same way, its extra fields ignored.
- V1 "flat" JSON cards: the fields at the top level; the older TavernAI/Pygmalion
  names (``char_name``, ``char_persona``, ...) are accepted too.
- PNG cards: the JSON, base64-encoded, in a ``tEXt`` (or ``zTXt``/``iTXt``) chunk
  with keyword ``ccv3`` or ``chara``, as SillyTavern writes them. Read and written
  with the standard library (no image library needed). Compressed chunks are
  inflated with a cap (:data:`MAX_CARD_TEXT`), so a small "zip bomb" card cannot
  take the machine's memory.

The companion's own tables (mood baseline, voice, sampling) travel in
``data.extensions.companion``; other extensions and lorebooks are not kept.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from companion.errors import PersonaError
from companion.persona.model import Persona
from companion.persona.schema import (
    CARD_FIELDS,
    TABLE_FIELDS,
    persona_from_mapping,
    persona_to_mapping,
    type_name,
)

SPEC_V2 = "chara_card_v2"
SPEC_V3 = "chara_card_v3"
EXTENSION_KEY = "companion"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Keywords of the text chunks that hold a card, preferred first.
PNG_KEYWORDS = ("ccv3", "chara")
#: Largest card text a compressed PNG chunk may inflate to (bytes).
MAX_CARD_TEXT = 4 * 1024 * 1024
#: Largest card file read (bytes): a card is text and maybe a portrait.
MAX_CARD_FILE = 64 * 1024 * 1024

_V1_ALIASES = {
    "char_name": "name",
    "char_persona": "personality",
    "world_scenario": "scenario",
    "char_greeting": "first_mes",
    "example_dialogue": "mes_example",
}


def import_card(path: Path) -> Persona:
    """Read a character card from a ``.json`` or ``.png`` file."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CARD_FILE:
            raise PersonaError(
                f"card file is too large (over {MAX_CARD_FILE // (1024 * 1024)} MB)", path=path
            )
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise PersonaError("card file not found", path=path) from exc
    except OSError as exc:
        raise PersonaError(f"cannot read card: {exc.strerror or exc}", path=path) from exc
    if raw.startswith(PNG_SIGNATURE):
        text = card_json_from_png(raw, path=path)
    elif path.suffix.lower() == ".png":
        raise PersonaError("not a PNG file (bad signature)", path=path)
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PersonaError("card is not UTF-8 text", path=path) from exc
    return persona_from_card(_parse_json(text, path), path=path)


def persona_from_card(card: object, *, path: Path | str | None = None) -> Persona:
    """A persona from a decoded card (V2/V3 with ``data``, or V1 flat)."""
    if not isinstance(card, Mapping):
        raise PersonaError(f"card must be a JSON object, got {type_name(card)}", path=path)
    spec = card.get("spec")
    if spec is not None and spec not in (SPEC_V2, SPEC_V3):
        raise PersonaError(
            f"unsupported card spec {spec!r}; expected {SPEC_V2!r} or {SPEC_V3!r}", path=path
        )
    if spec is not None or "data" in card:
        data = card.get("data")
        if not isinstance(data, Mapping):
            raise PersonaError(
                f"card field 'data' must be an object, got {type_name(data)}", path=path
            )
        prefix = "data."
    else:  # V1: fields at the top level, maybe under their TavernAI names
        data = {**{_V1_ALIASES[k]: v for k, v in card.items() if k in _V1_ALIASES}, **card}
        prefix = ""
    fields: dict[str, Any] = {key: data[key] for key in CARD_FIELDS if key in data}
    extras = _companion_extension(data, path)
    fields.update({table: extras[table] for table in TABLE_FIELDS if table in extras})
    return persona_from_mapping(
        fields,
        path=path,
        strict=False,
        table="an object",
        display=lambda field: _card_field_name(field, prefix),
    )


def _card_field_name(field: str, prefix: str) -> str:
    """Where a field lives in a card: ``baseline.valence`` -> ``data.extensions.companion...``."""
    if field.split(".")[0] in TABLE_FIELDS:
        return f"{prefix}extensions.{EXTENSION_KEY}.{field}"
    return prefix + field


def export_card(persona: Persona) -> dict[str, Any]:
    """The persona as a Character Card V2 (JSON-ready), extras under ``extensions.companion``."""
    fields = persona_to_mapping(persona)
    data: dict[str, Any] = {key: fields[key] for key in CARD_FIELDS}
    data["extensions"] = {
        EXTENSION_KEY: {table: fields[table] for table in TABLE_FIELDS if table in fields},
    }
    return {"spec": SPEC_V2, "spec_version": "2.0", "data": data}


def card_json_from_png(raw: bytes, *, path: Path | str | None = None) -> str:
    """The card JSON stored in a PNG's ``ccv3`` or ``chara`` text chunk."""
    found: dict[str, bytes] = {}
    for kind, body in _png_chunks(raw, path):
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            keyword, _, rest = body.partition(b"\0")
            name = keyword.decode("latin-1")
            if name in PNG_KEYWORDS and name not in found:
                found[name] = _text_chunk_value(kind, rest, name, path)
    for name in PNG_KEYWORDS:
        if name in found:
            try:
                return base64.b64decode(found[name], validate=False).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise PersonaError(
                    f"PNG chunk {name!r} is not base64-encoded UTF-8 JSON", path=path
                ) from exc
    raise PersonaError("PNG holds no character card (no 'chara' or 'ccv3' text chunk)", path=path)


def card_to_png(card: Mapping[str, Any], image: bytes | None = None) -> bytes:
    """A PNG card: ``image`` (a 1x1 transparent pixel when None) with a ``chara`` chunk.

    Existing ``chara``/``ccv3`` chunks of the image are replaced.
    """
    image = image if image is not None else _blank_png()
    if not image.startswith(PNG_SIGNATURE):
        raise PersonaError("not a PNG image (bad signature)")
    payload = base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8"))
    card_chunk = _chunk(b"tEXt", b"chara\0" + payload)
    out = [PNG_SIGNATURE]
    for kind, body in _png_chunks(image, None):
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            keyword = body.partition(b"\0")[0].decode("latin-1")
            if keyword in PNG_KEYWORDS:
                continue
        if kind == b"IEND":
            out.append(card_chunk)
        out.append(_chunk(kind, body))
    return b"".join(out)


def _parse_json(text: str, path: Path | str | None) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PersonaError(
            f"card is not valid JSON (column {exc.colno}): {exc.msg}", path=path, line=exc.lineno
        ) from exc
    except RecursionError as exc:
        raise PersonaError("card JSON is nested too deeply", path=path) from exc


def _companion_extension(data: Mapping[str, Any], path: Path | str | None) -> Mapping[str, Any]:
    extensions = data.get("extensions")
    if extensions is None:
        return {}
    if not isinstance(extensions, Mapping):
        raise PersonaError(
            f"card field 'extensions' must be an object, got {type_name(extensions)}", path=path
        )
    ours = extensions.get(EXTENSION_KEY)
    if ours is None:
        return {}
    if not isinstance(ours, Mapping):
        raise PersonaError(
            f"card field 'extensions.{EXTENSION_KEY}' must be an object, got {type_name(ours)}",
            path=path,
        )
    return ours


def _png_chunks(raw: bytes, path: Path | str | None) -> Iterator[tuple[bytes, bytes]]:
    if not raw.startswith(PNG_SIGNATURE):
        raise PersonaError("not a PNG file (bad signature)", path=path)
    pos = len(PNG_SIGNATURE)
    while pos < len(raw):
        if pos + 8 > len(raw):
            raise PersonaError("PNG file is truncated (incomplete chunk header)", path=path)
        length, kind = struct.unpack(">I4s", raw[pos : pos + 8])
        end = pos + 8 + length + 4
        if end > len(raw):
            raise PersonaError(
                f"PNG file is truncated (chunk {kind.decode('latin-1')!r} runs past the end)",
                path=path,
            )
        yield kind, raw[pos + 8 : pos + 8 + length]
        if kind == b"IEND":
            return
        pos = end
    raise PersonaError("PNG file is truncated (no IEND chunk)", path=path)


def _text_chunk_value(kind: bytes, rest: bytes, name: str, path: Path | str | None) -> bytes:
    """The text of a tEXt/zTXt/iTXt chunk after its keyword."""
    try:
        if kind == b"tEXt":
            return rest
        if kind == b"zTXt":
            return _inflate(rest[1:], name, path)
        # iTXt: compression flag, method, language tag\0, translated keyword\0, text
        flag = rest[:1]
        _lang, _, rest = rest[2:].partition(b"\0")
        _translated, _, text = rest.partition(b"\0")
        return _inflate(text, name, path) if flag == b"\x01" else text
    except zlib.error as exc:
        raise PersonaError(f"PNG chunk {name!r} is not valid compressed data", path=path) from exc


def _inflate(data: bytes, name: str, path: Path | str | None) -> bytes:
    """Inflate a chunk's zlib stream, never producing more than :data:`MAX_CARD_TEXT`."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_CARD_TEXT + 1)
    if len(out) > MAX_CARD_TEXT or inflater.unconsumed_tail:
        raise PersonaError(
            f"PNG chunk {name!r} inflates to more than {MAX_CARD_TEXT // (1024 * 1024)} MB",
            path=path,
        )
    if not inflater.eof:
        raise PersonaError(f"PNG chunk {name!r} is not valid compressed data", path=path)
    return out


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I4s", len(body), kind) + body + struct.pack(">I", crc)


def _blank_png() -> bytes:
    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)  # 1x1, 8-bit RGBA
    pixels = zlib.compress(b"\x00\x00\x00\x00\x00")  # filter byte + one transparent pixel
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")
