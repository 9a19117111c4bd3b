"""Turning free text into safe SQLite FTS5 queries.

User text is never passed to ``MATCH`` as it is: quotes, colons, ``*``, ``^``,
parentheses and the words AND/OR/NOT/NEAR are FTS5 syntax. Instead the text is
split into words, stop words are dropped, and every word becomes a quoted
string (``"sister"``), which FTS5 reads as a plain term whatever it contains.
"""

from __future__ import annotations

import re

from companion.memory.lexicon import word_set

#: At most this many words go into one query.
MAX_TERMS = 32

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Words that carry no topic. "user" is here because every fact starts with it.
STOP_WORDS: frozenset[str] = word_set(
    """
    a about above after again all also am an and any are as at be been before being
    but by can could d did do does doing don done for from get got had has have having
    he her here hers him his how i if in into is it its just know ll m me mine my myself
    no nor not now of on once only or our ours please re remember s she should so some
    t tell than that the their them then there these they this those to too u until up
    us user ve very was we were what whats when where which while who whom why will
    with would you your yours yourself
    """
)


def words(text: str) -> list[str]:
    """The words of ``text``, case-folded, stop words removed, in order, without repeats."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(text.casefold()):
        word = match.group()
        if word not in STOP_WORDS:
            seen.setdefault(word, None)
    return list(seen)[:MAX_TERMS]


def quote(word: str) -> str:
    """``word`` as an FTS5 string: a term however odd its characters."""
    return '"' + word.replace('"', '""') + '"'


def any_of(text: str, *, column: str | None = None) -> str | None:
    """A query matching rows with any of the words of ``text`` (ranked by bm25),
    or None when ``text`` has no words worth searching for."""
    return _join(words(text), " OR ", column)


def all_of(text: str, *, column: str | None = None) -> str | None:
    """A query matching rows with every word of ``text``, or None when it has none."""
    return _join(words(text), " AND ", column)


def _join(terms: list[str], op: str, column: str | None) -> str | None:
    if not terms:
        return None
    prefix = f"{column} : " if column else ""
    return op.join(prefix + quote(term) for term in terms)
