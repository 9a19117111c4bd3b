"""Small English helpers for the rule-based extractor: sentences, clauses, names,
trimming an object phrase, and turning "I ..." into "User ...".
"""

from __future__ import annotations

import re

from companion.memory.lexicon import (
    DEMONYMS,
    NOT_NAMES,
    RELATION_MODIFIERS,
    RELATION_PLURALS,
    RELATIONS,
    VAGUE_OBJECTS,
    word_set,
)

_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "mt", "vs", "etc", "e.g",
                  "i.e", "no"}
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\s*\n\s*")

# Where a sentence splits into clauses: a conjunction or comma before a first-person subject.
_SUBJECT = r"(?:i|i'm|i’m|i've|i’ve|i'll|i’ll|i'd|i’d|my|also\s+i|we|we're|we’re|we've|we’ve)\b"
_CLAUSE_SPLIT = re.compile(
    rf"\s*[,;:]?\s*\b(?:and|but|so|because|cause|although|though|while|whereas|plus|also|"
    rf"then|yet|since|after|once|as)\s+(?={_SUBJECT})|\s*[,:]\s*(?={_SUBJECT})|\s+-+\s+",
    re.IGNORECASE,
)
# "I love jazz and hate mornings": the subject of the second verb is implied.
_IMPLIED_SUBJECT = re.compile(
    r"\s+(and|but)\s+(?=(?:(?:now|also|still|just|then)\s+)?(?:love|like|enjoy|adore|hate|"
    r"dislike|live|lived|work|worked|moved|grew|got|have|had|own|play|played|spend|spent|"
    r"study|studied|teach|taught|sing|drive|volunteer|take|took|went|go|started|quit|"
    r"retired|bought|met|married|raised|used\s+to)\b)",
    re.IGNORECASE,
)

# Where an object phrase ends: a new clause, a reason, a time, a filler.
_OBJECT_END = re.compile(
    r"\s+(?:because|since|cause|'cause|when|whenever|while|but|although|though|which|"
    r"who|whom|where|so that|so|unless|until|even though|lol|haha+|lmao|omg|tbh|btw|"
    r"and\s+(?:i|i'm|my|we|you|it|that|they|he|she|then))\b.*$",
    re.IGNORECASE,
)
_PLACE_END = re.compile(
    r"\s+(?:with|for|since|from|after|before|to\s+be|to\s+live|last|next|this|ago|"
    r"in\s+\d{4}|(?:\d+|a|an|one|two|three|a\s+few|few)\s+(?:years?|months?|weeks?|days?)"
    r"|about|around)\b.*$",
    re.IGNORECASE,
)
_FILLER_TAIL = re.compile(
    r"(?:\s+|,\s*)(?:right now|now|these days|nowadays|at the moment|currently|anymore|"
    r"any more|too|as well|a lot|a ton|so much|very much|more than anything|honestly|"
    r"actually|really|though|lol|haha+|tbh|though|to be honest|i guess|i think|ok|okay)$",
    re.IGNORECASE,
)
_PRONOUNS = [
    (re.compile(r"\bmyself\b", re.IGNORECASE), "themselves"),
    (re.compile(r"\bmy\b", re.IGNORECASE), "their"),
    (re.compile(r"\bmine\b", re.IGNORECASE), "theirs"),
    (re.compile(r"\bme\b", re.IGNORECASE), "them"),
    (re.compile(r"\bI(?:'m|’m)\b", re.IGNORECASE), "they're"),
    (re.compile(r"\bI\b"), "they"),
]

MAX_OBJECT_WORDS = 12

_NOT_NAMES = NOT_NAMES | DEMONYMS


def sentences(text: str) -> list[str]:
    """``text`` split into sentences, keeping their final punctuation."""
    parts = [p.strip() for p in _SENTENCE_END.split(text) if p and p.strip()]
    merged: list[str] = []
    for part in parts:
        if merged and merged[-1].endswith(".") and (
            merged[-1].rsplit(None, 1)[-1].rstrip(".").lower() in _ABBREVIATIONS
        ):
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
    return merged


#: A compound subject that starts a sentence: "my wife and I ...", "me and my son ...".
_WHO = (rf"(?:(?:{'|'.join(sorted(RELATION_MODIFIERS))})[\s-]+){{0,2}}"
        rf"(?:{'|'.join(sorted(RELATIONS | RELATION_PLURALS, key=len, reverse=True))})")
COMPOUND_SUBJECT = re.compile(
    rf"^my\s+(?P<who>{_WHO})\s+and\s+(?:i|me)\s+|^me\s+and\s+my\s+(?P<who2>{_WHO})\s+",
    re.IGNORECASE,
)


