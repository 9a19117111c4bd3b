"""Extraction coverage: how much of what people say about themselves the memory keeps.

``python bench/extraction.py [MSC_FILE] [--limit N] [--spc CSV] [--misses N]``

**MSC** (``msc_dialogue/session_3/valid.txt``; ``test.txt`` is the held-out part):
for each episode, Speaker 1 is the user. Their turns (from both
``previous_dialogs`` and ``dialog``, in order) go through the real memory path
(:meth:`SQLiteMemory.remember` on a stored user turn, so the extractor the
memory uses by default, with its store, keys and superseding) into a fresh
store; then the user's current facts are read back (:meth:`SQLiteMemory.items`).
The gold is ``personas[0]``, the crowdworkers' summary of what Speaker 1
revealed, split into sentences.

**Synthetic-Persona-Chat** (``--spc``): the same with ``User 1``'s lines of each
conversation and ``user 1 personas`` as the gold.

**The rule.** A gold sentence's *key words* are its lower-case words
(``[a-z0-9]+``, so "I've" gives "i" and "ve") minus stopwords (pronouns,
auxiliaries, articles, prepositions, conjunctions, a few fillers), each
stemmed: one suffix of ``ing``/``ed``/``es``/``s``/``ly`` dropped where three
letters remain, a final ``e`` dropped, a doubled final consonant made single,
a final ``y`` made ``i`` ("likes", "liked", "like" -> "lik"; "studies",
"study" -> "studi"). A gold sentence is *covered* when one single stored fact
holds at least half of its key words (rounded up, at least one). Sentences
without key words are not counted. **Coverage** is covered / counted, over all
episodes. **Facts per turn** tells how much is stored to get there (a store
that kept every sentence would cover much and recall badly).

The **baseline** is the extractor before this work, at git commit
:data:`BASELINE` (names, people and plans only; its modules read with
``git show`` into a temporary package), run through the same memory path in the
same run.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from companion.memory.base import Extractor
from companion.memory.facts import RuleExtractor
from companion.memory.sqlite_memory import SQLiteMemory
from companion.memory.store import Store

ROOT = Path(__file__).resolve().parent.parent
MSC_DEV = ROOT.parent / "shared/benchdata/msc/msc_dialogue/session_3/valid.txt"
SPC_DEV = ROOT.parent / "shared/benchdata/synthetic_persona_chat/Synthetic-Persona-Chat_valid.csv"
#: The commit whose extractor is the baseline (the last one before it kept work,
#: relationships, health, pets, hobbies, likes and places).
BASELINE = "2ce5e0d"
#: The extractor's modules, read from git at BASELINE for the baseline.
EXTRACTOR_MODULES = ("lexicon", "grammar", "dates", "rules", "facts")
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

_STOPWORD_TEXT = """
    i me my mine myself we us our ours you your yours he him his she her hers it its they
    them their theirs this that these those who whom whose which what when where why how
    a an the and or but so if then than as of at by for from in into on onto to with
    without about over under up down out off too very just also really still even only
    am is are was were be been being do does did doing have has had having will would
    shall should can could may might must ll ve re d s t m not no nor don didn doesn isn
    wasn aren weren haven hasn won wouldn couldn shouldn can't there here all any some
    own same other such again ever one lot lots thing things
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def stem(word: str) -> str:
    """A crude stem (see the module docstring): enough to match "likes" with "liked"."""
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiou":
        word = word[:-1]
    if word.endswith("y") and len(word) > 3:
        word = word[:-1] + "i"
    return word


