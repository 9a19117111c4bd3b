"""SQLiteMemory: remember, recall with FTS5/bm25, forget, dedupe, supersession, isolation."""

from __future__ import annotations

import sqlite3
import string
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from companion.memory import Fact, Memory, RuleExtractor, SQLiteMemory, Store, fts
from companion.types import MemoryItem, Turn

NOW = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "companion.db") as s:
        yield s


@pytest.fixture
def memory(store: Store) -> SQLiteMemory:
    return SQLiteMemory(store)


class Talk:
    """Says things as a user, storing each turn and remembering it, like the dialog does."""

    def __init__(self, store: Store, memory: SQLiteMemory, user: str = "theo") -> None:
        self.store, self.memory, self.user = store, memory, user
        self.session = store.start_session(user, NOW)
        self.minutes = 0

    def say(self, text: str, role: str = "user") -> tuple[Turn, list[MemoryItem]]:
        self.minutes += 1
        with self.store.transaction():
            turn = self.store.add_turn(
                self.user, self.session.id, role, text,  # type: ignore[arg-type]
                NOW + timedelta(minutes=self.minutes),
            )
            return turn, self.memory.remember(turn)


def fts_hits(store: Store, word: str) -> list[int]:
    rows = store.conn.execute(
        "SELECT rowid FROM facts_fts WHERE facts_fts MATCH ?", (fts.quote(word),)
    ).fetchall()
    return [r[0] for r in rows]


def test_is_a_memory(memory: SQLiteMemory) -> None:
    assert isinstance(memory, Memory)
    assert isinstance(memory.extractor, RuleExtractor)


def test_remember_stores_facts_with_their_source(store: Store, memory: SQLiteMemory) -> None:
    turn, items = Talk(store, memory).say("I love jazz and I hate mornings")
    assert [(i.kind, i.text) for i in items] == [
        ("like", "User loves jazz."), ("dislike", "User hates mornings.")
    ]
    assert all(i.source_turn_id == turn.id and i.user_id == "theo" for i in items)
    assert all(i.created_at == turn.created_at for i in items)
    assert memory.items("theo") == sorted(items, key=lambda i: -i.id)


def test_assistant_turns_teach_nothing(store: Store, memory: SQLiteMemory) -> None:
    _, items = Talk(store, memory).say("I love jazz", role="assistant")
    assert items == [] and memory.items("theo") == []


def test_remember_joins_the_callers_transaction(store: Store, memory: SQLiteMemory) -> None:
    session = store.start_session("theo", NOW)
    with pytest.raises(RuntimeError), store.transaction():
        turn = store.add_turn("theo", session.id, "user", "I live in Boston", NOW)
        assert memory.remember(turn)
        raise RuntimeError("the reply failed")
    assert memory.items("theo") == [] and fts_hits(store, "boston") == []


def test_recall_ranks_the_relevant_fact_first(store: Store, memory: SQLiteMemory) -> None:
    talk = Talk(store, memory)
    for text in [
        "My name is Theo.", "I work as a nurse.", "My sister Maya lives in Boston.",
        "I love jazz and I hate mornings.", "I live in Los Angeles.", "My dog is called Rex.",
        "I have an interview on Tuesday.",
    ]:
        talk.say(text)
    expectations = {
        "what's my sister's name?": "User's sister is called Maya.",
        "How is Maya doing?": "User's sister is called Maya.",
        "what's my name?": "User's name is Theo.",
        "where do I live?": "User lives in Los Angeles.",
        "what do I do for work?": "User works as a nurse.",
        "what music do I like?": "User loves jazz.",
        "when is my interview?": "User has an interview on Tuesday 2026-12-01.",
        "the dog": "User's dog is called Rex.",
    }
    for question, best in expectations.items():
        found = memory.recall("theo", question)
        assert found and found[0].text == best, (question, [i.text for i in found])
        assert all(i.score > 0 for i in found)
        assert [i.score for i in found] == sorted((i.score for i in found), reverse=True)
    assert len(memory.recall("theo", "name work live love", limit=2)) == 2
    assert memory.recall("theo", "quantum chromodynamics") == []
    assert memory.recall("theo", "what is it?") == []  # only stop words: nothing to match
    assert memory.recall("theo", "jazz", limit=0) == []


