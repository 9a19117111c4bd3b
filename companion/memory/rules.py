"""The extraction rules: one function per kind of statement, clause in, facts out.

Each rule reads one clause (see :func:`companion.memory.grammar.clauses`) and
writes facts from templates ("User lives in {place}."); the user's words only
ever fill the slots, trimmed by :func:`clean_object`. ``people`` reads a whole
sentence, since "my sister Maya" may sit inside any clause.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from companion.memory.base import Fact, FactKind
from companion.memory.dates import find_when, past_tense
from companion.memory.grammar import as_name, clean_object, third_person
from companion.memory.lexicon import (
    ADVERBS,
    CHAT_ADJECTIVES,
    DEMONYMS,
    LASTING_ING,
    OCCUPATIONS,
    RELATION_MODIFIERS,
    RELATION_PLURALS,
    RELATIONS,
    VAGUE_OBJECTS,
    word_set,
)
from companion.memory.statements import statement, stems

Rule = Callable[[str, date], list[Fact]]

_I = r"\bi"
_AM = r"(?:'m|’m|\s+am)"
_HAVE = r"(?:'ve|’ve|\s+have)"
_IM = rf"\bi{_AM}"
_ADV = rf"(?:(?:{'|'.join(sorted(ADVERBS))}|kind\s+of|sort\s+of)\s+)*"
_REST = r"(?P<obj>[^!?;]+)"
_NAME = r"(?P<name>[^\W\d_][\w'’-]*)(?:\s+(?P<last>[A-Z][\w'’-]+))?"
_REL = (rf"(?P<rel>(?:(?:{'|'.join(sorted(RELATION_MODIFIERS))})[\s-]+){{0,2}}"
        rf"(?:{'|'.join(sorted(RELATIONS, key=len, reverse=True))}))")


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _full_name(m: re.Match[str], *, capitalized: bool) -> str | None:
    first = as_name(m.group("name"), capitalized=capitalized)
    if first is None:
        return None
    last = m.groupdict().get("last")
    last_name = as_name(last, capitalized=True) if last else None
    return f"{first} {last_name}" if last_name else first


# -- people ---------------------------------------------------------------------------

_PEOPLE = [  # (pattern, whether the name must be written capitalized)
    (_re(rf"\bmy\s+{_REL}(?:'s|’s)\s+name\s+(?:is|was)\s+{_NAME}"), False),
    (_re(rf"\b(?:my|a|an)\s+{_REL}\s*,?\s+(?:who\s+is\s+|is\s+)?(?:called|named)\s+{_NAME}"),
     False),
    (_re(rf"\bmy\s+{_REL}(?:\s*,\s*|\s+)(?:is\s+)?{_NAME}"), True),
]
_NAME_IS_MY = _re(rf"\b(?P<name>[^\W\d_][\w'’-]*)(?:'s|’s|\s+is)\s+my\s+{_REL}\b")


def people(sentence: str, today: date) -> list[Fact]:
    """"my sister Maya", "my sister is called Maya", "Maya is my sister", "my wife's name
    is Anna", "a dog named Rex" -> "User's sister is called Maya."."""
    found: list[Fact] = []
    for pattern, capitalized in _PEOPLE:
        for m in pattern.finditer(sentence):
            name = _full_name(m, capitalized=capitalized)
            if name:
                found.append(_person(m.group("rel"), name))
    for m in _NAME_IS_MY.finditer(sentence):
        name = as_name(m.group("name"), capitalized=True)
        if name:
            found.append(_person(m.group("rel"), name))
    return found


def _person(relation: str, name: str) -> Fact:
    rel = re.sub(r"[\s-]+", " ", relation.lower()).replace("ex ", "ex-").replace("step ", "step")
    return Fact("person", f"User's {rel} is called {name}.")


# -- names ----------------------------------------------------------------------------

_MY_NAME = _re(rf"\b(?:my\s+name(?:'s|’s|\s+is)|the\s+name(?:'s|’s|\s+is))\s+{_NAME}")
_CALL_ME = _re(rf"\b(?:call\s+me|i\s+go\s+by|(?:people|everyone|friends)\s+calls?\s+me)"
               rf"\s+{_NAME}")
_CALL_ME_NOT = word_set("later back tomorrow sometime anytime crazy maybe old silly names "
                         "whatever anything something")
