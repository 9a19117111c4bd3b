"""The conversation store and the memory of the user.

- :class:`Store`: the SQLite file (sessions, turns, persona state, facts), with
  migrations, transactions and error translation;
- :class:`Memory`: the protocol the dialog uses for long-term memory;
- :class:`SQLiteMemory`: facts in the store, recalled with FTS5 and bm25;
- :class:`RuleExtractor`: pattern-based fact extraction, producing :class:`Fact`.
"""

from companion.memory.base import Extractor, Fact, FactKind, Memory
from companion.memory.facts import RuleExtractor
from companion.memory.sqlite_memory import SQLiteMemory
from companion.memory.store import Store

__all__ = [
    "Extractor",
    "Fact",
    "FactKind",
    "Memory",
    "RuleExtractor",
    "SQLiteMemory",
    "Store",
]
