"""What a person says about themselves in their own words, kept in the third person.

The rules in :mod:`companion.memory.rules` fill templates for the common kinds
(name, job, home, likes). Most of what people tell about themselves fits no
template: "I used to work in human services", "my son is in junior high", "I
went through a divorce last year", "I volunteer at a soup kitchen". This
module keeps such a clause as a fact, in the third person ("User used to work
in human services.", "User's son is in junior high.", "User went through a
divorce in 2025."), when it is a statement about the user or their people:

- its subject is the user ("I ...", "my wife and I ...") or one of their people
  or things ("my son ...");
- it is not a question or a supposition (the caller drops those), not a wish
  or a guess ("I'd love to", "I think", "I guess"), not small talk about the
  conversation ("I'm glad", "I agree", "I see"), and does not speak of "you";
- it is not a passing state ("I'm tired", "I'm watching TV"): a present
  progressive counts only for lasting activities ("I'm studying law");
- it says something: two content words at least ("I have cats" yes, "I'm
  good" no).

A past date is made absolute ("last year" -> "in 2025"); a clause with a
future date is the plan rule's, not this one's. The kind of fact (work, place,
person, like, dislike, or fact) is read from its words, so recall by kind
finds it.
"""

from __future__ import annotations

import re
from datetime import date

from companion.memory.base import Fact, FactKind
from companion.memory.dates import find_when
from companion.memory.grammar import (
    COMPOUND_SUBJECT,
    PAST_VERBS,
    as_name,
    pronouns,
    third_person,
    trim_statement,
)
from companion.memory.lexicon import (
    CHAT_ADJECTIVES,
    CHAT_VERBS,
    FEMALE,
    FUNCTION_WORDS,
    LASTING_ING,
    MALE,
    MY_THINGS,
    NOT_NAMES,
    RELATION_MODIFIERS,
    RELATION_PLURALS,
    RELATIONS,
    VAGUE_OBJECTS,
    word_set,
)

_OPENING = re.compile(
    r"^(?:(?:yes|yeah|yea|yep|yup|ya|no|nope|nah|well|oh|ohh|ah|ahh|aw+|wow|whoa|ha(?:ha)+|"
    r"lol|lmao|ok|okay|sure|so|and|but|also|actually|honestly|anyway|anyways|hey|hi|hello|"
    r"hm+|um+|uh+|true|right|cool|nice|great|awesome|definitely|absolutely|of\s+course|"
    r"me\s+too|same\s+here|same|plus|then|though|because|cause|'cause|indeed|thanks|"
    r"thank\s+you|as\s+for\s+me|for\s+me|personally|luckily|unfortunately|sadly|"
    r"fortunately|funny\s+enough|believe\s+it\s+or\s+not|to\s+be\s+honest|tbh|btw|"
    r"sometimes|usually|occasionally|often|now|lately|nowadays|normally|generally|typically|"
    r"mostly|currently|recently|really|dear|gosh|geez|jeez|man|yay|ugh|howdy|greetings|"
    r"not\s+really|sounds\s+(?:good|great|fun|nice|cool|interesting|awesome)|"
    r"that(?:'s|’s|\s+is)\s+(?:so\s+|really\s+|very\s+)?(?:cool|great|nice|awesome|good|"
    r"amazing|interesting|funny|true|fun|neat|wonderful|too\s+bad))"
    r"\b[\s,!.…-]*)+",
    re.IGNORECASE,
)
_SECOND_PERSON = re.compile(r"\b(?:you|your|yours|yourself|ya|u|y'all)\b", re.IGNORECASE)
_LIKE_YOU = re.compile(
    r"[\s,]*\b(?:you\s+know|you\s+see|if\s+you\s+ask\s+me|believe\s+me|i\s+tell\s+you|"
    r"to\s+be\s+honest\s+with\s+you|as\s+you\s+know|thank\s+you|thanks)\b[\s,]*$|"
    r"[\s,]*\b(?:just\s+|exactly\s+)?(?:like|as\s+well\s+as|same\s+as|unlike|than)\s+"
    r"(?:you|yours)\b(?:\s+(?:do|did|are|were|have|said|mentioned))?|"
    r"[\s,]*\b(?:did|do|have|are)\s+you\s*$",
    re.IGNORECASE,
)
_MODAL = re.compile(r"^i(?:'d|’d|'ll|’ll)\b|^i\s+(?:would|could|should|might|may|must|will|"
                    r"shall|wanna|gotta|wouldn't|couldn't|shouldn't|won't|wouldn’t|"
                    r"couldn’t|shouldn’t|won’t)\b", re.IGNORECASE)