_IM_NAME = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|well|so|oh|yes|yeah|ok|okay|and|also|btw)\b[\s,!]*)*"
    r"(?:i|I)(?:'m|’m|\s+am)\s+(?P<name>[^\W\d_][\w-]*)(?![\w'’-])(?:\s+(?P<last>[A-Z][\w-]+))?"
)


def name(clause: str, today: date) -> list[Fact]:
    """"my name is Theo", "call me Theo", "I'm Theo" (a capitalized, non-common word)."""
    for pattern, capitalized in ((_MY_NAME, False), (_CALL_ME, False), (_IM_NAME, True)):
        m = pattern.search(clause)
        if m is None:
            continue
        if pattern is _CALL_ME and m.group("name").lower() in _CALL_ME_NOT:
            continue
        if pattern is _IM_NAME and m.group("name").lower() in DEMONYMS:
            continue
        full = _full_name(m, capitalized=capitalized)
        if full:
            return [Fact("name", f"User's name is {full}.")]
    return []


_GREETING = re.compile(r"^\W*(?:hi|hello|hey|hiya|howdy|greetings)\b", re.IGNORECASE)
_GREETED_NAME = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|howdy|greetings|there|all|everyone|friend)\b[\s,!.]*)*"
    r"(?:i(?:'m|’m|\s+am)\s+(?P<name>[^\W\d_][\w'’-]*)(?:\s+(?:and|how|what|nice)\b.*)?"
    r"|(?P<name2>[^\W\d_][\w'’-]*)\s+here\b.*)$",
    re.IGNORECASE,
)
_NOT_GREETED_NAMES = CHAT_ADJECTIVES | OCCUPATIONS | DEMONYMS | LASTING_ING | word_set(
    "vegan vegetarian human new alive sick ill blind deaf broke gay straight drunk bald "
    "everyone all there friend again today working from")


def greeted_name(sentence: str, clause: str) -> list[Fact]:
    """A name written in lower case, only right after a greeting: "hi, I'm theo", "hello,
    kim here" ("I'm theo" alone may be anything: "I'm fine")."""
    if not _GREETING.match(sentence) or (m := _GREETED_NAME.match(clause)) is None:
        return []
    word = m.group("name") or m.group("name2")
    if word.lower() in _NOT_GREETED_NAMES or word.lower().endswith(("ing", "ed", "ly")):
        return []
    full = as_name(word, capitalized=False)
    return [Fact("name", f"User's name is {full}.")] if full else []


# -- plans ----------------------------------------------------------------------------

_MY_X_IS = _re(r"^(?:it'?s|it’s|is)\s+my\s+(?P<x>.+)$|^my\s+(?P<y>.+?)\s+(?:is|'s|’s)$")
_STATE_ONLY = _re(rf"^{_IM}\s+(?!going\b|off\b|away\b|out\b|back\b|at\b|in\b|on\b|to\b|due\b|"
                  r"supposed\b|meant\b|about\b|flying\b|leaving\b|\w+ing\b)")


def plan(clause: str, today: date) -> list[Fact]:
    """A first-person clause with a future date: "I have an interview on Tuesday" ->
    "User has an interview on Tuesday 2026-12-01."."""
    when = find_when(clause, today)
    if when is None or not when.future:
        return []
    rest = f"{clause[:when.start]} {clause[when.end:]}"
    rest = re.sub(r"\s+", " ", rest).strip(" ,;:-")
    rest = re.sub(r"\s+([,;])", r"\1", rest)
    m = _MY_X_IS.match(rest)
    if m:
        return [Fact("plan", f"User's {m.group('x') or m.group('y')} is {when.phrase}.")]
    if _STATE_ONLY.match(rest):  # "I'm tired today" is a mood, not a plan
        return []
    said = third_person(rest)
    if said is None or len(said.split()) < 3:
        return []
    if when.day == today and past_tense(rest):  # "Today I finished the report": done, kept
        return [Fact("fact", f"{said} {when.phrase}.")]
    return [Fact("plan", f"{said} {when.phrase}.")]


# -- work -----------------------------------------------------------------------------

_WORK_AS = _re(rf"{_I}(?:\s+{_ADV}(?:currently\s+|now\s+|still\s+)?work|{_AM}\s+working|"
               rf"{_HAVE}\s+(?:been\s+)?work(?:ing|ed))\s+(?P<prep>as|at|for|in)\s+{_REST}")
_IM_A = _re(rf"{_IM}\s+(?:now\s+|currently\s+|still\s+)?(?P<art>a|an)\s+(?P<job>[\w-]+(?:\s+[\w-]+)"
            rf"{{0,3}}?)(?:\s+(?P<prep>at|for|in|with)\s+(?P<obj>[^!?;]+))?$")
