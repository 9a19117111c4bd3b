"""Typed settings, loaded once at the edge of the program.

Layers, later wins: the bundled defaults (``config/companion.toml``), the
user's ``<data dir>/config.toml``, then explicit overrides (command-line
options, keyword arguments of :meth:`Companion.open`).
"""

from __future__ import annotations

import getpass
import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from companion.errors import ConfigError, InputError
from companion.paths import check_user_name, data_dir, package_data

_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass(frozen=True, slots=True)
class Config:
    """Every setting of the companion, with its type."""

    model: str = "qwen2.5-coder-0.5b-instruct"
    persona: str = "samantha"
    user: str = ""
    temperature: float = 0.7
    top_p: float = 0.9
    max_tokens: int = 200
    context_tokens: int = 2048
    recall_limit: int = 5
    seed: int | None = None
    threads: int | None = None
    #: Weights of a local folder of safetensors on the transformers path: "auto"
    #: (int8 on the CPU, full precision on a GPU), "none", "int8" or "int4".
    quantize: str = "auto"
    #: How a registry model or a .gguf file runs: "auto" (the GGUF engine on the
    #: file's own blocks, transformers when it cannot), "gguf" or "transformers".
    engine: str = "auto"
    #: A smaller model of the same vocabulary that drafts for the GGUF engine
    #: (speculative decoding): a registry name or a .gguf file; "auto" = the one
    #: the registry names for the model (its ``draft``), if any; "" = none.
    draft: str = ""
    #: Speech synthesis engine: "auto" (Piper if installed, else pyttsx3), "piper",
    #: "pyttsx3" or "null" (silent).
    tts: str = "auto"
    #: Speech recognizer: "auto" (faster-whisper tiny.en) or "faster-whisper".
    stt: str = "auto"
    #: Sampling guards (see :mod:`companion.llm.sampling`); a persona may set its
    #: own (``[sampling]``), which a user's config file or an override beats.
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    dry_multiplier: float = 0.0
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    echo_penalty: float = 0.0
    #: Most sentences in one reply (0: no limit; a persona may set its own).
    max_sentences: int = 0
    #: Check the start of each reply for echo, identity and loops, and sample again.
    reply_guard: bool = True
    #: ``companion serve``: Host names answered besides loopback ones ("*": any,
    #: which needs a token), and web page origins allowed to call it (none).
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    #: The agenda (see :mod:`companion.agenda`): the user's time zone (an IANA
    #: name; "" = the system's), whether she speaks first (briefings, follow-ups,
    #: check-ins; reminders the user asked for fire either way), the hours she
    #: keeps quiet ("22:00-08:00"; "" = none), the most unprompted messages a
    #: day, and the silence in an open chat before she checks in (0 = never).
    timezone: str = ""
    proactive: bool = True
    quiet_hours: str = "22:00-08:00"
    max_unprompted_per_day: int = 4
    checkin_after_minutes: int = 120
    #: Settings given by the user (their config file or overrides), not defaults.
    explicit: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        """As a dataclass writes it, but a password in an ``openai:`` URL is ``***``."""
        from companion.llm.openai_spec import redact

        body = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return redact(f"Config({body})")

    def with_overrides(self, **overrides: Any) -> Config:
        """A copy with the given settings changed (``None`` values are ignored)."""
        given: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                 for k, v in overrides.items() if v is not None}  # fmt: skip
        _check(given, source=None)
        return replace(self, **given, explicit=self.explicit | given.keys())


_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "persona": (str,),
    "user": (str,),
    "temperature": (float, int),
    "top_p": (float, int),
    "max_tokens": (int,),
    "context_tokens": (int,),
    "recall_limit": (int,),
    "seed": (int,),
    "threads": (int,),
    "quantize": (str,),
    "engine": (str,),
    "draft": (str,),
    "tts": (str,),
    "stt": (str,),
    "min_p": (float, int),
    "repetition_penalty": (float, int),
    "frequency_penalty": (float, int),
    "presence_penalty": (float, int),
    "dry_multiplier": (float, int),
    "dry_base": (float, int),
    "dry_allowed_length": (int,),
    "echo_penalty": (float, int),
    "max_sentences": (int,),
    "reply_guard": (bool,),
    "allowed_hosts": (list, tuple),
    "allowed_origins": (list, tuple),
    "timezone": (str,),
    "proactive": (bool,),
    "quiet_hours": (str,),
    "max_unprompted_per_day": (int,),
    "checkin_after_minutes": (int,),
}
#: The settings a persona's ``[sampling]`` table may give.
SAMPLING_KEYS = (
    "temperature", "top_p", "min_p", "repetition_penalty", "frequency_penalty",
    "presence_penalty", "dry_multiplier", "dry_base", "dry_allowed_length", "echo_penalty",
    "max_sentences",
)  # fmt: skip
_CHOICES: dict[str, tuple[str, ...]] = {
    "quantize": ("auto", "none", "int8", "int4"),
    "engine": ("auto", "gguf", "transformers"),
    "tts": ("auto", "piper", "pyttsx3", "null"),
    "stt": ("auto", "faster-whisper"),
}
_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 5.0),
    "top_p": (0.0, 1.0),
    "max_tokens": (1, 32768),
    "context_tokens": (256, 1_000_000),
    "recall_limit": (0, 100),
    "threads": (1, 1024),
    "min_p": (0.0, 1.0),
    "repetition_penalty": (0.5, 3.0),
    "frequency_penalty": (-2.0, 2.0),
    "presence_penalty": (-2.0, 2.0),
    "dry_multiplier": (0.0, 10.0),
    "dry_base": (1.0, 4.0),
    "dry_allowed_length": (1, 50),
    "echo_penalty": (0.0, 10.0),
    "max_sentences": (0, 100),
    "max_unprompted_per_day": (0, 100),
    "checkin_after_minutes": (0, 10080),
}
_QUIET = re.compile(r"^(?:([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d))?$")


