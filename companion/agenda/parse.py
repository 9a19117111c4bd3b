"""Reminders and plans from plain language, without the model.

:func:`find_item` reads one user message at ``now`` (aware, in the user's
zone) and returns a :class:`~companion.agenda.model.Draft` or None:

- a **reminder** when the user asks for one: "remind me to call Maya on Friday
  at 6", "don't let me forget the rent on the 1st", "every Monday at 9 remind
  me to water the plants", "in 20 minutes remind me to check the oven", "set a
  reminder for 6pm to call mom", "can you remind me ...";
- a **plan** stated in passing, with a day or a time still ahead: "I have a
  dentist appointment next Tuesday at 3pm", "the interview is on the 14th",
  "my sister arrives Friday evening", "we're flying to Lisbon on March 3rd";
- None for everything else: questions, past events, hypotheticals ("if",
  "would", "maybe"), habits ("I always go running on Mondays"), "it reminds me
  of ...", a plan said for "today" without a time.

Dates and times are read by the project's one date parser
(:mod:`companion.memory.dates` and :mod:`companion.memory.times`, where the
conventions are listed: "tonight" 20:00, "this evening" 19:00, "noon" 12:00,
"midnight" 00:00 of the next day, "morning" 09:00, "afternoon" 15:00, "end of
the day" 17:00, a bare hour 1-7 is pm). Here: **a reminder with a day but no
time is set for 09:00 that day** (``all_day`` False); a plan with only a day is
``all_day`` on that day (``when`` is its start). A recurrence ("every Monday",
"daily", "on the first of every month") becomes an RRULE and ``when`` its first
occurrence after ``now``, at the time said, else at 09:00.

A request that cannot be set as said comes back with ``question`` (wording in
:data:`QUESTIONS`): a date that does not exist ("31 February"), a time already
past ("remind me yesterday"), a bare hour whose evening has passed ("at 7" at
20:00), a reminder with no time at all, or today without a time after 09:00.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, time, timedelta

from companion.agenda.model import Draft
from companion.agenda.recur import find_rule, next_occurrence
from companion.errors import InputError
from companion.memory.times import Moment, find_moments

#: What she asks back, by reason. ``{about}`` (" to call Maya", " about the rent" or
#: nothing), ``{phrase}`` and ``{hour}`` are filled in.
QUESTIONS = {
    "no_such_date": "There is no {phrase}. Which day did you mean?",
    "past": "That time has already passed. When should I remind you{about}?",
    "ambiguous": "Do you mean {hour} tomorrow morning or {hour} tomorrow evening?",
    "no_time": "When should I remind you{about}?",
    "today_time": "What time today should I remind you{about}?",
}
#: Read only this much of a message (a request is a sentence, not a file).
MAX_CHARS = 4000
#: When a reminder said with a day but no time goes off.
DEFAULT_TIME = time(9)

Finder = Callable[[str, datetime], list[Moment]]

_I = re.IGNORECASE
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_SENTENCE = re.compile(r"[^.!?;\n]+[.!?;]*")
_TRIGGER = re.compile(
    r"\b(?:(?:can|could|would|will)\s+(?:you|u)\s+(?:please\s+|pls\s+|plz\s+)?)?"
    r"(?:remind\s+me|(?:don'?t|do\s+not|dont)\s+let\s+me\s+forget"
    r"|(?:set|add|create|make|put\s+in|schedule)\s+(?:me\s+)?(?:a|an)\s+reminder"
    r"|help\s+me\s+remember|make\s+sure\s+i\s+(?:don'?t\s+forget|remember))\b"
    r"|^\s*reminder\b:?",
    _I,
)
_WEAK_TRIGGER = re.compile(r"\b(?:ping|nudge|alert|buzz)\s+me\b", _I)
_NOT_A_REQUEST = re.compile(
    r"\b(?:don'?t|do\s+not|never|stop|no\s+need\s+to)\s+(?:you\s+)?remind\s+me\b"
    r"|\bremind\s+me\s+(?:of|what|who|how|why|where|which|whether|if|when\s+(?:i|we|you)"
    r"\s+(?:said|told|did|was|were|met|talked))\b",
    _I,
)
_QUESTION_START = re.compile(
    r"^\s*(?:what|when|where|who|why|how|which|did|do|does|are|is|was|were|have|has|had|"
    r"can|could|would|will|should|shall|may|might|am|isn't|aren't|didn't|doesn't)\b",
    _I,
)
_HYPOTHETICAL = re.compile(
    r"\b(?:if|would|could|might|maybe|perhaps|i\s+wish|wish\s+i|hope|hoping|hopefully|unless|imagine|"
    r"suppose|whether|in\s+case|probably|possibly|someday|dream\w*|wonder\w*)\b",
    _I,
)
#: Goodbyes, not plans: "I'll talk to you tomorrow", "see you on Friday".
_SIGN_OFF = re.compile(
    r"\b(?:talk|speak|chat|see|catch\s+up|catch|text|write)\s+(?:to\s+|with\s+)?(?:you|ya|u)\b"
    r"|\b(?:bye|goodbye|good\s+night|night\s+night)\b",
    _I,
)
_HABIT = re.compile(
    r"\b(?:always|usually|often|normally|generally|typically|sometimes|"
    r"never|every|each|most|mondays|tuesdays|wednesdays|thursdays|fridays|"
    r"saturdays|sundays|weekends)\b",
    _I,
)
_PAST = re.compile(
    r"\b(?:was|were|had|did|went|came|made|took|saw|met|left|ago|used\s+to|"
    r"yesterday|last|already|finished|just\s+\w+ed)\b",
    _I,
)
_PRESENT_PERFECT = re.compile(
    r"\b(?:i|we)(?:'ve|\s+have)\s+(?:just\s+)?(?:been|\w+ed|done|"
    r"seen|had|gone|got\s+(?:back|home))\b",
    _I,
)
_ED = re.compile(r"\b[a-z]{3,}ed\b", _I)
#: Words ending in -ed that do not put a plan in the past.
_NOT_PAST = frozenset(
    [
        "scheduled",
        "booked",
        "planned",
        "supposed",
        "excited",
        "interested",
        "married",
        "tired",
        "need",
        "needed",
        "red",
        "bed",
        "shed",
        "feed",
        "seed",
        "speed",
        "wed",
        "freed",
        "indeed",
    ]
)
#: Words before "remind me" that make it a statement, not a request ("they
#: remind me to slow down", "a painting to remind me").
_NOT_ASKING = re.compile(
    r"\b(?:they|it|these|those|this|that|he|she|we|which|who|to|always|"
    r"often|still|also|really|things|moments|people|memories)\s*$",
    _I,
)
_DET = r"(?:a|an|my|our|the|this|that|his|her|their|some|one|another)"
_NOT_ING = [
    "feeling",
    "thinking",
    "doing",
    "trying",
    "hoping",
    "wondering",
    "loving",
    "enjoying",
    "looking",
    "glad",
    "sorry",
    "happy",
    "sure",
    "excited",
    "nervous",
    "so",
    "really",
    "just",
    "still",
    "also",
    "not",
]
#: A word that may stand between "I" and the verb: "I also have...", "we still need to...".
_ADV = r"(?:\s+(?:also|still|just|really|actually|finally|now|then|already|both|all))?"
_PLANS: list[tuple[str, re.Pattern[str]]] = [
    (kind, re.compile(pattern, _I))
    for kind, pattern in [
        (
            "have",
            rf"(?:\b(?:i|we)\s*(?:'ve\s+got|'ve)|\b(?:i|we){_ADV}\s+(?:have\s+got|have|got)"
            rf"|^\s*got)\s+"
            rf"(?P<what>(?:{_DET}\s+)?(?!(?:to|been|had|got|done|no|nothing|fun|time|"
            r"plans?|lots?|so|too|a\s+lot|all|any|never|always)\b)[a-z][\w'-]*\b.*)",
        ),
        (
            "going",
            r"\b(?:i'?m|i\s+am|we'?re|we\s+are|im)\s+(?:going\s+to|gonna|about\s+to|"
            r"planning\s+(?:to|on)|supposed\s+to|due\s+to|scheduled\s+to)\s+(?P<what>.+)",
        ),
        ("off", r"\b(?:i'?m|i\s+am|we'?re|we\s+are|im)\s+(?P<what>off\s+to\s+.+)"),
        (
            "will",
            rf"\b(?:i|we)(?:'ll|'ve\s+got\s+to|{_ADV}\s+(?:will|shall|need\s+to|have\s+to|"
            r"must|plan\s+to|intend\s+to|gotta|got\s+to))\s+"
            r"(?P<what>.+)",
        ),
        ("ing", r"\b(?:i'?m|i\s+am|we'?re|we\s+are|im)\s+(?P<what>(?P<verb>[a-z]+ing)\b.*)"),
        (
            "present",
            rf"\b(?:i|we){_ADV}\s+(?P<what>(?:fly|leave|start|head|move|travel|meet|visit|"
            r"arrive|begin|return|graduate|present|perform|interview|check\s+in|"
            r"go\s+(?:in|back|to)|get\s+(?:back|married))\b.*)",
        ),
        (
            "subject",
            r"\b(?P<what>(?:my|our|the)\s+(?:[\w'-]+\s+){0,3}?[\w'-]+)\s+"
            r"(?:is|'s|are|starts?|begins?|opens?|will\s+be|happens?|takes\s+place|"
            r"is\s+due|is\s+scheduled|is\s+booked)\b",
        ),
        (
            "arrives",
            r"\b(?P<what>(?:my|our|the)\s+(?:[\w'-]+\s+){0,2}?[\w'-]+\s+"
            r"(?:arrives?|comes?|lands?|leaves?|visits?|gets\s+(?:in|here)|"
            r"(?:is|are)\s+(?:coming|arriving|visiting|flying|landing|leaving|"
            r"getting\s+married)))\b",
        ),
        ("there", r"\bthere(?:'s|\s+is|\s+will\s+be)\s+(?P<what>(?:a|an)\s+.+)"),
    ]
]
_SWAP = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "i'm": "you're",
    "im": "you're",
    "i've": "you've",
    "i'll": "you'll",
    "i'd": "you'd",
    "we": "you",
    "us": "you",
    "our": "your",
    "we're": "you're",
}
_LEAD = re.compile(
    r"^(?:(?:to|about|that|for|of|on|at|by|:|-|,|and|so|please|pls|plz|"
    r"also|again|just|me)\b\s*)+",
    _I,
)
_TRAIL = re.compile(
    r"(?:\s*\b(?:please|pls|plz|thanks|thank\s+you|thx|ok|okay|again|too|"
    r"for\s+me|thx|lol|haha|ty|k|at|on|by|for|to|and|in|starting|from|"
    r"every|each)\b|\s*[-,.:!?;)(]+)+\s*$",
    _I,
)
_ARTICLE = re.compile(r"^(?:a|an)\s+", _I)
#: Where one goes without an article ("I'm going to bed early tonight").
_PLACES = ("bed", "work", "school", "church", "class", "college", "uni", "town", "practice",
           "dinner", "lunch", "breakfast", "sleep", "training")
_CLAUSE_END = re.compile(r"\s*[,;]\s*|\s+(?:because|but|since|so\s+that|although)\s+", _I)


def _clean(text: str) -> str:
    return " ".join(_CONTROL.sub(" ", text[:MAX_CHARS]).split())


def _second_person(text: str) -> str:
    text = re.sub(r"\b(?:i|we)\s+(?:am|are)\b", "you are", text, flags=_I)
    return re.sub(r"[A-Za-z']+", lambda m: _SWAP.get(m[0].lower(), m[0]), text)


def _what(text: str, cut: list[tuple[int, int]]) -> str:
    """``text`` without the spans in ``cut``, trimmed to a description."""
    kept, last = [], 0
    for start, end in sorted(cut):
        if start > last:
            kept.append(text[last:start])
        last = max(last, end)
    kept.append(text[last:])
    words = " ".join(" ".join(kept).split())
    for _ in range(3):
        words = _TRAIL.sub("", _LEAD.sub("", words)).strip()
    words = _second_person(words)
    return words[:200]


def _without(text: str, spans: list[tuple[int, int]], offset: int) -> str:
    for start, end in sorted(spans, reverse=True):
        if end > offset:
            text = text[: max(0, start - offset)] + text[end - offset :]
    return text


def _sentences(text: str) -> list[tuple[int, str]]:
    return [(m.start(), m.group()) for m in _SENTENCE.finditer(text)]


def find_item(text: str, now: datetime, *, finder: Finder = find_moments) -> Draft | None:
    """The reminder or plan ``text`` states at ``now``, or None (see the module)."""
    text = _clean(text)
    if not text:
        return None
    for _, sentence in _sentences(text):
        if (
            _TRIGGER.search(sentence) or _WEAK_TRIGGER.search(sentence)
        ) and not _NOT_A_REQUEST.search(sentence):
            draft = _reminder(sentence, now, finder)
            if draft is not None:
                return draft
    for _, sentence in _sentences(text):
        draft = _plan(sentence, now, finder)
        if draft is not None:
            return draft
    return None


def _ask(
    reason: str, what: str, phrase: str, when: datetime | None = None, hour: str = ""
) -> tuple[datetime | None, str]:
    phrase = re.sub(r"^(?:(?:on|at|by|for|the)\s+)+", "", phrase.strip(), flags=_I)
    about = "" if not what else f" to {what[3:]}" if what.startswith("to ") else f" about {what}"
    return when, QUESTIONS[reason].format(about=about, phrase=phrase, hour=hour)


def _reminder(sentence: str, now: datetime, finder: Finder) -> Draft | None:
    trigger = _TRIGGER.search(sentence) or _WEAK_TRIGGER.search(sentence)
    assert trigger is not None
    if _NOT_ASKING.search(sentence[: trigger.start()]):
        return None
    weak = _TRIGGER.search(sentence) is None
    moments = finder(sentence, now)
    rule = find_rule(sentence)
    if weak and not moments:
        return None
    if _PAST.search(sentence[: trigger.start()]) and not moments:
        return None
    spans = [(m.start, m.end) for m in moments] + ([rule[:2]] if rule is not None else [])
    what = _what(
        sentence[trigger.end() :],
        [(s - trigger.end(), e - trigger.end()) for s, e in spans if e > trigger.end()],
    )
    verb = (
        re.match(
            r"\W*(?:(?:me|please|pls|also|again)\s+)*to\s+\w",
            _without(sentence[trigger.end() :], spans, trigger.end()),
            _I,
        )
        is not None
        or weak
    )
    if not what:  # "call Maya at 6, remind me"
        what = _what(sentence[: trigger.start()], [(s, e) for s, e in spans if s < trigger.start()])
        what = what[:1].lower() + what[1:] if what[1:2].islower() else what
    moment = moments[0] if moments else None
    phrase = moment.text if moment else ""
    if rule is not None:
        start, end = rule[0], rule[1]
        if moment is not None and moment.start <= end + 1 and moment.end >= start - 1:
            start, end = min(start, moment.start), max(end, moment.end)
        return _recurring(what, rule[2], moment, now, sentence[start:end].strip())
    if moment is None:
        when, question = _ask("no_time", f"to {what}" if verb and what else what, phrase)
        return Draft(what, when, "reminder", question=question)
    set_at, asked = _reminder_time(moment, f"to {what}" if verb and what else what, now)
    return Draft(what, set_at, "reminder", question=asked, phrase=phrase)


def _reminder_time(moment: Moment, what: str, now: datetime) -> tuple[datetime | None, str | None]:
    if moment.when is None:
        return _ask("no_such_date", what, moment.text.strip())
    when = moment.when
    if moment.ambiguous:
        hour = f"{when.hour % 12 or 12}" + (f":{when.minute:02d}" if when.minute else "")
        return _ask("ambiguous", what, moment.text, when, hour)
    if moment.dated and not moment.timed:
        when = when.replace(hour=DEFAULT_TIME.hour, minute=DEFAULT_TIME.minute)
        if when <= now and when.date() == now.date() and not moment.past:
            return _ask("today_time", what, moment.text, when)
    if moment.past or when <= now:
        return _ask("past", what, moment.text, when)
    return when, None


def _recurring(what: str, rule: str, moment: Moment | None, now: datetime, phrase: str) -> Draft:
    at = moment.at if moment is not None and moment.at is not None else DEFAULT_TIME
    if re.search(r"\b(?:evening|night|afternoon)\b", phrase, _I) and (
        moment is None or moment.at is None
    ):
        at = {"evening": time(19), "night": time(20), "afternoon": time(15)}[
            re.findall(r"evening|night|afternoon", phrase, _I)[0].lower()
        ]
    day = now.date()
    if "BY" not in rule and moment is not None and moment.dated and moment.when is not None:
        day = moment.when.date()  # "every 2 weeks starting friday"
    seed = datetime.combine(day, at, tzinfo=now.tzinfo)
    if "BY" not in rule:  # "every day at 8": the next 8:00, then on from there
        first: datetime | None = (
            seed if seed > now else datetime.combine(day + timedelta(days=1), at, tzinfo=now.tzinfo)
        )
    else:
        first = next_occurrence(seed, rule, now)
    return Draft(what, first, "reminder", rrule=rule, phrase=phrase)


def _plan(sentence: str, now: datetime, finder: Finder) -> Draft | None:
    stripped = sentence.strip()
    if (
        stripped.endswith("?")
        or _QUESTION_START.match(stripped)
        or _HYPOTHETICAL.search(stripped)
        or _HABIT.search(stripped)
        or _SIGN_OFF.search(stripped)
    ):
        return None
    moments = [m for m in finder(sentence, now) if m.when is not None]
    if not moments:
        return None
    moment = moments[0]
    if moment.past or moment.coarse or moment.ambiguous or moment.when is None:
        return None
    if (
        _PRESENT_PERFECT.search(sentence)
        or _PAST.search(sentence)
        or any(word.lower() not in _NOT_PAST for word in _ED.findall(sentence))
    ):
        return None
    when, all_day = moment.when, moment.dated and not moment.timed
    if all_day and (when.date() <= now.date()):
        return None
    if not all_day and when <= now:
        return None
    for kind, pattern in _PLANS:
        m = pattern.search(sentence)
        if m is None:
            continue
        if kind == "ing" and m["verb"].lower() in _NOT_ING:
            continue
        start, end = m.span("what")
        if kind in ("subject", "arrives"):
            what = sentence[start:end]
        else:
            cut = [
                (s - start, e - start)
                for s, e in ((mo.start, mo.end) for mo in moments)
                if e > start
            ]
            what = _what(sentence[start:], cut)
        # a plan is the first clause: "going to bed early tonight, I want to be
        # fresh" is "bed early", not what follows the comma
        what = _CLAUSE_END.split(what.strip(), maxsplit=1)[0]
        what = _ARTICLE.sub("", _second_person(_TRAIL.sub("", what.strip())))
        if (
            kind == "going"
            and what.split()[:1]
            and what.split()[0].lower()
            in ("the", "a", "an", "my", "your", "our", "his", "her", "their", *_PLACES)
            or (kind == "going" and what[:1].isupper())
        ):
            what = f"going to {what}"
        if not what or len(what.split()) > 12:
            continue
        if all_day:
            when = when.replace(hour=0, minute=0)
        return Draft(what, when, "plan", all_day=all_day, phrase=moment.text)
    return None


def find_times(text: str, now: datetime) -> list[tuple[str, datetime]]:
    """Every date or time phrase in ``text`` with what it means at ``now``."""
    return [(m.text, m.when) for m in find_moments(_clean(text), now) if m.when is not None]


def parse_when(text: str, now: datetime) -> tuple[datetime, bool, str | None]:
    """When ``text`` ("friday 6pm", "tomorrow", "every monday at 9", "in 2h")
    means at ``now``: (when, all_day, rrule). A day alone is all day.
    Raises :class:`InputError` with a one-line message when it cannot."""
    cleaned = _clean(text)
    if not cleaned:
        raise InputError("no date or time given")
    rule = find_rule(cleaned)
    moments = find_moments(cleaned, now)
    if rule is not None:
        draft = _recurring(
            "", rule[2], moments[0] if moments else None, now, cleaned[rule[0] : rule[1]]
        )
        if draft.when is None:
            raise InputError(f"the recurrence {cleaned[:60]!r} never happens")
        return draft.when, False, rule[2]
    if not moments:
        raise InputError(
            f"no date or time found in {cleaned[:60]!r} "
            "(try 'friday 6pm', 'tomorrow 9:00' or 'in 20m')"
        )
    moment = moments[0]
    if moment.when is None:
        raise InputError(f"there is no such date or time as {moment.text[:60]!r}")
    if moment.dated and not moment.timed:
        return moment.when, True, None
    if moment.past or moment.when <= now:
        raise InputError(f"{moment.text[:60]!r} is already past")
    return moment.when, False, None


_DURATION = re.compile(
    r"^\s*(?:in\s+)?(?:(?P<n>\d{1,6}(?:\.\d+)?)|(?P<word>an?|one|half\s+an?|two|three|"
    r"four|five|ten|fifteen|twenty|thirty))\s*(?P<unit>s|secs?|seconds?|m|mins?|minutes?|h|"
    r"hrs?|hours?|d|days?|w|wks?|weeks?)\s*$",
    _I,
)
_DURATION_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "half an": 0.5,
    "half a": 0.5,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "ten": 10,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
}
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: The longest snooze or delay read: a year.
MAX_DURATION = timedelta(days=366)


def parse_duration(text: str) -> timedelta:
    """``10m``, ``2h``, ``1d``, ``30 minutes``, ``an hour``, ``half an hour`` as a
    timedelta; :class:`InputError` for anything else (or zero, or over a year)."""
    m = _DURATION.match(_clean(text)[:60])
    if m is None:
        raise InputError(f"not a duration: {_clean(text)[:40]!r} (try 10m, 2h, 1d or '30 minutes')")
    amount = float(m["n"]) if m["n"] else _DURATION_WORDS[" ".join(m["word"].lower().split())]
    unit = m["unit"].lower()
    seconds = amount * _UNIT_SECONDS["m" if unit.startswith("mi") else unit[0]]
    if seconds <= 0 or seconds > MAX_DURATION.total_seconds():
        raise InputError(f"a duration must be more than zero and at most a year, not {text[:40]!r}")
    return timedelta(seconds=seconds)
