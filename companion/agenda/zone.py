"""The user's time zone: the config's ``timezone``, or the system's when it is empty."""

from __future__ import annotations

from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from companion.errors import ConfigError, InputError


class _HasTimezone(Protocol):
    @property
    def timezone(self) -> str: ...


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` ("Europe/Paris"); :class:`InputError` when there is none."""
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise InputError(f"unknown time zone {str(name)[:64]!r}")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InputError(f"unknown time zone {name!r} (expected an IANA name such as "
                         "'Europe/Paris')") from exc


def user_zone(config: _HasTimezone) -> ZoneInfo:
    """The zone the user lives in: ``config.timezone``, or the system's when it is "".

    An unknown name in the config is a :class:`ConfigError`; a system whose zone
    cannot be read is taken to be UTC.
    """
    name = config.timezone.strip()
    if name:
        try:
            return zone(name)
        except InputError as exc:
            raise ConfigError(f"timezone: {exc}") from exc
    try:
        import tzlocal

        return zone(tzlocal.get_localzone_name() or "UTC")
    except (InputError, LookupError, ValueError, OSError):
        return ZoneInfo("UTC")
