"""The conversation store and the memory of the user.

- :class:`Store`: the SQLite file (sessions, turns, persona state, facts), with
  migrations, transactions and error translation;
- :class:`Memory`: the protocol the dialog uses for long-term memory;
- :class:`SQLiteMemory`: facts in the store, recalled with FTS5 and bm25;
- :class:`LongTermMemory`: episodes, facts and session summaries, recalled by
  hybrid search (bm25 + sentence vectors), with pins, edits and cascading forget;
- :func:`parse_forget_request`: "forget what I said about my ex" as a request;
- :class:`RuleExtractor`: pattern-based fact extraction, producing :class:`Fact`.
"""

from companion.memory.base import Extractor, Fact, FactKind, Memory
from companion.memory.embed import Embedder, HashEmbedder, MiniLMEmbedder
from companion.memory.facts import RuleExtractor
from companion.memory.forget import ForgetRequest, Removed, parse_forget_request
from companion.memory.longterm import LongTermMemory
from companion.memory.sqlite_memory import SQLiteMemory
from companion.memory.store import Store

__all__ = [
    "Embedder",
    "Extractor",
    "Fact",
    "FactKind",
    "ForgetRequest",
    "HashEmbedder",
    "LongTermMemory",
    "Memory",
    "MiniLMEmbedder",
    "Removed",
    "RuleExtractor",
    "SQLiteMemory",
    "Store",
    "parse_forget_request",
]