def clauses(sentence: str) -> list[str]:
    """A sentence split before each new first-person subject: "I love jazz and I hate
    mornings" -> ["I love jazz", "I hate mornings"]; "my wife and I ..." stays whole."""
    sentence = _IMPLIED_SUBJECT.sub(r" \1 I ", sentence.strip().rstrip(".!?;"))
    compound = COMPOUND_SUBJECT.match(sentence)
    protected = compound.end() if compound else 0
    parts, start = [], 0
    for m in _CLAUSE_SPLIT.finditer(sentence):
        if m.start() < protected or m.end() <= start:
            continue
        parts.append(sentence[start:m.start()])
        start = m.end()
    parts.append(sentence[start:])
    return [c.strip(" ,;:") for c in parts if c and c.strip(" ,;:")]


_QUESTION_WORD = (r"(?:what|who|whom|whose|where|when|why|how|which|do|does|did|are|is|was|were|"
                  r"have|has|had|can|could|would|will|should|shall|may|might|wanna|any|ever|"
                  r"isn't|aren't|don't|doesn't|didn't|won't|right|yes|or)\b")
_TAIL_QUESTION = re.compile(
    rf"^(?P<said>.+?)(?:\s*[,:]|\s+-+|\s*[,:]?\s+(?:so|and|but))\s+(?:so\s+|and\s+|but\s+|"
    rf"well\s+|anyway\s+|now\s+)?{_QUESTION_WORD}[^,]*\?$",
    re.IGNORECASE,
)
_STARTS_AS_QUESTION = re.compile(rf"^\W*{_QUESTION_WORD}", re.IGNORECASE)
# "I am 8 years old how old are you?": a statement run on into a question about "you".
_BARE_TAIL_QUESTION = re.compile(
    r"^(?P<said>.+?)\s+(?:how|what|and|so)\s+(?:about\s+you|are\s+you|about\s+yourself|"
    r"old\s+are\s+you|do\s+you|is\s+your|you)\b[^,]*\?$",
    re.IGNORECASE,
)


def said_before_question(sentence: str) -> str | None:
    """The statement a question sentence opens with, or None: "I'm in my final year,
    what about you?" -> "I'm in my final year"; "Do you like dogs, or cats?" -> None."""
    m = _TAIL_QUESTION.match(sentence.strip()) or _BARE_TAIL_QUESTION.match(sentence.strip())
    if m is None or _STARTS_AS_QUESTION.match(m.group("said")):
        return None
    return m.group("said")


def is_hypothetical(clause: str, words: frozenset[str]) -> bool:
    """Whether ``clause`` speaks of a wish or a supposition ("if I lived in Paris"). An
    "if" that comes after a statement ("I have a big library if you're interested")
    only makes what follows it conditional: see :func:`before_condition`."""
    found = [w for w in re.findall(r"[a-z]+", clause.lower()) if w in words]
    return bool(found) and (found != ["if"] or before_condition(clause) == clause)


_CONDITION = re.compile(r"\s*,?\s+(?:even\s+)?if\b.*$", re.IGNORECASE)


def before_condition(clause: str) -> str:
    """``clause`` up to a trailing "if ..." condition."""
    return _CONDITION.sub("", clause) if not re.match(r"\W*(?:even\s+|what\s+|as\s+)?if\b",
                                                      clause, re.IGNORECASE) else clause


def as_name(word: str, *, capitalized: bool) -> str | None:
    """``word`` as a person's name, or None when it cannot be one.

    ``capitalized`` demands the user wrote it with a capital letter (for bare
    mentions like "I'm Theo"); otherwise it is capitalized here ("call me theo").
    """
    word = word.strip("'’-")
    if len(word) < 2 or not word[0].isalpha() or word.lower() in _NOT_NAMES:
        return None
    if capitalized and not word[0].isupper():
        return None
    if word.isupper() and len(word) > 3:  # SHOUTING is not a name
        return None
    return word if word[0].isupper() else word[0].upper() + word[1:]


def clean_object(phrase: str, *, place: bool = False) -> str | None:
    """The thing a verb is about, trimmed to a short phrase in the third person,
    or None when it is empty or vague ("it", "you")."""
    phrase = _OBJECT_END.sub("", phrase.strip())
    if place:
        phrase = _PLACE_END.sub("", phrase)
    previous = None
    while previous != phrase:
        previous = phrase
        phrase = _FILLER_TAIL.sub("", phrase).strip(" .,;:-–—\"'“”‘’()[]")
    words = phrase.split()
    if not words or words[0].lower().strip("'’") in VAGUE_OBJECTS:
        return None
    phrase = " ".join(words[:MAX_OBJECT_WORDS])
    for pattern, replacement in _PRONOUNS:
        phrase = pattern.sub(replacement, phrase)
    return phrase