HOSTILE = [
    '"', '""', "'", "AND OR NOT", "AND", "NOT jazz", "jazz OR", "c++", "foo:bar", "text:jazz",
    "*", "jazz*", "^jazz", "NEAR(jazz mornings)", "(jazz", "jazz)", "{text}: jazz", "-jazz",
    "+", "a AND (b OR", "\\", "\x00", "'; DROP TABLE facts; --", "🎷 jazz 🎷", "ǰázz", "日本語",
    "   ", "", "NEAR/2", "\"jazz\" \"", "keywords : love",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_fts_hostile_queries_never_raise(
    store: Store, memory: SQLiteMemory, query: str
) -> None:
    Talk(store, memory).say("I love jazz and I hate mornings")
    found = memory.recall("theo", query)
    assert all(i.user_id == "theo" for i in found)
    if "jazz" in query.lower() and "'" not in query:
        assert any("jazz" in i.text for i in found)
    assert memory.forget("theo", query + " zzzunmatched") == []
    assert len(memory.items("theo")) == 2


@given(st.text(max_size=80))
@settings(max_examples=200, deadline=None)
def test_any_text_makes_a_valid_fts_query(text: str) -> None:
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(text, keywords, tokenize='porter')")
        conn.execute("INSERT INTO t VALUES ('User loves jazz.', 'like')")
        for query in (fts.any_of(text), fts.all_of(text, column="text")):
            if query is not None:
                conn.execute("SELECT rowid FROM t WHERE t MATCH ?", (query,)).fetchall()
    conn.close()


def test_forget_by_id(store: Store, memory: SQLiteMemory) -> None:
    _, items = Talk(store, memory).say("I love jazz and I hate mornings")
    jazz = items[0]
    assert memory.forget("amy", jazz.id) == []  # not amy's
    assert memory.forget("theo", jazz.id) == [jazz]
    assert memory.forget("theo", jazz.id) == []
    assert [i.text for i in memory.items("theo")] == ["User hates mornings."]
    assert fts_hits(store, "jazz") == [] and memory.recall("theo", "jazz") == []
    assert fts_hits(store, "mornings") == [items[1].id]


def test_forget_by_words_needs_all_of_them(store: Store, memory: SQLiteMemory) -> None:
    talk = Talk(store, memory)
    talk.say("My sister Maya is great. I love jazz. I love jazz fusion. My name is Theo.")
    [name] = [i for i in memory.items("theo") if i.kind == "name"]
    # "name" is in the text of the name fact only (the sister fact has it as a keyword)
    assert memory.forget("theo", "name") == [name]
    removed = memory.forget("theo", "jazz fusion")
    assert [i.text for i in removed] == ["User loves jazz fusion."]
    assert [i.text for i in memory.forget("theo", "JAZZ")] == ["User loves jazz."]
    assert memory.forget("theo", "my the of") == []  # only stop words: forget nothing
    assert [i.text for i in memory.items("theo")] == ["User's sister is called Maya."]
    assert fts_hits(store, "jazz") == [] and fts_hits(store, "fusion") == []
    store.conn.execute("INSERT INTO facts_fts (facts_fts) VALUES ('integrity-check')")


def test_forget_takes_an_id_or_words(memory: SQLiteMemory) -> None:
    with pytest.raises(TypeError):
        memory.forget("theo", True)
    with pytest.raises(TypeError):
        memory.forget("theo", 1.5)  # type: ignore[arg-type]


def test_the_same_fact_is_stored_once_and_refreshed(store: Store, memory: SQLiteMemory) -> None:
    talk = Talk(store, memory)
    first_turn, [first] = talk.say("I love jazz")
    later_turn, [again] = talk.say("Honestly, I LOVE jazz.")
    assert again.id == first.id
    assert again.source_turn_id == later_turn.id != first_turn.id
    assert again.created_at > first.created_at
    assert [i.id for i in memory.items("theo")] == [first.id]
    assert fts_hits(store, "jazz") == [first.id]


def test_a_new_name_supersedes_the_old(store: Store, memory: SQLiteMemory) -> None:
    talk = Talk(store, memory)
    talk.say("My name is Theo and I love jazz.")
    talk.say("Actually, call me Ted.")
    assert {i.text for i in memory.items("theo")} == {"User's name is Ted.", "User loves jazz."}
    assert [i.text for i in memory.recall("theo", "what's my name")] == ["User's name is Ted."]
    assert [i.text for i in memory.history("theo")] == [
        "User's name is Theo.", "User loves jazz.", "User's name is Ted."
    ]
    talk.say("I'm Theo again, sorry.")  # back to the first: revived, Ted superseded
    names = [i.text for i in memory.items("theo") if i.kind == "name"]
    assert names == ["User's name is Theo."]


def test_a_custom_extractor_is_used(store: Store) -> None:
    class Shouty:
        def extract(self, text: str, now: datetime) -> list[Fact]:
            return [Fact("fact", f"User said something {len(text)} characters long.")]

    memory = SQLiteMemory(store, Shouty())
    _, items = Talk(store, memory).say("hello")
    assert [i.text for i in items] == ["User said something 5 characters long."]


def test_users_never_see_each_others_facts(store: Store, memory: SQLiteMemory) -> None:
    Talk(store, memory, "theo").say("My sister Maya loves jazz. I live in Boston.")
    Talk(store, memory, "amy").say("I live in Boston too. I love jazz.")
    for query in ["sister", "Maya", "Boston", "jazz", "live"]:
        assert all(i.user_id == "amy" for i in memory.recall("amy", query))
    assert memory.recall("amy", "Maya sister") == []
    theo_ids = {i.id for i in memory.items("theo")}
    for item_id in theo_ids:
        assert memory.forget("amy", item_id) == []
    assert memory.forget("amy", "Boston") != []
    assert {i.id for i in memory.items("theo")} == theo_ids


# -- property: isolation over random users and messages --------------------------------

USER_IDS = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zs", "Zl", "Zp")),
    min_size=1, max_size=64,
)
WORDS = st.text(alphabet=string.ascii_letters, min_size=3, max_size=10)
NAMES = WORDS.map(str.capitalize)
TEMPLATES = [
    "My name is {n}.", "My sister {n} lives in {w}.", "I love {w} and I hate {x}.",
    "I work at {n}.", "I live in {n}.", "I'm into {w}.", "{n} is my friend.",
    "I have a meeting with {n} tomorrow.", "{w} {x}: AND OR \"NOT\" {n}*",
]
MESSAGES = st.lists(
    st.tuples(st.sampled_from(TEMPLATES), NAMES, WORDS, WORDS).map(
        lambda t: t[0].format(n=t[1], w=t[2], x=t[3])
    ),
    min_size=1, max_size=4,
)


@given(users=st.lists(USER_IDS, min_size=2, max_size=3, unique=True),
       said=st.lists(MESSAGES, min_size=3, max_size=3), query=st.text(max_size=40))
@settings(max_examples=40, deadline=None)
def test_recall_is_isolated_per_user(users: list[str], said: list[list[str]], query: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "c.db") as store:
        memory = SQLiteMemory(store)
        own: dict[str, set[int]] = {}
        for user, messages in zip(users, said, strict=False):
            talk = Talk(store, memory, user)
            for text in messages:
                talk.say(text)
            own[user] = {i.id for i in memory.items(user)}
        everything = [w for messages in said for m in messages for w in m.split()]
        for user in users:
            for q in [query, " ".join(everything), *everything[:5]]:
                found = memory.recall(user, q, limit=50)
                assert all(i.user_id == user and i.id in own[user] for i in found)
            assert {i.id for i in memory.items(user)} == own[user]