_MY_JOB = _re(rf"\bmy\s+(?:job|occupation|profession)(?:'s|’s|\s+is)\s+{_REST}")
_STUDY = _re(rf"(?:{_IM}\s+(?P<ing>studying|majoring\s+in)|{_I}\s+(?P<s>study))\s+{_REST}")
_WHERE_I_WORK = _re(r"\b(?P<obj>(?:the|a|an|this|that)\s+(?:[\w'’-]+\s+){0,3}?[\w'’-]+)\s+"
                    r"(?:where|that|which)\s+i\s+(?:currently\s+|still\s+|now\s+)?"
                    r"(?P<verb>work|worked|live|lived)\b(?!\s+(?:on|with|for|out|through|hard)\b)")
_MY_JOB_AT = _re(r"\bmy\s+(?:new\s+|old\s+|current\s+|part[- ]time\s+|full[- ]time\s+)?job\s+"
                 r"(?P<prep>at|in|with)\s+(?P<obj>(?:the|a|an)\s+[^!?;,]+)")
_STATUS = _re(rf"{_IM}\s+(?P<status>retired|unemployed|self-employed|between\s+jobs|"
              r"a\s+stay-at-home\s+(?:mom|dad|parent))\b")


def work(clause: str, today: date) -> list[Fact]:
    """"I work as a nurse", "I work at Google", "I'm a teacher", "my job is ..."."""
    if m := _WORK_AS.search(clause):
        obj = clean_object(m.group("obj"))
        prep = m.group("prep").lower()
        if obj:
            return [Fact("work", f"User works {prep} {obj}.")]
    if m := _IM_A.search(clause):
        job = m.group("job").lower()
        if job.split()[-1] in OCCUPATIONS:
            where = clean_object(m.group("obj")) if m.group("obj") else None
            tail = f" {m.group('prep').lower()} {where}" if where else ""
            return [Fact("work", f"User is {m.group('art').lower()} {job}{tail}.")]
    if m := _MY_JOB.search(clause):
        obj = clean_object(m.group("obj"))
        if obj:
            return [Fact("work", f"User's job is {obj}.")]
    if m := _STUDY.search(clause):
        obj = clean_object(m.group("obj"))
        verb = "studies" if m.group("s") else "is " + " ".join(m.group("ing").lower().split())
        if obj:
            return [Fact("work", f"User {verb} {obj}.")]
    if m := _STATUS.search(clause):
        return [Fact("work", f"User is {' '.join(m.group('status').lower().split())}.")]
    if m := _MY_JOB_AT.search(clause):
        obj = clean_object(m.group("obj"))
        if obj:
            return [Fact("work", f"User works {m.group('prep').lower()} {obj}.")]
    if (m := _WHERE_I_WORK.search(clause)) and (obj := clean_object(m.group("obj"))):
        verb = m.group("verb").lower()
        kind: FactKind = "work" if verb.startswith("work") else "place"
        prep = "at" if kind == "work" else "in"
        return [Fact(kind, f"User {verb if verb.endswith('ed') else verb + 's'} {prep} {obj}.")]
    return []


# -- places ---------------------------------------------------------------------------

_PLACES = [
    (_re(rf"{_I}(?:\s+{_ADV}(?:currently\s+|now\s+|still\s+)?live|{_AM}\s+(?:now\s+)?living|"
         rf"{_HAVE}\s+(?:been\s+living|lived))\s+in\s+{_REST}"),
     "User lives in {}."),
    (_re(rf"{_I}(?:{_HAVE})?\s+(?:just\s+|recently\s+|finally\s+)?"
         rf"(?:moved|relocated)\s+(?:to|into)\s+(?P<obj>[^!?;]+?)"
         rf"(?:\s+from\s+(?P<origin>[^!?;]+))?$"),
     "User moved to {}."),
    (_re(rf"(?:{_IM}\s+(?:originally\s+)?from|{_I}\s+(?:originally\s+)?come\s+from)\s+{_REST}"),
     "User is from {}."),
    (_re(rf"{_I}\s+grew\s+up\s+(?P<prep>in|on|near|around)\s+{_REST}"), "User grew up {}."),
    (_re(rf"{_I}\s+was\s+born\s+(?P<prep>in|on)\s+{_REST}"), "User was born {}."),
]