_FIRST_VERB = re.compile(
    r"^i(?:'m|’m|'ve|’ve|\s+am|\s+have)?\s+(?:(?:really|just|also|still|actually|totally|"
    r"kinda|kind\s+of|sort\s+of|do|don't|don’t|do\s+not|can't|can’t|cannot|can|"
    r"definitely|truly|always|sometimes|often|never|not|so|absolutely|honestly)\s+)*"
    r"(?P<verb>[\w'’-]+)(?P<rest>.*)$",
    re.IGNORECASE,
)
_PROGRESSIVE = re.compile(r"^i(?:'m|’m|\s+am)\s+(?:(?:still|now|currently|just|also|really|"
                          r"actually|not)\s+)*(?P<ing>\w+ing)\b(?P<rest>.*)$", re.IGNORECASE)
_BE_ADJECTIVE = re.compile(r"^i(?:'m|’m|\s+am|\s+was|\s+feel|\s+felt)\s+(?:(?:so|very|really|"
                           r"just|a\s+bit|a\s+little|pretty|quite|kinda|too|super|not)\s+)*"
                           r"(?P<adj>\w+)\b(?P<rest>.*)$", re.IGNORECASE)
_BE_ONE = re.compile(r"^i(?:'m|’m|\s+am|\s+was)\s+(?:(?:actually|also|still|now|really|"
                     r"proudly|originally|pretty|very|quite|so|super|extremely)\s+)*(?:(?P<art>a|an)\s+(?:only\s+|proud\s+|big\s+)?)?"
                     r"(?P<x>[\w-]+)$", re.IGNORECASE)
_IDENTITY_ENDINGS = ("ed", "er", "or", "ist", "ian", "ant", "ent", "ic", "al", "ive", "ous",
                     "ful", "less", "ish", "ese", "ary", "ile")
_WISH = re.compile(r"^i(?:'d|’d|\s+would)\s+(?:really\s+|so\s+|just\s+)?(?:love|like)\s+to\s+"
                   r"(?:\w+)\s+(?P<obj>\w.*)$", re.IGNORECASE)
_PETS = frozenset({"cat", "dog", "puppy", "kitten", "pet", "hamster", "rabbit", "bunny",
                   "parrot", "bird", "horse", "fish", "turtle"})
_NAMED_RELATION = re.compile(
    rf"^my\s.*\b(?:called|named|name(?:'s|’s|\s+is|\s+was))\b|"
    rf"\b(?:a|an|my)\s+(?:\w+\s+)?(?:{'|'.join(sorted(RELATIONS))})\s*,?\s+(?:called|named)\b",
    re.IGNORECASE,
)
_PREDICATE = re.compile(
    rf"^my\s+(?:(?:{'|'.join(sorted(RELATION_MODIFIERS))})[\s-]+){{0,2}}[\w'’-]+\b(?P<pred>\s.+)$",
    re.IGNORECASE,
)
_APPOSITIVE = re.compile(r"^\s*,?\s*[A-Z][\w'’-]+(?:\s*,\s*|\s+|$)")
_HEDGE = re.compile(r"^i\s+(?:(?:really|just|do)\s+)?(?:think|guess|believe|suppose|feel\s+like|"
                    r"know|mean|must\s+say|have\s+to\s+say|admit|must\s+admit|"
                    r"have\s+to\s+admit)\s*,?\s+(?:that\s+)?(?=(?:i|i'm|i’m|i've|i’ve|my)\s)",
                    re.IGNORECASE)
