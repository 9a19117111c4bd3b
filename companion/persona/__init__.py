"""Personas as data, and the companion's evolving state (pure functions)."""

from companion.persona.model import Persona, Voice

__all__ = ["Persona", "Voice"]