def place(clause: str, today: date) -> list[Fact]:
    """"I live in Boston", "I moved to Boston from LA", "I'm from LA", "I grew up in ..."."""
    for pattern, template in _PLACES:
        m = pattern.search(clause)
        if m is None:
            continue
        where = clean_object(m.group("obj"), place=True)
        if not where:
            continue
        if "prep" in m.groupdict():
            where = f"{m.group('prep').lower()} {where}"
        origin = m.groupdict().get("origin")
        origin_place = clean_object(origin, place=True) if origin else None
        if origin_place:
            where = f"{where} from {origin_place}"
        return [Fact("place", template.format(where))]
    return []


# -- likes and dislikes ---------------------------------------------------------------

_DISLIKES = [
    (_re(rf"{_I}\s+{_ADV}(?P<verb>hate|dislike|detest|loathe|despise)\s+{_REST}"), "{verb}s"),
    (_re(rf"{_I}\s+{_ADV}(?:can't|can’t|cannot|can\s+not)\s+stand\s+{_REST}"), "can't stand"),
    (_re(rf"{_I}\s+{_ADV}(?:don't|don’t|do\s+not)\s+(?:really\s+|much\s+)?"
         rf"(?P<verb>like|enjoy|love)\s+{_REST}"), "doesn't {verb}"),
    (_re(rf"{_IM}\s+not\s+(?:really\s+|much\s+of\s+)?(?P<what>a\s+(?:big\s+|huge\s+)?fan\s+of|"
         rf"into)\s+{_REST}"), "is not {what}"),
]
_LIKES = [
    (_re(rf"{_I}\s+(?P<adv>{_ADV})(?P<verb>love|like|enjoy|adore)\s+{_REST}"), "{adv}{verb}s"),
    (_re(rf"{_IM}\s+(?:really\s+|so\s+|very\s+|totally\s+)?(?P<what>into|obsessed\s+with|"
         rf"passionate\s+about|crazy\s+about|a\s+(?:big\s+|huge\s+|great\s+)?fan\s+of)\s+{_REST}"),
     "is {what}"),
]
_FAVORITE = _re(r"\bmy\s+(?:all[- ]time\s+)?(?P<fav>favou?rite)\s+(?P<x>[\w-]+(?:\s+[\w-]+)?)\s+"
                r"(?P<be>is|are|was|has\s+to\s+be|would\s+be)\s+(?P<obj>[^!?;]+)")


_IS_MY_FAVORITE = _re(
    r"^(?P<obj>(?!(?:it|this|that|these|those|they|he|she|you|which|what|who|there)\b)"
    r"[\w'’-]+(?:\s+[\w'’-]+){0,5}?)\s+(?:is|are|was|were|has\s+(?:always\s+)?been|have\s+"
    r"(?:always\s+)?been)\s+(?:definitely\s+|probably\s+|really\s+|always\s+)?"
    r"(?:my\s+(?P<what>(?:(?:all[- ]time|absolute|biggest|greatest|true|first)\s+)?"
    r"(?:favou?rite(?:\s+(?!because|since|cause|but|and|so)[\w-]+){0,2}|passion|hobby|hobbies|"
    r"obsession|weakness|guilty\s+pleasure|love|life|thing|go-to|specialty))|"
    r"(?P<what2>an?\s+(?:hobby|passion|favou?rite)\s+of\s+mine))\b"
)


_ABOUT_THE_TALK = _re(rf"\b(?:you|your|yours|yourself)\b|\s(?:{'|'.join(sorted(VAGUE_OBJECTS))})$")


def _liking(clause: str, rules: list[tuple[re.Pattern[str], str]], kind: FactKind) -> list[Fact]:
    for pattern, verb in rules:
        m = pattern.search(clause)
        if m is None:
            continue
        obj = clean_object(m.group("obj"))
        if obj and _ABOUT_THE_TALK.search(obj):  # "I love your idea", "I love to hear that"
            return []
        if obj:
            words = {k: " ".join(v.lower().split()) for k, v in m.groupdict().items() if v}
            adverbs = [w for w in words.get("adv", "").split() if w != "do"]  # "I do like"
            words["adv"] = "".join(f"{w} " for w in adverbs)
            filled = verb.format_map({"verb": "", "what": "", **words})
            return [Fact(kind, f"User {filled} {obj}.")]
    return []


def dislike(clause: str, today: date) -> list[Fact]:
    """"I hate X", "I can't stand X", "I don't like X", "I'm not a fan of X"."""
    return _liking(clause, _DISLIKES, "dislike")