# Where a whole statement ends: a reason, a contrast, a new subject, laughter.
_STATEMENT_END = re.compile(
    r"(?:\s+|\s*,\s*)(?:because(?!\s+of)|cause|'cause|’cause|but|although|even\s+though|though|unless|"
    r"lol|haha+|lmao|omg|tbh|btw|which\s+is|(?:since|so|and|when|as)\s+(?:i|i'm|i’m|we|"
    r"you|it|it's|it’s|that|they|he|she|there|then|now|so))\b.*$",
    re.IGNORECASE,
)
MAX_STATEMENT_WORDS = 20


def trim_statement(clause: str) -> str | None:
    """A first-person statement cut before a reason, a contrast or a new subject, without
    trailing fillers ("too", "lol"), at most :data:`MAX_STATEMENT_WORDS` words (at a
    comma when there is one); None when nothing is left."""
    clause = _STATEMENT_END.sub("", clause.strip())
    words = clause.split()
    if len(words) > MAX_STATEMENT_WORDS:
        clause = " ".join(words[:MAX_STATEMENT_WORDS])
        if "," in clause:
            clause = clause.rsplit(",", 1)[0]
    previous = None
    while previous != clause:
        previous = clause
        clause = _FILLER_TAIL.sub("", clause).strip(" .,;:-–—\"'“”‘’()[]")
    return clause or None


def pronouns(text: str) -> str:
    """First-person pronouns in ``text`` turned to the third person: my -> their."""
    return _pronouns(text)


# -- third person ---------------------------------------------------------------------

_UNCHANGED = word_set(
    """will would can could should must might may shall did didn't was wasn't had hadn't
    can't cannot won't wouldn't couldn't shouldn't used
    went were got saw made met came took spent ate wrote bought left told said felt
    found thought knew gave ran sang swam drove flew fell lost won sold sent kept slept
    heard taught brought caught began became broke chose forgot paid read built grew drew
    threw rode wore hid led fed hung stood understood sat shot spoke woke froze stole dug
    struck swung lent meant dealt quit put cut hit let shut hurt cost"""
)
#: Verbs in the simple past that tell a date phrase points back in time.
PAST_VERBS = _UNCHANGED - word_set(
    "will would can could should must might may shall can't cannot won't wouldn't couldn't "
    "shouldn't"
)
_IRREGULAR = {"am": "is", "'m": "is", "’m": "is", "have": "has", "do": "does", "go": "goes",
              "don't": "doesn't", "don’t": "doesn't", "are": "is", "'ve": "has", "’ve": "has",
              "'ll": "will", "’ll": "will", "'d": "would", "’d": "would", "haven't": "hasn't"}
_LEADING_ADVERBS = word_set(
    "really just also still finally actually probably definitely totally usually always "
    "never often sometimes already even kinda maybe rather mostly currently now recently "
    "only truly absolutely basically literally honestly generally normally"
)


def conjugate(verb: str) -> str:
    """The third-person singular of a first-person verb: have -> has, fly -> flies."""
    low = verb.lower()
    if low in _IRREGULAR:
        return _IRREGULAR[low]
    if low in _UNCHANGED or low.endswith("ed") or not low.isalpha():
        return verb
    if low.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


_FIRST_PERSON = re.compile(r"^(?:i(?P<clitic>'m|’m|'ve|’ve|'ll|’ll|'d|’d)|i)(?:\s+|$)",
                           re.IGNORECASE)


def third_person(clause: str) -> str | None:
    """"I have an interview" -> "User has an interview"; "my mom is visiting" ->
    "User's mom is visiting"; None when the clause does not start with I or my."""
    clause = clause.strip()
    if re.match(r"^my\s+\S", clause, re.IGNORECASE):
        return "User's " + _pronouns(clause[2:].strip())
    m = _FIRST_PERSON.match(clause)
    if m is None:
        return None
    rest = clause[m.end():].split()
    out = ["User"]
    if m.group("clitic"):
        out.append(conjugate(m.group("clitic")))
    else:
        while rest and rest[0].lower() in _LEADING_ADVERBS:
            out.append(rest.pop(0))
        if not rest:
            return None
        out.append(conjugate(rest.pop(0)))
    return " ".join(out + [_pronouns(" ".join(rest))]).strip()


def _pronouns(text: str) -> str:
    for pattern, replacement in _PRONOUNS:
        text = pattern.sub(replacement, text)
    return text
