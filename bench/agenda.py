"""Agenda reading: reminders and plans from plain language, without the model.

    .venv/bin/python bench/agenda.py [--phrasings TOML] [--locomo JSON] [--misses N]

**Phrasings** (``bench/data/agenda_phrasings.toml``): each case is read by
:func:`companion.agenda.parse.find_item` at the fixed "now" it names (a wall
time in an IANA zone). A *dated* case (``kind`` reminder or plan) is exact
when the item has that kind and ``when`` is that wall time in that zone to the
minute, with the same ``all_day`` and, when given, the same ``rrule``.
*Exact-datetime accuracy* is exact / dated cases. A *question* case is right
when the item is a reminder with ``question`` set; a *none* case when nothing
is returned. *All cases* counts every case right by its own rule.

**LoCoMo** (``../shared/benchdata/locomo/locomo_dev.json``): every turn of every
session (both speakers are people talking; the turn's ``text``, not the photo
caption) is read at its session's date (``session_<n>_date_time``, UTC). None
of them asks for a reminder, so any reminder (set or asked back) is a *false
reminder*; printed per 1,000 turns. *Plans per 1,000 turns* shows how many
ordinary turns become plans. *Plans with dates caught*: of the hand-labelled
turns in ``bench/data/locomo_future_plans.toml`` (a future event of the
speaker's, with a day), how many become a plan.

**Baseline: the other parser.** The same reading (:func:`find_item` with the
same request and plan rules) with its date and time part done by
``dateparser.search.search_dates`` (``PREFER_DATES_FROM=future``, the case's
"now" as ``RELATIVE_BASE``, month-first dates in an American zone) instead of
the project's :func:`companion.memory.times.find_moments`. A phrase it finds
counts as carrying a time when it holds a clock time, a part of the day or a
duration, as a day otherwise. **Parse time** is the mean wall time of one
``find_item`` call over all LoCoMo turns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from companion.agenda.ask import is_agenda_question
from companion.agenda.model import Draft  # noqa: E402
from companion.agenda.parse import Finder, find_item  # noqa: E402
from companion.memory.times import Moment, find_moments, month_first  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PHRASINGS = ROOT / "bench/data/agenda_phrasings.toml"
LABELLED = ROOT / "bench/data/locomo_future_plans.toml"
LOCOMO = ROOT.parent / "shared/benchdata/locomo/locomo_dev.json"

_TIMED = re.compile(r"\d\s*(?:a\.?m|p\.?m)\b|\d:\d\d|\b(?:noon|midnight|midday|tonight|morning|"
                    r"evening|afternoon|night|minutes?|mins?|hours?|hrs?)\b|\bat\s+\d", re.I)
_PAST = re.compile(r"\b(?:ago|last|yesterday)\b", re.I)


def dateparser_finder(text: str, now: datetime) -> list[Moment]:
    """Date and time phrases by ``dateparser.search.search_dates``, as moments."""
    from dateparser.search import search_dates

    settings: Any = {
        "RELATIVE_BASE": now.replace(tzinfo=None),
        "PREFER_DATES_FROM": "future",
        "DATE_ORDER": "MDY" if month_first(now) else "DMY",
        "RETURN_AS_TIMEZONE_AWARE": False,
    }
    found = search_dates(text, languages=["en"], settings=settings) or []
    moments: list[Moment] = []
    at = 0
    for phrase, when in found:
        start = text.find(phrase, at)
        start = max(start, 0)
        at = start + len(phrase)
        timed = _TIMED.search(phrase) is not None
        local = when.replace(tzinfo=now.tzinfo)
        if not timed:
            local = local.replace(hour=0, minute=0, second=0, microsecond=0)
        moments.append(Moment(start, start + len(phrase), phrase, local.replace(second=0,
                                                                               microsecond=0),
                              dated=not timed or local.date() != now.date(), timed=timed,
                              past=_PAST.search(phrase) is not None,
                              at=local.time() if timed else None))
    return moments


@dataclass
class Score:
    dated: int = 0
    exact: int = 0
    questions: int = 0
    asked: int = 0
    negatives: int = 0
    quiet: int = 0
    misses: list[str] | None = None


def _right(case: dict[str, Any], draft: Draft | None, zone: ZoneInfo) -> bool:
    kind = case["kind"]
    if kind == "none":
        return draft is None
    if kind == "question":
        return draft is not None and draft.kind == "reminder" and draft.question is not None
    if draft is None or draft.kind != kind or draft.when is None or draft.question:
        return False
    said = draft.when.astimezone(zone).replace(tzinfo=None)
    return (said.strftime("%Y-%m-%dT%H:%M") == case["when"]
            and draft.all_day == case.get("all_day", False)
            and ("rrule" not in case or draft.rrule == case["rrule"]))


def phrasings(path: Path, finder: Finder) -> Score:
    data = tomllib.loads(path.read_text())
    nows = {name: datetime.fromisoformat(at).replace(tzinfo=ZoneInfo(zone))
            for name, (at, zone) in data["nows"].items()}
    score = Score(misses=[])
    for case in data["case"]:
        now = nows[case.get("now", "paris")]
        assert isinstance(now.tzinfo, ZoneInfo)
        draft = find_item(case["text"], now, finder=finder)
        right = _right(case, draft, now.tzinfo)
        kind = case["kind"]
        if kind == "none":
            score.negatives += 1
            score.quiet += right
        elif kind == "question":
            score.questions += 1
            score.asked += right
        else:
            score.dated += 1
            score.exact += right
        if not right and score.misses is not None:
            got = "None"
            if draft is not None:
                at = f"{draft.when.astimezone(now.tzinfo):%a %Y-%m-%d %H:%M}" if draft.when else "-"
                got = (f"{draft.kind} {at} all_day={draft.all_day} rrule={draft.rrule}"
                       f" q={bool(draft.question)} what={draft.what!r}")
            score.misses.append(f"{case['text']!r}: want {kind} {case.get('when', '')}"
                                f" {case.get('rrule', '')}; got {got}")
    return score


def _session_time(text: str) -> datetime:
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def locomo(path: Path, labelled: Path, finder: Finder) -> dict[str, float]:
    data = json.loads(path.read_text())
    wanted = {(sid, did) for sid, did, _ in tomllib.loads(labelled.read_text())["turns"]}
    turns = reminders = plans = caught = questions = 0
    spent = 0.0
    for conversation in data:
        sessions = conversation["conversation"]
        for key, value in sessions.items():
            if not (key.startswith("session_") and isinstance(value, list)):
                continue
            now = _session_time(sessions[f"{key}_date_time"])
            for turn in value:
                started = time.perf_counter()
                draft = find_item(turn["text"], now, finder=finder)
                spent += time.perf_counter() - started
                turns += 1
                reminders += draft is not None and draft.kind == "reminder"
                questions += is_agenda_question(turn["text"])
                plans += draft is not None and draft.kind == "plan"
                if (conversation["sample_id"], turn["dia_id"]) in wanted:
                    caught += draft is not None and draft.kind == "plan"
    return {"turns": turns, "false_reminders": reminders, "agenda_questions": questions,
            "plans": plans, "caught": caught,
            "labelled": len(wanted), "ms_per_turn": 1000 * spent / max(turns, 1)}


def report(name: str, finder: Finder, args: argparse.Namespace) -> None:
    score = phrasings(args.phrasings, finder)
    everything = score.dated + score.questions + score.negatives
    print(f"\n== {name}")
    print(f"exact datetimes: {score.exact}/{score.dated} = {score.exact / score.dated:.1%}")
    print(f"questions asked back: {score.asked}/{score.questions};"
          f" negatives left alone: {score.quiet}/{score.negatives};"
          f" all cases right: {score.exact + score.asked + score.quiet}/{everything}")
    if args.locomo.exists():
        found = locomo(args.locomo, LABELLED, finder)
        per_k = 1000 / max(found["turns"], 1)
        print(f"LoCoMo dev, {found['turns']:.0f} turns: false reminders"
              f" {found['false_reminders'] * per_k:.2f} per 1,000 ({found['false_reminders']:.0f});"
              f" taken as agenda questions {found['agenda_questions']:.0f};"
              f" plans {found['plans'] * per_k:.1f} per 1,000;"
              f" plans with dates caught {found['caught']:.0f}/{found['labelled']:.0f};"
              f" parse time {found['ms_per_turn']:.2f} ms per message")
    else:
        print(f"(LoCoMo not found at {args.locomo}: skipped)")
    for miss in (score.misses or [])[: args.misses]:
        print(f"  miss: {miss}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phrasings", type=Path, default=PHRASINGS)
    parser.add_argument("--locomo", type=Path, default=LOCOMO)
    parser.add_argument("--misses", type=int, default=20, help="misses to print per parser")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args(argv)
    print(f"machine: {platform.platform()}, python {platform.python_version()},"
          f" {os.cpu_count()} cpus")
    parsers: list[tuple[str, Callable[[str, datetime], list[Moment]]]] = [
        ("ours: companion.memory.dates + times", find_moments)]
    if not args.no_baseline:
        import dateparser

        parsers.append((f"baseline: dateparser {dateparser.__version__} search_dates",
                        dateparser_finder))
    for name, finder in parsers:
        report(name, finder, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