def sampling_range(key: str) -> tuple[float, float]:
    """The allowed range of a sampling setting (for a persona's ``[sampling]``)."""
    return _RANGES[key]


def read_toml(text: str, path: Path | str) -> dict[str, Any]:
    """Parse TOML; a syntax error becomes one :class:`ConfigError` line with file and line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_LINE.search(msg)
        line = int(m.group(1)) if m else None
        problem = _TOML_LINE.sub("", msg).strip() or "invalid TOML"
        raise ConfigError(f"invalid TOML: {problem}", path=path, line=line) from exc


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^[ \t]*{re.escape(key)}[ \t]*=", re.MULTILINE)
    m = pattern.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _check(values: dict[str, Any], source: tuple[Path | str, str] | None) -> None:
    for key, value in values.items():
        path, text = source if source else (None, "")
        line = _line_of(text, key) if source else None
        if key not in _TYPES:
            known = ", ".join(sorted(_TYPES))
            raise ConfigError(f"unknown setting {key!r} (known: {known})", path=path, line=line)
        types = _TYPES[key]
        if isinstance(value, bool) != (bool in types) or not isinstance(value, types):
            want = " or ".join(t.__name__ for t in types)
            raise ConfigError(
                f"{key} must be {want}, not {type(value).__name__}", path=path, line=line
            )
        if isinstance(value, list | tuple) and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} must be a list of strings", path=path, line=line)
        if key in _CHOICES and value not in _CHOICES[key]:
            raise ConfigError(
                f"{key} must be one of {', '.join(_CHOICES[key])}, not {value!r}",
                path=path, line=line,
            )
        if key == "quiet_hours" and not _QUIET.match(str(value)):
            raise ConfigError('quiet_hours must look like "22:00-08:00" (or "" for none)',
                              path=path, line=line)
        if key == "timezone" and value:
            _check_zone(str(value), path, line)
        if key in _RANGES:
            lo, hi = _RANGES[key]
            number = float(values[key])
            if not lo <= number <= hi:
                raise ConfigError(f"{key} must be between {lo} and {hi}", path=path, line=line)


def _check_zone(name: str, path: Path | str | None, line: int | None) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"timezone {name!r} is not a known time zone (e.g. Europe/Paris)",
                          path=path, line=line) from exc


def _from_file(path: Path | str, text: str) -> dict[str, Any]:
    values = read_toml(text, path)
    _check(values, (path, text))
    if isinstance(values.get("user"), str):  # names files, as --user does: the same rule
        try:
            check_user_name(values["user"])
        except InputError as exc:
            raise ConfigError(str(exc).replace("--user", "user"), path=path,
                              line=_line_of(text, "user")) from exc
    return {k: float(v) if _TYPES[k][0] is float else tuple(v) if isinstance(v, list) else v
            for k, v in values.items()}  # fmt: skip


def default_user() -> str:
    """The login name, as a user id (``default`` when it cannot be found)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = ""
    name = re.sub(r"[^\w.-]", "", name)[:64]
    return name or "default"


def load_config(path: Path | None = None, *, home: Path | None = None, **overrides: Any) -> Config:
    """Defaults, then the user's config file, then overrides.

    The user's file is ``path`` (which must exist) or else ``config.toml`` in
    ``home`` (default: the data directory), if it exists.
    """
    bundled = package_data("config", "companion.toml")
    values = _from_file("config/companion.toml", bundled.read_text(encoding="utf-8"))
    explicit: set[str] = set()
    user_file = path if path is not None else (home or data_dir()) / "config.toml"
    if user_file.exists():
        try:
            text = user_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read: {exc}", path=user_file) from exc
        mine = _from_file(user_file, text)
        values.update(mine)
        explicit.update(mine)
    elif path is not None:
        raise ConfigError("no such file", path=path)
    config = Config(**{f.name: values[f.name] for f in fields(Config) if f.name in values})
    config = replace(config, explicit=frozenset(explicit)).with_overrides(**overrides)
    if not config.user:
        config = replace(config, user=default_user())
    return config
