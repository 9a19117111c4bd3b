"""Finding and reading personas: bundled ones, the user's own, and card files.

A spec is a name (``"samantha"``), looked up first in the user's persona folders
(``<data_dir>/personas/NAME.toml``, passed in by the caller) and then among the
personas bundled with the package; or the path of a ``.toml`` persona, a ``.json``
character card or a ``.png`` card. Every failure is one ``PersonaError`` line
naming the file, the line when known, and the problem.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from importlib.resources.abc import Traversable
from pathlib import Path

from companion.errors import PersonaError
from companion.paths import package_data
from companion.persona.model import Persona
from companion.persona.schema import persona_from_mapping

DEFAULT_PERSONA = "samantha"
PERSONA_SUFFIX = ".toml"
CARD_SUFFIXES = (".json", ".png")

_TOML_WHERE = re.compile(
    r"^(?P<msg>.*?) \((?:at line (?P<line>\d+), column (?P<col>\d+)|at end of document)\)$"
)


def load_persona(spec: str | Path | None = None, *, user_dirs: Sequence[Path] = ()) -> Persona:
    """The persona named or pointed to by ``spec`` (the default persona when None)."""
    if spec is None:
        spec = DEFAULT_PERSONA
    if isinstance(spec, Path) or _looks_like_path(spec):
        return load_persona_file(Path(spec).expanduser())
    source = _find_named(spec, user_dirs)
    if source is None:
        available = list_personas(user_dirs)
        raise PersonaError(f"unknown persona {spec!r}; available: {', '.join(available) or 'none'}")
    return _load_toml_source(source)


def list_personas(user_dirs: Sequence[Path] = ()) -> list[str]:
    """Names ``load_persona`` accepts: the user's personas and the bundled ones, sorted."""
    names: set[str] = set()
    for folder in _folders(user_dirs):
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith(PERSONA_SUFFIX) and not entry.name.startswith("."):
                names.add(entry.name[: -len(PERSONA_SUFFIX)])
    return sorted(names, key=str.lower)


def load_persona_file(path: Path) -> Persona:
    """Read a persona from a ``.toml`` file or a ``.json`` / ``.png`` character card."""
    suffix = path.suffix.lower()
    if suffix in CARD_SUFFIXES:
        from companion.persona.card import import_card

        return import_card(path)
    if suffix != PERSONA_SUFFIX:
        raise PersonaError(
            f"unsupported persona file type {path.suffix or '(none)'!r}: "
            "expected .toml, .json or .png",
            path=path,
        )
    if not path.is_file():
        raise PersonaError("persona file not found", path=path)
    return _load_toml_source(path)


def parse_persona_toml(text: str, *, path: Path | str | None = None) -> Persona:
    """Parse the text of a persona TOML file (``path`` only names it in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, text, path) from exc
    return persona_from_mapping(data, path=path, locate=lambda field: find_key_line(text, field))


def find_key_line(text: str, field: str) -> int | None:
    """The 1-based line where dotted ``field`` (``"name"``, ``"baseline.valence"``) is set.

    A best-effort scan for error messages: it knows ``[table]`` headers and dotted
    keys, and skips the inside of multi-line strings. Falls back to the table's
    header line, then None.
    """
    *tables, key = field.split(".")
    table = ".".join(tables)
    key_re = re.compile(rf"""^\s*(?:["']?{re.escape(key)}["']?)\s*=""")
    dotted_re = (
        re.compile(rf"""^\s*{re.escape(table)}\s*\.\s*{re.escape(key)}\s*=""") if table else None
    )
    header_re = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
    current = ""
    header_line: int | None = None
    in_string: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is None:
            header = header_re.match(line)
            if header:
                current = header.group(1)
                if current == table:
                    header_line = number
            elif current == table and key_re.match(line):
                return number
            elif current == "" and dotted_re is not None and dotted_re.match(line):
                return number  # noqa: SIM114 - two different ways to set the key
        for quote in ('"""', "'''"):
            if (in_string in (None, quote)) and line.count(quote) % 2 == 1:
                in_string = quote if in_string is None else None
    return header_line


def _load_toml_source(source: Path | Traversable) -> Persona:
    where = str(source)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise PersonaError(f"cannot read persona file: {exc.strerror or exc}", path=where) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PersonaError("not UTF-8 text", path=where, line=line) from exc
    return parse_persona_toml(text, path=where)


def _toml_error(exc: tomllib.TOMLDecodeError, text: str, path: Path | str | None) -> PersonaError:
    """One line from tomllib's message: ``Invalid value (at line 3, column 9)``."""
    message = str(exc)
    found = _TOML_WHERE.match(message)
    if found is None:
        return PersonaError(f"invalid TOML: {message}", path=path)
    problem = found.group("msg")
    problem = problem[:1].lower() + problem[1:]
    if found.group("line") is not None:
        column = found.group("col")
        return PersonaError(
            f"invalid TOML at column {column}: {problem}", path=path, line=int(found.group("line"))
        )
    last_line = max(1, len(text.splitlines()))
    return PersonaError(f"invalid TOML at end of file: {problem}", path=path, line=last_line)


def _looks_like_path(spec: str) -> bool:
    return (
        "/" in spec
        or "\\" in spec
        or spec.startswith("~")
        or spec.lower().endswith((PERSONA_SUFFIX, *CARD_SUFFIXES))
    )


def _folders(user_dirs: Sequence[Path]) -> list[Path | Traversable]:
    """User folders first (they shadow bundled personas of the same name)."""
    return [*(Path(d) for d in user_dirs), package_data("config", "personas")]


def _find_named(name: str, user_dirs: Sequence[Path]) -> Path | Traversable | None:
    wanted = name.strip()
    for exact in (True, False):
        for folder in _folders(user_dirs):
            try:
                entries = sorted(folder.iterdir(), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                if not entry.name.endswith(PERSONA_SUFFIX) or entry.name.startswith("."):
                    continue
                stem = entry.name[: -len(PERSONA_SUFFIX)]
                if (stem == wanted) if exact else (stem.lower() == wanted.lower()):
                    return entry
    return None