def like(clause: str, today: date) -> list[Fact]:
    """"I love X", "I'm into X", "I'm a big fan of X", "my favorite X is Y", "Y is my
    passion"."""
    if m := _FAVORITE.search(clause):
        obj = clean_object(m.group("obj"))
        if obj:
            be = " ".join(m.group("be").lower().split())
            return [Fact("like", f"User's {m.group('fav').lower()} {m.group('x').lower()} "
                                 f"{be} {obj}.")]
    if m := _IS_MY_FAVORITE.match(clause):
        obj = clean_object(m.group("obj"))
        what = m.group("what") or re.sub(r"^an?\s+|\s+of\s+mine$", "", m.group("what2"))
        if obj:
            first, *rest = obj.split()
            if first.endswith("ing") or (rest and rest[0].islower()):  # "Knitting", "Summer days"
                obj = " ".join([first[0].lower() + first[1:], *rest])
            return [Fact("like", f"User's {' '.join(what.lower().split())} is {obj}.")]
    return _liking(clause, _LIKES, "like")


# -- other facts about the user -------------------------------------------------------

_FACTS = [
    (_re(rf"{_IM}\s+(?P<x>{'|'.join(sorted(DEMONYMS))})\b"), "User is {x}."),
    (_re(rf"{_IM}\s+(?:only\s+|just\s+|finally\s+|now\s+|age\s+)?(?P<x>\d{{1,3}})(?:\s+years?"
         r"\s+(?:old|of\s+age)|\s*(?:[,;!]|$)|\s+(?=(?:and|but|so|now|already|there|since|because|when)\b))|"
         rf"{_I}(?:{_HAVE})?\s+(?:just\s+|recently\s+|only\s+just\s+)?turned\s+(?P<x2>\d{{1,3}})\b"),
     "User is {x} years old."),
    (_re(rf"{_IM}\s+(?P<x>allergic\s+to\s+[^!?;]+)"), "User is {x}."),
    (_re(rf"{_IM}\s+(?:(?:a|an)\s+)?(?P<x>vegetarian|vegan|pescatarian|married|single|"
         r"divorced|engaged|widowed|pregnant)\b"), "User is {x}."),
    (_re(rf"{_IM}\s+(?P<x>an?\s+(?:morning|night|people|cat|dog|introverted|extroverted)"
         r"\s+person|an?\s+(?:introvert|extrovert|ambivert|night\s+owl|early\s+bird))\b"),
     "User is {x}."),
    (_re(rf"{_I}\s+(?:have|'ve\s+got|’ve\s+got|have\s+got)\s+(?P<x>(?:a|an|one|two|three|"
         rf"four|five|six|\d{{1,2}})\s+(?:{'|'.join(sorted(RELATIONS | RELATION_PLURALS))}))\b"),
     "User has {x}."),
]


def other(clause: str, today: date) -> list[Fact]:
    """"I'm Canadian", "I'm 34", "I'm allergic to peanuts", "I have two kids"."""
    for pattern, template in _FACTS:
        m = pattern.search(clause)
        if m is None:
            continue
        x = m.groupdict().get("x") or m.group("x2")
        x = clean_object(x) if "allergic" in x.lower() else x
        if x:
            x = " ".join(x.split())
            x = x.capitalize() if x.lower() in DEMONYMS else x.lower()
            if template == "User is {x} years old." and not 5 <= int(x) <= 120:
                continue
            return [Fact("fact", template.format(x=x))]
    return []


#: The clause rules, in order; the first that finds something wins.
CLAUSE_RULES: tuple[Rule, ...] = (plan, name, work, place, dislike, like, other)


def clause_facts(clause: str, today: date) -> list[Fact]:
    """The facts of one clause: the first of :data:`CLAUSE_RULES` that finds something,
    and the clause as a statement in the user's own words (see
    :mod:`companion.memory.statements`) when it says two things more: "I'm married and
    got two kids" -> "User is married." and "User is married and got two kids."."""
    found: list[Fact] = []
    for rule in CLAUSE_RULES:
        if found := list(rule(clause, today)):
            break
    said = statement(clause, today)
    known = {w for fact in found for w in stems(fact.text)}
    for fact in said:
        more = stems(fact.text) - known  # two words more, or a date or a number
        if not found or len(more) >= 2 or any(w[0].isdigit() for w in more):
            found.append(fact)
    return found
