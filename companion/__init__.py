"""companion: an offline conversational companion that remembers you.

    from companion import Companion

    c = Companion.open(user="theo")
    for chunk in c.say("Hi, I'm Theo."):
        print(chunk, end="", flush=True)
    print(c.say("What's my name?").text())

Importing this package is fast and does not import torch; the model is loaded
by :meth:`Companion.open`.
"""

from companion.config import Config, load_config
from companion.dialog import Companion
from companion.errors import (
    AudioError,
    CompanionError,
    ConfigError,
    InputError,
    ModelError,
    ModelNotFoundError,
    PersonaError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
)
from companion.llm import LLM, FakeLLM
from companion.persona import Persona, load_persona
from companion.reply import Reply
from companion.types import (
    GenerationParams,
    MemoryItem,
    Message,
    Mood,
    PersonaState,
    Relationship,
    SessionInfo,
    Turn,
)

__version__ = "0.1.0"

__all__ = [
    "LLM",
    "AudioError",
    "Companion",
    "CompanionError",
    "Config",
    "ConfigError",
    "FakeLLM",
    "GenerationParams",
    "InputError",
    "MemoryItem",
    "Message",
    "ModelError",
    "ModelNotFoundError",
    "Mood",
    "Persona",
    "PersonaError",
    "PersonaState",
    "Relationship",
    "Reply",
    "SessionInfo",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "Turn",
    "load_config",
    "load_persona",
]