_NO_SUBJECT = re.compile(
    r"^(?:(?:just|also|still|recently|finally|really)\s+)*(?P<verb>got|went|had|loved|worked|"
    r"tried|lived|played|drove|finished|started|bought|made|spent|watched|moved|grew|visited|"
    r"took|came|met|ate|baked|cooked|adopted|retired|graduated|been|love|found|decided|"
    r"learned|learnt|joined|quit|left|sold|built|painted|ran|traveled|travelled)\s",
    re.IGNORECASE,
)
_ONE_OF_MY = re.compile(
    rf"^one\s+of\s+my\s+(?P<who>(?:(?:{'|'.join(sorted(RELATION_MODIFIERS))})\s+)?"
    rf"(?:{'|'.join(sorted(p for p in RELATION_PLURALS if p.endswith('s')))}))(?=\s+(?:is|was)\b)",
    re.IGNORECASE,
)
_WE = re.compile(r"^we(?P<aux>'re|’re|'ve|’ve)?\s+", re.IGNORECASE)
_WE_AUX = {"'re": "are ", "’re": "are ", "'ve": "have ", "’ve": "have "}
_MY_SUBJECT = re.compile(r"^my\s+(?P<who>[\w'’-]+(?:\s+[\w'’-]+)?)", re.IGNORECASE)
_WORD = re.compile(r"[\w'’-]+")
_CHAT_PHRASE = re.compile(
    r"\bto\s+(?:hear|know|meet|talk|chat|say|ask|see\s+that)\b|^i\s+(?:just\s+)?(?:have|had|"
    r"need|needed|want|wanted|got)\s+to\s+(?:say|admit|ask|tell|agree|go|run|get\s+going|"
    r"check|know)\b|\b(?:the\s+same|same\s+way|same\s+here|so\s+too|as\s+well)\s*$|"
    r"^i\s+(?:\w+\s+)?get\s+(?:that|it|what)\b|\bsame\s+boat\b",
    re.IGNORECASE,
)
_WHEN_WORDS = word_set("today tonight tomorrow yesterday now currently lately recently "
                       "earlier later right morning evening night week weekend")

_KINDS: list[tuple[FactKind, re.Pattern[str]]] = [
    ("person", re.compile(
        rf"^User(?:'s|\s+and\s+their)\s+(?:(?:{'|'.join(sorted(RELATION_MODIFIERS))})[\s-]+)"
        rf"{{0,2}}(?:{'|'.join(sorted(RELATIONS | RELATION_PLURALS))})\b", re.IGNORECASE)),
    ("work", re.compile(
        r"\b(?:work(?:s|ed|ing)?|job|jobs|career|compan(?:y|ies)|business|boss|office|shifts?|"
        r"employ\w*|hired|fired|promot\w*|retire[ds]?|profession\w*|salary|clients?|"
        r"customers?|co-?workers?|colleagues?|for\s+a\s+living|internship|laid\s+off|"
        r"quit\s+\w+\s+job|teach(?:es|ing)?|volunteers?)\b", re.IGNORECASE)),
    ("place", re.compile(r"\b(?:lives?|lived|living|moved|grew\s+up|born|hometown|"
                         r"relocated)\b", re.IGNORECASE)),
    ("dislike", re.compile(r"^User\s+(?:\w+\s+)?(?:hates?|dislikes?|doesn't\s+like|"
                           r"can't\s+stand)\b")),
    ("like", re.compile(r"^User\s+(?:\w+\s+)?(?:loves?|likes?|enjoys?|adores?|prefers?)\b")),
]


def content_words(text: str) -> list[str]:
    """The words of ``text`` that carry content (no pronouns, auxiliaries, dates...)."""
    words = [w.lower().strip("'’-") for w in _WORD.findall(text)]
    return [w for w in words if w and w not in FUNCTION_WORDS and w not in _WHEN_WORDS
            and w not in VAGUE_OBJECTS]


def stems(text: str) -> set[str]:
    """The content words of ``text`` without their endings: "works", "working" -> "work"."""
    return {re.sub(r"(?:ing|ed|es|s)$", "", w) if len(w) > 4 else w for w in content_words(text)}


def _kind(text: str) -> FactKind:
    for kind, pattern in _KINDS:
        if pattern.search(text):
            return kind
    return "fact"


def opening_stripped(clause: str) -> str:
    """``clause`` without a leading "yes, well, oh, haha" and the like."""
    return _OPENING.sub("", clause.strip()).strip(" ,;:-")


def _worth_keeping(clause: str) -> bool:
    """The filters of the module docstring, on a first-person clause."""
    if _MODAL.match(clause):
        wish = _WISH.match(clause)  # "I'd love to see Paris" is a wish; "I'd like a coffee" not
        return wish is not None and wish.group("obj").lower().split()[-1] not in VAGUE_OBJECTS
    if m := _PROGRESSIVE.match(clause):
        ing = m.group("ing").lower()
        going_through = ing == "going" and m.group("rest").lower().lstrip().startswith("through")
        if ing not in LASTING_ING and not going_through:
            return False
    elif m := _BE_ADJECTIVE.match(clause):
        # "I'm afraid of heights", "I'm good at chess" tell something lasting
        lasting = re.match(r"\s+(?:of|at|with)\s+\w", m.group("rest"))
        if m.group("adj").lower() in CHAT_ADJECTIVES and not lasting:
            return False
    if m := _FIRST_VERB.match(clause):
        verb = m.group("verb").lower()
        if verb in CHAT_VERBS:
            return False
        rest = m.group("rest").split()
        if rest and rest[0].lower().strip(".,!") in VAGUE_OBJECTS and \
                not content_words(" ".join(rest[1:])):  # "I love it", not "I love those books"
            return False
    return True