def key_words(text: str) -> set[str]:
    """The stemmed content words of ``text``."""
    return {stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def covered(gold: str, facts: list[set[str]]) -> bool:
    """Whether one fact (as key words) holds at least half of ``gold``'s key words."""
    keys = key_words(gold)
    need = max(1, (len(keys) + 1) // 2)
    return any(len(keys & fact) >= need for fact in facts)


def gold_sentences(items: list[str]) -> list[str]:
    """The persona items split into sentences; those without key words dropped."""
    out = []
    for item in items:
        out += [s.strip() for s in _SENTENCE.split(item) if key_words(s)]
    return out


@dataclass
class Episode:
    """One user's lines (grouped by session) and the gold sentences about them."""

    sessions: list[list[str]]
    gold: list[str]


@dataclass
class Tally:
    episodes: int = 0
    gold: int = 0
    covered: int = 0
    turns: int = 0
    facts: int = 0
    misses: list[tuple[str, list[str]]] = field(default_factory=list)

    def result(self) -> dict[str, Any]:
        return {
            "coverage": self.covered / self.gold if self.gold else float("nan"),
            "covered": self.covered,
            "gold": self.gold,
            "episodes": self.episodes,
            "turns": self.turns,
            "facts": self.facts,
            "facts_per_turn": self.facts / self.turns if self.turns else float("nan"),
        }


def msc_episodes(path: Path, limit: int | None = None, speaker: int = 1) -> Iterator[Episode]:
    """MSC session-3 episodes, with ``speaker``'s (1 or 2) turns and gold."""
    with Path(path).open(encoding="utf-8") as lines:
        for n, line in enumerate(lines):
            if limit is not None and n >= limit:
                return
            data = json.loads(line)
            sessions = [
                [t["text"] for i, t in enumerate(prev["dialog"]) if i % 2 == speaker - 1]
                for prev in data["previous_dialogs"]
            ]
            sessions.append([t["text"] for t in data["dialog"]
                             if t.get("id") == f"Speaker {speaker}"])
            yield Episode(sessions, gold_sentences(data["personas"][speaker - 1]))


def spc_episodes(path: Path, limit: int | None = None) -> Iterator[Episode]:
    """Synthetic-Persona-Chat conversations, with User 1's lines and persona."""
    with Path(path).open(encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.DictReader(f)):
            if limit is not None and n >= limit:
                return
            lines = [line.split(":", 1)[1].strip()
                     for line in row["Best Generated Conversation"].splitlines()
                     if line.startswith("User 1:")]
            yield Episode([lines], gold_sentences(row["user 1 personas"].splitlines()))


def coverage(episodes: Iterator[Episode], extractor: Extractor | None = None,
             *, keep_misses: int = 0) -> dict[str, Any]:
    """Run every episode through a fresh user's memory and score it (see the docstring)."""
    tally = Tally()
    shm = Path("/dev/shm")
    with (tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp,
          Store.open(Path(tmp) / "bench.db") as store):
        memory = SQLiteMemory(store, extractor)
        for n, episode in enumerate(episodes):
            user = f"user{n}"
            now = START
            for lines in episode.sessions:
                session = store.start_session(user, now)
                for text in lines:
                    now += timedelta(minutes=1)
                    memory.remember(store.add_turn(user, session.id, "user", text, now))
                    tally.turns += 1
                store.end_session(session.id, now)
                now += timedelta(days=2)
            facts = [item.text for item in memory.items(user)]
            fact_keys = [key_words(f) for f in facts]
            tally.episodes += 1
            tally.facts += len(facts)
            for gold in episode.gold:
                tally.gold += 1
                if covered(gold, fact_keys):
                    tally.covered += 1
                elif len(tally.misses) < keep_misses:
                    tally.misses.append((gold, facts))
    result = tally.result()
    if keep_misses:
        result["misses"] = tally.misses
    return result


def msc_coverage(path: Path | str = MSC_DEV, limit: int | None = None) -> dict[str, Any]:
    """Coverage of Speaker 1's MSC persona sentences by the memory's current extractor:
    ``{"coverage", "covered", "gold", "episodes", "turns", "facts", "facts_per_turn"}``."""
    return coverage(msc_episodes(Path(path), limit))


def spc_coverage(path: Path | str = SPC_DEV, limit: int | None = None) -> dict[str, Any]:
    """The same for User 1 of Synthetic-Persona-Chat."""
    return coverage(spc_episodes(Path(path), limit))


def head_extractor() -> Extractor:
    """The rule extractor as it was at :data:`BASELINE`, loaded from ``git show`` into a temporary
    package (its imports of its sibling modules rewritten to point there)."""
    tmp = Path(tempfile.mkdtemp(prefix="extraction_head_"))
    package = tmp / "_extractor_head"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in EXTRACTOR_MODULES:
        source = subprocess.run(
            ["git", "show", f"{BASELINE}:companion/memory/{name}.py"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
        for other in EXTRACTOR_MODULES:
            source = source.replace(f"companion.memory.{other}", f"_extractor_head.{other}")
        source = source.replace("from companion.memory import rules",
                                "from _extractor_head import rules")
        (package / f"{name}.py").write_text(source)
    sys.path.insert(0, str(tmp))
    try:
        module = importlib.import_module("_extractor_head.facts")
    finally:
        sys.path.remove(str(tmp))
    extractor: Extractor = module.RuleExtractor()
    return extractor


def _line(label: str, r: dict[str, Any]) -> str:
    return (f"  {label:<9} coverage {100 * r['coverage']:5.1f}%  ({r['covered']}/{r['gold']} "
            f"sentences, {r['episodes']} episodes, {r['facts_per_turn']:.2f} facts per turn)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("msc", nargs="?", type=Path, default=MSC_DEV)
    parser.add_argument("--limit", type=int, default=None, help="episodes per data set")
    parser.add_argument("--spc", type=Path, default=SPC_DEV,
                        help="Synthetic-Persona-Chat CSV ('' to skip)")
    parser.add_argument("--misses", type=int, default=0, help="print this many misses")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args(argv)
    sets: list[tuple[str, Any]] = [("MSC", lambda: msc_episodes(args.msc, args.limit))]
    if str(args.spc) not in ("", ".") and args.spc.exists():
        sets.append(("SPC", lambda: spc_episodes(args.spc, args.limit)))
    extractors: list[tuple[str, Extractor]] = [("now", RuleExtractor())]
    if not args.no_baseline:
        extractors.append((BASELINE, head_extractor()))
    print(f"extraction coverage (rule: >= half of a gold sentence's key words in one fact); "
          f"MSC file {args.msc}")
    for set_name, episodes in sets:
        print(f"{set_name}:")
        for label, extractor in extractors:
            started = time.perf_counter()
            r = coverage(episodes(), extractor, keep_misses=args.misses if label == "now" else 0)
            print(_line(label, r) + f"  [{time.perf_counter() - started:.1f} s]")
            for gold, facts in r.get("misses", []):
                print(f"    MISS {gold!r}\n      facts: {facts}")


if __name__ == "__main__":
    main()
