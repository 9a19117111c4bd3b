"""Conversation quality on public persona chats: does she talk like a person, not a parrot?

    .venv/bin/python bench/conversation.py ../shared/benchdata [--model NAME]
        [--conversations N] [--turns T] [--no-baseline] [--coverage N]

PATH is a Synthetic-Persona-Chat CSV, an MSC ``.txt`` (JSON lines), or a folder
holding them (the ``benchdata`` folder: both, alternating). The **user side** of
each conversation (its first speaker's lines: SPC's ``User 1``, MSC's
``Speaker 1`` of the current session) talks to the companion through the real
turn (``Companion.say``: real memory, the default persona, the configured
sampling and reply guard), each conversation a fresh user in a fresh store.
After the last line the user asks "What do you remember about me?".

In the same run the same lines go to the **plain model**, the baseline: the
chat template, the one-line system prompt "You are Samantha, a warm
companion.", default sampling (temperature 0.7, top-p 0.9, nothing else), the
conversation so far as history, no memory.

Each reply is scored by plain rules (:mod:`companion.replycheck`):

- *echo*: it holds a run of 6 or more of the user's last message's words in
  order, or, for a message of 5 words or more, at least 60% of that message's
  words as a common subsequence;
- *identity*: it states one of the user's own persona sentences in the first
  person (a run of 5 or more of its words, with an "I", "my" or "me" in it or in
  the two words before it, and no "you" there), or she introduces herself
  ("I'm Samantha") after the first turn;
- *loop*: a run of 4 words repeats inside it, or it stopped at the token limit
  (the hard limit: a reply that ran a few tokens past ``max_tokens`` to end its
  sentence, and ended there, did not);
- *long*: more than 4 sentences;
- *assistant*: it holds a help-desk phrase (``ASSISTANT_PHRASES``: "as an AI",
  "here to help", "important to remember", "how can I assist", "let me know
  if", "feel free to", ...);
- *probe*: of the user's persona facts that the user actually stated in the
  conversation (at least half of the fact's key words appear in the user's
  lines), the share whose key words (at least half) come back in the answer to
  the probe question. Key words and their stems follow ``bench/extraction.py``.
- first-token time (``say()`` to the first text shown), p50 and p95; the share
  of replies where the reply guard sampled again, and where it still failed.

Rates are over all replies but the probes. With ``--coverage N`` the run also
prints MSC extraction coverage over N episodes (``bench/extraction.py``).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from extraction import key_words  # noqa: E402
from memory_common import machine  # noqa: E402

from companion import Companion, GenerationParams, Message  # noqa: E402
from companion.replycheck import (  # noqa: E402
    claims,
    help_desk,
    introduces_herself,
    is_echo,
    repeats,
    sentences,
)

PROBE = "What do you remember about me?"
BASELINE_SYSTEM = "You are Samantha, a warm companion."
RULES = ("echo", "identity", "loop", "long", "assistant")


@dataclass
class Chat:
    name: str
    lines: list[str]
    persona: list[str]


@dataclass
class Tally:
    replies: int = 0
    hits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))
    first_token: list[float] = field(default_factory=list)
    probe_stated: int = 0
    probe_back: int = 0
    resampled: int = 0
    failed: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)

    def rate(self, rule: str) -> float:
        return self.hits[rule] / max(self.replies, 1)


# -- data --------------------------------------------------------------------


def spc_chats(path: Path) -> Iterator[Chat]:
    with path.open(encoding="utf-8", newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            lines = [
                line.split(":", 1)[1].strip()
                for line in row["Best Generated Conversation"].splitlines()
                if line.startswith("User 1:") and line.split(":", 1)[1].strip()
            ]
            persona = [p.strip() for p in row["user 1 personas"].splitlines() if p.strip()]
            yield Chat(f"spc-{i}", lines, persona)


def msc_chats(path: Path) -> Iterator[Chat]:
    with path.open(encoding="utf-8") as f:
        for i, raw in enumerate(f):
            episode = json.loads(raw)
            lines = [t["text"].strip() for t in episode["dialog"] if t.get("id") == "Speaker 1"]
            persona = list(episode["personas"][0]) + list(episode.get("init_personas", [[]])[0])
            yield Chat(f"msc-{i}", [x for x in lines if x], persona)


def chats(path: Path) -> Iterator[Chat]:
    if path.is_dir():
        spc = sorted(path.rglob("*Persona-Chat*valid*.csv"))
        msc = sorted(path.rglob("session_3/valid.txt"))
        sources = [spc_chats(p) for p in spc] + [msc_chats(p) for p in msc]
        while sources:
            for source in list(sources):
                item = next(source, None)
                if item is None:
                    sources.remove(source)
                else:
                    yield item
    elif path.suffix == ".csv":
        yield from spc_chats(path)
    else:
        yield from msc_chats(path)


# -- scoring -----------------------------------------------------------------


def score(tally: Tally, reply: str, user: str, chat: Chat, turn: int, ended: str) -> None:
    tally.replies += 1
    found = {
        "echo": is_echo(reply, user),
        "identity": claims(reply, chat.persona) or (turn > 0 and introduces_herself(
            reply, "Samantha")),
        "loop": repeats(reply, 4) or ended == "length",
        "long": len(sentences(reply)) > 4,
        "assistant": help_desk(reply) is not None,
    }
    for rule, hit in found.items():
        if hit:
            tally.hits[rule] += 1
            examples = tally.examples.setdefault(rule, [])
            if len(examples) < 2:
                examples.append(f"you> {user[:90]}\n      she> {reply[:160]}")


def stated(chat: Chat, lines: list[str]) -> list[str]:
    said = set().union(*(key_words(line) for line in lines)) if lines else set()
    out = []
    for fact in chat.persona:
        keys = key_words(fact)
        if keys and len(keys & said) * 2 >= len(keys):
            out.append(fact)
    return out


def probe_score(tally: Tally, answer: str, facts: list[str]) -> None:
    back = key_words(answer)
    tally.probe_stated += len(facts)
    tally.probe_back += sum(1 for f in facts if len(key_words(f) & back) * 2 >= len(key_words(f)))


# -- running -----------------------------------------------------------------


def run_companion(
    llm: Any, chat: Chat, turns: int, seed: int, tally: Tally, persona: Any = None
) -> list[str]:
    lines = chat.lines[:turns]
    transcript = []
    with tempfile.TemporaryDirectory() as home:
        c = Companion.open(user="guest", model=llm, home=home, seed=seed, persona=persona)
        try:
            for turn, line in enumerate([*lines, PROBE]):
                started = time.perf_counter()
                reply = c.say(line)
                first = None
                for _chunk in reply:
                    if first is None:
                        first = time.perf_counter() - started
                text = reply.text()
                stats = getattr(llm, "last_stats", None)
                ended = stats.stop_reason if stats else ""
                outcome = c.last_guard
                marks = ""
                if outcome is not None and (outcome.problems or outcome.trimmed):
                    marks = f"  [guard: {', '.join(outcome.problems) or '-'}" + (
                        ", failed" if outcome.failed else "") + (
                        ", trimmed" if outcome.trimmed else "") + "]"
                transcript.append(f"you> {line}\nshe> {text}{marks}")
                if line is PROBE:
                    probe_score(tally, text, stated(chat, lines))
                    continue
                tally.first_token.append(first if first is not None else 0.0)
                if outcome is not None:
                    tally.resampled += bool(outcome.resampled)
                    tally.failed += outcome.failed
                score(tally, text, line, chat, turn, ended)
        finally:
            c.close()
    return transcript


def run_plain(llm: Any, chat: Chat, turns: int, seed: int, tally: Tally) -> None:
    lines = chat.lines[:turns]
    history: list[Message] = [Message("system", BASELINE_SYSTEM)]
    if hasattr(llm, "reset"):
        llm.reset()
    for turn, line in enumerate([*lines, PROBE]):
        history.append(Message("user", line))
        params = GenerationParams(max_tokens=200, temperature=0.7, top_p=0.9, seed=seed + turn)
        started = time.perf_counter()
        first = None
        parts = []
        for chunk in llm.stream(history, params):
            if first is None:
                first = time.perf_counter() - started
            parts.append(chunk)
        text = "".join(parts).strip()
        history.append(Message("assistant", text))
        stats = getattr(llm, "last_stats", None)
        if line is PROBE:
            probe_score(tally, text, stated(chat, lines))
            continue
        tally.first_token.append(first if first is not None else 0.0)
        score(tally, text, line, chat, turn, stats.stop_reason if stats else "")


def report(label: str, t: Tally) -> str:
    ft = sorted(t.first_token) or [0.0]
    p95 = ft[min(len(ft) - 1, int(round(0.95 * (len(ft) - 1))))]
    rates = "  ".join(f"{r} {100 * t.rate(r):5.1f}%" for r in RULES)
    probe = 100 * t.probe_back / max(t.probe_stated, 1)
    guard = (
        f"  guard resampled {100 * t.resampled / max(t.replies, 1):.0f}% "
        f"still failed {100 * t.failed / max(t.replies, 1):.0f}%"
        if label == "companion" else ""
    )
    return (
        f"{label:>9}: {t.replies} replies  {rates}  probe {probe:5.1f}% "
        f"({t.probe_back}/{t.probe_stated})  first token p50 {1000 * statistics.median(ft):.0f} ms"
        f" p95 {1000 * p95:.0f} ms{guard}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", type=Path)
    ap.add_argument("--model", default=None, help="default: the configured model")
    ap.add_argument("--conversations", type=int, default=8)
    ap.add_argument("--turns", type=int, default=6, help="user lines per conversation")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--coverage", type=int, default=0, help="MSC extraction episodes")
    ap.add_argument("--show", type=int, default=1, help="transcripts to print")
    ap.add_argument("--no-examples", action="store_true",
                    help="the default persona without its example dialogue")
    args = ap.parse_args(argv)

    from companion.config import load_config
    from companion.llm.loader import load_llm

    config = load_config()
    name = args.model or config.model
    llm = load_llm(name, threads=args.threads, quantize=config.quantize)
    print(f"model {name}; {machine()}")
    from dataclasses import replace

    from companion.memory.embed import default_embedder
    from companion.persona import load_persona

    persona = load_persona(config.persona)
    if args.no_examples:
        persona = replace(persona, mes_example="")
    embedder = default_embedder()
    if embedder is not None:  # loaded once, before any timing
        embedder.embed(["warm up"])
    ours, plain = Tally(), Tally()
    shown = 0
    for i, chat in enumerate(chats(args.path)):
        if i >= args.conversations:
            break
        if len(chat.lines) < 2:
            continue
        transcript = run_companion(
            llm, chat, args.turns, seed=1000 + i, tally=ours, persona=persona
        )
        if shown < args.show:
            print(f"\n--- {chat.name} (companion) ---\n" + "\n".join(transcript))
            shown += 1
        if not args.no_baseline:
            run_plain(llm, chat, args.turns, seed=1000 + i, tally=plain)
        print(f"[{i + 1}/{args.conversations}] {chat.name}: " + report("companion", ours),
              flush=True)
    print()
    print(report("companion", ours))
    if not args.no_baseline:
        print(report("plain", plain))
    for rule, examples in ours.examples.items():
        for e in examples:
            print(f"  {rule}: {e}")
    if args.coverage:
        from extraction import msc_coverage

        cov = msc_coverage(limit=args.coverage)
        print(f"MSC extraction coverage: {cov}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