def statement(clause: str, today: date) -> list[Fact]:
    """A first-person statement kept in the third person: "I volunteer at a soup
    kitchen" -> "User volunteers at a soup kitchen."; see the module docstring."""
    clause = _HEDGE.sub("", opening_stripped(clause))  # "I think I'm a good cook"
    if m := _ONE_OF_MY.match(clause):  # "one of my best friends is a nurse"
        clause = f"my {m.group('who')[:-1]}{clause[m.end():]}"
    if m := _NO_SUBJECT.match(clause):  # "Just got back from the gym": the I is implied
        have = "’ve" if m.group("verb").lower() == "been" else ""
        clause = f"I{have} {clause[0].lower()}{clause[1:]}"
    date_phrase = ""
    when = find_when(clause, today)
    if when is not None:
        if when.future:
            return []  # a plan, or a passing state with a date: the plan rule's call
        date_phrase = when.phrase
        clause = re.sub(r"\s+", " ", f"{clause[:when.start]} {clause[when.end:]}").strip(" ,")
    compound = COMPOUND_SUBJECT.match(clause)
    subject = clause[:compound.end()] if compound else ""
    trimmed = trim_statement(clause[len(subject):])
    clause = _LIKE_YOU.sub("", f"{subject}{trimmed}" if trimmed else "").strip(" ,")
    if not trimmed or _CHAT_PHRASE.search(clause) or _SECOND_PERSON.search(clause):
        return []
    if _NAMED_RELATION.search(clause):
        return []  # "my sister is called Maya", "a cat named Rex": the people rule's
    said = _said(clause)
    if said is None:
        return []
    text = f"{said} {date_phrase}".strip() + "."
    return [Fact(_kind(text), text)]


def _said(clause: str) -> str | None:
    """The clause in the third person, or None when it is not worth keeping."""
    if m := COMPOUND_SUBJECT.match(clause):
        who = (m.group("who") or m.group("who2")).lower()
        rest = clause[m.end():].strip()
        if who.split()[-1] not in RELATIONS or len(content_words(rest)) < 2:
            return None
        return f"User and their {who} {pronouns(rest)}"
    if m := _MY_SUBJECT.match(clause):
        return _their(clause, m)
    if m := _WE.match(clause):
        rest = clause[m.end():]
        as_mine = f"I {m.group('aux') or ''} {rest}".replace("  ", " ")
        if not _worth_keeping(as_mine) or len(content_words(rest)) < 2:
            return None
        return f"User and others {_WE_AUX.get((m.group('aux') or '').lower(), '')}{pronouns(rest)}"
    if not re.match(r"^i(?:'m|’m|'ve|’ve)?\b", clause, re.IGNORECASE):
        return None
    if not _worth_keeping(clause):
        return None
    if _BE_ONE.match(clause):
        return third_person(clause) if _identity(clause) else None
    words = content_words(clause)
    if len(words) < 2 and not (words and _says_one_thing(clause, words[0])):
        return None
    return third_person(clause)


def _says_one_thing(clause: str, word: str) -> bool:
    """Whether a clause with one content word still tells something: "I exercise", "I've
    never been on Twitter", "I'm not athletic at all"; not "I rode one", "I tried"."""
    vague = any(w.lower() in VAGUE_OBJECTS or w.lower() in ("one", "ones", "there")
                for w in _WORD.findall(clause))
    return not vague and word not in CHAT_ADJECTIVES and word not in CHAT_VERBS \
        and not word.endswith("ed") and word not in PAST_VERBS


def _identity(clause: str) -> bool:
    """"I'm adopted", "I'm a wrestler", "I am an only child": what someone is, in one
    content word (a mood or a reaction, "I'm tired", "I'm a mess", is not)."""
    m = _BE_ONE.match(clause)
    if m is None:
        return False
    word = m.group("x").lower()
    if len(word) < 4 or word in CHAT_ADJECTIVES or word in NOT_NAMES or word in FUNCTION_WORDS:
        return False
    # Without an article, a word shaped like an adjective or a role, or a long one: not
    # a short lower-case name ("I'm theo").
    return bool(m.group("art")) or word.endswith(_IDENTITY_ENDINGS) or len(word) >= 7


