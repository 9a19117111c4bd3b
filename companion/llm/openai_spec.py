"""``openai:`` model specs: parsing them, and keeping the URL's credentials out of sight.

    openai:http://localhost:8000/v1#Qwen/Qwen2.5-7B-Instruct?ctx=8192&timeout=300

See :mod:`companion.llm.openai_backend` for what each part means. A user name
and password in the URL (``http://user:secret@host/v1``) are taken out of it
(:func:`split_credentials`) and never shown: :func:`redact` puts ``***`` in
their place in any text, and every error here is written with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from companion.errors import ModelError

PREFIX = "openai:"
#: Seconds to wait for the server's next bytes (and for a response to start).
DEFAULT_TIMEOUT = 120.0
#: Connection attempts after the first one fails.
DEFAULT_RETRIES = 2

#: The user name and password of a URL (up to the last ``@`` of its host part), also
#: in a spec whose URL lacks its ``http://``.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://|\bopenai:)[^/?#\s]*@")


def redact(text: str) -> str:
    """``text`` with the user name and password of every URL in it as ``***``:
    ``openai:http://user:secret@host/v1`` -> ``openai:http://***@host/v1``."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """A URL without its user name and password, and them (decoded), if it had any."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return parts._replace(netloc=host).geturl(), (unquote(user), unquote(password))


@dataclass(frozen=True, slots=True)
class OpenAISpec:
    """A parsed ``openai:`` model spec."""

    #: The URL without credentials (they are in ``auth``).
    base_url: str
    model: str | None = None
    context_length: int | None = None
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    #: User name and password for HTTP basic auth, from the URL (never shown).
    auth: tuple[str, str] | None = field(default=None, repr=False)


_USAGE = "openai:<url>#<model>[?ctx=N&timeout=S&retries=N], e.g. openai:http://localhost:8000/v1#my-model"


def parse_spec(spec: str) -> OpenAISpec:
    """Parse ``openai:<url>#<model>?<options>``; raises :class:`ModelError` saying what is wrong
    (the URL's credentials shown as ``***``)."""
    shown = redact(spec)
    if not spec.startswith(PREFIX):
        raise ModelError(f"not an openai: spec: {shown!r} (expected {_USAGE})")
    url, _, fragment = spec[len(PREFIX) :].strip().partition("#")
    model, _, query = fragment.partition("?")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed '[' in the host
        raise ModelError(f"{shown!r}: not a URL ({redact(str(exc))})") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ModelError(f"{shown!r} needs an http:// or https:// URL ({_USAGE})")
    if parts.fragment or parts.query:
        raise ModelError(f"{shown!r}: put the model after '#' and options after it ({_USAGE})")
    values: dict[str, Any] = {}
    for key, raw in parse_qsl(query, keep_blank_values=True):
        kind = {"ctx": int, "timeout": float, "retries": int}.get(key)
        if kind is None:
            raise ModelError(f"{shown!r}: unknown option {key!r} (known: ctx, timeout, retries)")
        try:
            value = kind(raw)
        except ValueError:
            raise ModelError(f"{shown!r}: {key} must be a number, not {raw!r}") from None
        if value < (0 if key == "retries" else 1):
            raise ModelError(f"{shown!r}: {key} is out of range: {raw}")
        values[key] = value
    base_url, auth = split_credentials(url)
    return OpenAISpec(
        base_url=base_url.rstrip("/"),
        model=model.strip() or None,
        context_length=values.get("ctx"),
        timeout=values.get("timeout", DEFAULT_TIMEOUT),
        retries=values.get("retries", DEFAULT_RETRIES),
        auth=auth,
    )