def _their(clause: str, m: re.Match[str]) -> str | None:
    """A clause about one of the user's people or things: "my son is in junior high"."""
    words = [w.lower() for w in m.group("who").split()]
    while len(words) > 1 and words[0] in RELATION_MODIFIERS:
        words.pop(0)
    noun = re.sub(r"(?:'s|’s)$", "", words[0])
    if noun in ("name", "names") or not (p := _PREDICATE.match(clause)):
        return None
    predicate = _APPOSITIVE.sub("", p.group("pred")).strip()
    verb, _, rest = predicate.partition(" ")
    if not verb.islower():  # "my sister Maya": a name, no statement
        return None
    as_mine = f"I am {rest}" if verb.lower() in ("is", "are", "'s", "’s") else f"I {predicate}"
    if not _worth_keeping(as_mine):
        return None
    need = 1 if noun in RELATIONS or noun in MY_THINGS else 2
    if len(content_words(predicate)) < need:
        return None
    return third_person(f"my {' '.join(clause.split()[1:])}")


# -- "her name was Catherine": a name for the person just mentioned ------------------------

_EX_EVENT = re.compile(r"\b(?:divorced?|divorcing|broke\s+up|break\s*up|split\s+up|separated|"
                       r"my\s+ex)\b", re.IGNORECASE)
_MARRIAGE = re.compile(r"\b(?:divorc\w*|separated|marriage|married|wife|husband)\b",
                       re.IGNORECASE)
_MENTION = re.compile(
    rf"\b(?:my|a|an)\s+(?:(?:{'|'.join(sorted(RELATION_MODIFIERS))})[\s-]+){{0,2}}"
    rf"(?P<rel>{'|'.join(sorted(RELATIONS, key=len, reverse=True))})\b",
    re.IGNORECASE,
)
_THEIR_NAME = re.compile(
    r"^(?:(?P<pron>her|his|its|their)\s+name(?:'s|’s|\s+is|\s+was)|"
    r"(?P<pron2>she|he|it)(?:'s|’s|\s+is|\s+was)\s+(?:called|named))\s+"
    r"(?P<name>[^\W\d_][\w'’-]*)",
    re.IGNORECASE,
)


def mentioned(sentence: str, previous: str | None) -> str | None:
    """Who a following "her name was ..." would name: "ex", "ex-<wife|...>" hints
    or a relation word ("sister", "dog"), from this sentence or else ``previous``."""
    first_person = re.search(r"\b(?:i|my|me|we|our)\b", sentence, re.IGNORECASE)
    if first_person and _EX_EVENT.search(sentence):
        return "ex-marriage" if _MARRIAGE.search(sentence) else "ex"
    found = [m.group("rel").lower() for m in _MENTION.finditer(sentence)] if first_person else []
    return found[-1] if found else previous


def named(sentence: str, antecedent: str | None) -> list[Fact]:
    """"Her name was Catherine" after "I went through a divorce" -> "User's ex-wife is
    called Catherine."; after "I have a dog" -> "User's dog is called ..."."""
    m = _THEIR_NAME.match(opening_stripped(sentence))
    if m is None or antecedent is None:
        return []
    name = as_name(m.group("name"), capitalized=True)
    if name is None:
        return []
    pronoun = (m.group("pron") or m.group("pron2")).lower()
    if antecedent.startswith("ex"):
        married = antecedent == "ex-marriage"
        who = {"her": "ex-wife" if married else "ex-girlfriend",
               "she": "ex-wife" if married else "ex-girlfriend",
               "his": "ex-husband" if married else "ex-boyfriend",
               "he": "ex-husband" if married else "ex-boyfriend"}.get(pronoun, "ex")
    else:
        who = antecedent
    return [Fact("person", f"User's {who} is called {name}.")]


_HE_SHE = re.compile(r"^(?P<pron>he|she)(?P<clitic>'s|’s)?\s+(?P<rest>\w.*)$", re.IGNORECASE)


def about(clause: str, antecedent: str | None, today: date) -> list[Fact]:
    """"He is an electrician" right after "my dad ..." -> "User's dad is an
    electrician."; nothing when "he" cannot be the person just mentioned."""
    if antecedent is None or antecedent.startswith("ex") or antecedent not in RELATIONS:
        return []
    m = _HE_SHE.match(opening_stripped(clause))
    if m is None:
        return []
    wrong = FEMALE if m.group("pron").lower() == "he" else MALE
    if antecedent in wrong or antecedent in _PETS:
        return []
    verb = " is" if m.group("clitic") else ""
    return statement(f"my {antecedent}{verb} {m.group('rest')}", today)
