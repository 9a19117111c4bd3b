"""Appraisal: how a user's message feels, as valence and arousal, by rules.

A small hand-made lexicon gives each affect word a (valence, arousal) pair, in the
spirit of VADER and the NRC VAD lexicon but far smaller. Rules on top:

- negation ("not", "never", "-n't", ... up to three words before) flips valence
  and damps it ("not happy" is unhappy, but less than "sad");
- intensifiers ("very", "so") and softeners ("a bit", "slightly") scale a word;
- after "but" the clause counts more than before it;
- emoticons and emoji count like words, and are never negated;
- exclamation marks and shouted (ALL CAPS) words raise arousal and amplify.

Deterministic, pure, and fast: no model, no I/O.
"""

from __future__ import annotations

import math
import re

from companion.types import Mood

# fmt: off
# word -> (valence, arousal), both in -1 .. +1
LEXICON: dict[str, tuple[float, float]] = {
    # pleasant, lively
    "happy": (0.8, 0.5), "happier": (0.8, 0.5), "happiest": (0.9, 0.6), "happily": (0.7, 0.4),
    "happiness": (0.8, 0.4),
    "glad": (0.7, 0.3), "joy": (0.9, 0.6), "joyful": (0.9, 0.6), "excited": (0.8, 0.9),
    "exciting": (0.7, 0.8), "thrilled": (0.9, 0.9), "amazing": (0.9, 0.7), "awesome": (0.8, 0.6),
    "wonderful": (0.9, 0.5), "fantastic": (0.9, 0.7), "great": (0.7, 0.4), "good": (0.5, 0.2),
    "nice": (0.5, 0.1), "fun": (0.7, 0.6), "funny": (0.6, 0.5), "love": (0.9, 0.5),
    "lovely": (0.8, 0.3), "adore": (0.9, 0.5), "beautiful": (0.8, 0.3), "brilliant": (0.8, 0.5),
    "perfect": (0.8, 0.4), "yay": (0.8, 0.8), "hooray": (0.8, 0.8), "wow": (0.5, 0.8),
    "haha": (0.6, 0.5), "hahaha": (0.7, 0.6), "lol": (0.5, 0.4), "lmao": (0.6, 0.6),
    "laugh": (0.6, 0.5), "laughing": (0.7, 0.6), "smile": (0.6, 0.2), "proud": (0.7, 0.5),
    "grateful": (0.8, 0.2), "thankful": (0.8, 0.2), "thanks": (0.5, 0.1), "thank": (0.5, 0.1),
    "cool": (0.5, 0.3), "best": (0.8, 0.4), "win": (0.7, 0.6), "won": (0.7, 0.6),
    "success": (0.7, 0.5), "hope": (0.5, 0.2), "hopeful": (0.6, 0.2), "sweet": (0.6, 0.2),
    "enjoy": (0.7, 0.3), "delighted": (0.9, 0.6), "cheerful": (0.8, 0.5), "better": (0.5, 0.2),
    "okay": (0.1, -0.1), "ok": (0.1, -0.1), "fine": (0.2, -0.1), "alright": (0.2, -0.1),
    "interesting": (0.5, 0.4), "curious": (0.4, 0.4), "beloved": (0.9, 0.3), "miracle": (0.8, 0.6),
    # pleasant, calm
    "calm": (0.4, -0.6), "relaxed": (0.6, -0.6), "peaceful": (0.7, -0.6), "content": (0.6, -0.3),
    "cozy": (0.6, -0.4), "cosy": (0.6, -0.4), "safe": (0.5, -0.4), "comfortable": (0.5, -0.4),
    "rested": (0.5, -0.4), "gentle": (0.5, -0.4), "serene": (0.7, -0.6), "warm": (0.5, -0.1),
    # unpleasant, low
    "sad": (-0.7, -0.4), "sadly": (-0.6, -0.3), "unhappy": (-0.7, -0.2), "down": (-0.4, -0.4),
    "depressed": (-0.9, -0.5), "lonely": (-0.7, -0.4), "alone": (-0.4, -0.3), "tired": (-0.3, -0.7),
    "exhausted": (-0.5, -0.6), "bored": (-0.4, -0.6), "boring": (-0.4, -0.5), "sorry": (-0.4, -0.2),
    "miss": (-0.3, 0.0), "hurt": (-0.7, 0.2), "hurts": (-0.7, 0.2), "cry": (-0.7, 0.3),
    "crying": (-0.7, 0.3), "cried": (-0.7, 0.2), "tears": (-0.6, 0.2), "lost": (-0.5, -0.1),
    "empty": (-0.6, -0.5), "hopeless": (-0.9, -0.5), "miserable": (-0.9, -0.2),
    "gloomy": (-0.6, -0.4),
    "disappointed": (-0.6, -0.1), "heartbroken": (-0.9, 0.1), "grief": (-0.9, -0.1),
    "died": (-0.8, 0.2), "dead": (-0.7, 0.0), "sick": (-0.5, -0.2), "ill": (-0.5, -0.2),
    "bad": (-0.6, 0.1), "worse": (-0.7, 0.2), "worst": (-0.9, 0.4), "poor": (-0.4, -0.1),
    "meh": (-0.2, -0.5), "sigh": (-0.3, -0.4), "ugh": (-0.5, 0.3), "failed": (-0.7, 0.2),
    "fail": (-0.6, 0.2), "failure": (-0.8, 0.1), "lose": (-0.5, 0.2), "rejected": (-0.8, 0.2),
    "problem": (-0.4, 0.2), "wrong": (-0.5, 0.2), "broke": (-0.5, 0.2), "broken": (-0.6, 0.1),
    "awful": (-0.8, 0.4), "terrible": (-0.9, 0.5), "horrible": (-0.9, 0.5), "sucks": (-0.6, 0.3),
    # unpleasant, tense
    "angry": (-0.7, 0.8), "mad": (-0.6, 0.7), "furious": (-0.9, 0.9), "annoyed": (-0.5, 0.5),
    "annoying": (-0.5, 0.5), "frustrated": (-0.6, 0.6), "hate": (-0.9, 0.7),
    "stressed": (-0.6, 0.7),
    "stress": (-0.6, 0.6), "anxious": (-0.6, 0.7), "worried": (-0.6, 0.5), "worry": (-0.5, 0.5),
    "nervous": (-0.4, 0.7), "scared": (-0.7, 0.8), "afraid": (-0.7, 0.7), "terrified": (-0.9, 0.9),
    "panic": (-0.8, 0.9), "upset": (-0.6, 0.5), "awkward": (-0.3, 0.3), "jealous": (-0.5, 0.5),
    "ashamed": (-0.7, 0.3), "embarrassed": (-0.5, 0.4), "overwhelmed": (-0.6, 0.6),
    "damn": (-0.4, 0.6), "shit": (-0.6, 0.6), "fuck": (-0.6, 0.8), "wtf": (-0.5, 0.8),
}

# emoticon or emoji -> (valence, arousal); never negated.
EMOTICONS: dict[str, tuple[float, float]] = {
    ":)": (0.6, 0.2), ":-)": (0.6, 0.2), "(:": (0.6, 0.2), ":]": (0.5, 0.2), "=)": (0.6, 0.2),
    ";)": (0.5, 0.3), ";-)": (0.5, 0.3), ":d": (0.8, 0.6), ":-d": (0.8, 0.6), "xd": (0.7, 0.7),
    ":p": (0.5, 0.4), ":-p": (0.5, 0.4), "<3": (0.8, 0.3), "^^": (0.6, 0.3), "^_^": (0.6, 0.3),
    ":(": (-0.6, -0.2), ":-(": (-0.6, -0.2), "):": (-0.6, -0.2), ":[": (-0.5, -0.2),
    ":'(": (-0.8, 0.2), ":/": (-0.3, 0.0), ":-/": (-0.3, 0.0), ":|": (-0.1, -0.3),
    "</3": (-0.8, 0.2), "d:": (-0.6, 0.6), ">:(": (-0.7, 0.7), "-_-": (-0.3, -0.4),
}
EMOJI: dict[str, tuple[float, float]] = {
    "😀": (0.7, 0.5), "😃": (0.8, 0.6), "😄": (0.8, 0.6), "😁": (0.8, 0.6), "😆": (0.8, 0.7),
    "😊": (0.7, 0.2), "🙂": (0.5, 0.1), "😍": (0.9, 0.6), "🥰": (0.9, 0.4), "😘": (0.8, 0.4),
    "❤": (0.8, 0.3), "💕": (0.8, 0.3), "💖": (0.8, 0.4), "😂": (0.7, 0.8), "🤣": (0.7, 0.9),
    "🎉": (0.8, 0.8), "👍": (0.5, 0.2), "✨": (0.6, 0.4), "🥳": (0.9, 0.9), "😌": (0.5, -0.5),
    "😢": (-0.7, 0.1), "😭": (-0.8, 0.5), "😞": (-0.7, -0.3), "😔": (-0.6, -0.4),
    "🙁": (-0.5, -0.1),
    "☹": (-0.6, -0.1), "😟": (-0.6, 0.3), "😩": (-0.6, 0.4), "😫": (-0.6, 0.4), "😠": (-0.7, 0.7),
    "😡": (-0.8, 0.8), "🤬": (-0.9, 0.9), "😱": (-0.6, 0.9), "😨": (-0.7, 0.7), "😰": (-0.6, 0.7),
    "💔": (-0.8, 0.2), "👎": (-0.5, 0.2), "😴": (0.0, -0.8), "🥱": (-0.2, -0.7), "😐": (-0.1, -0.3),
}

# What a negated word means when flipping it would be too weak ("not okay" is not mild).
NEGATED: dict[str, tuple[float, float]] = {
    "okay": (-0.6, 0.3), "ok": (-0.6, 0.3), "fine": (-0.5, 0.3), "alright": (-0.5, 0.3),
}

NEGATORS: frozenset[str] = frozenset({
    "not", "no", "never", "nothing", "nobody", "none", "nowhere", "neither", "nor", "without",
    "hardly", "barely", "cannot", "cant", "dont", "doesnt", "didnt", "isnt", "wasnt", "arent",
    "werent", "wont", "wouldnt", "shouldnt", "couldnt", "aint", "havent", "hasnt", "hadnt",
})
INTENSIFIERS: dict[str, float] = {
    "very": 1.4, "so": 1.3, "really": 1.3, "super": 1.4, "extremely": 1.6, "incredibly": 1.5,
    "totally": 1.3, "absolutely": 1.4, "completely": 1.4, "utterly": 1.5, "truly": 1.3,
    "deeply": 1.4, "such": 1.2, "too": 1.2, "most": 1.3, "insanely": 1.5, "freaking": 1.4,
    "bit": 0.6, "slightly": 0.6, "somewhat": 0.7, "kinda": 0.7, "sorta": 0.7, "little": 0.7,
    "fairly": 0.8, "rather": 0.8, "barely": 0.5, "almost": 0.7, "pretty": 1.1, "quite": 1.1,
}
# Inflections tried when a word is not in the lexicon: (suffix, replacement).
_SUFFIXES = (
    ("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("d", ""), ("es", ""), ("s", ""),
    ("ly", ""), ("ness", ""),
)
# fmt: on
CONTRASTS: frozenset[str] = frozenset({"but", "however", "though", "although", "yet"})

NEGATION_SCOPE = 3  # words after a negator that it reaches
NEGATION_FLIP = -0.6  # valence factor of a negated word
NEGATED_AROUSAL = -0.3  # arousal factor of a negated word ("not excited" is calm)
BEFORE_CONTRAST, AFTER_CONTRAST = 0.5, 1.5
SHOUT_BOOST = 1.3  # an ALL-CAPS affect word in a mixed-case message
EXCLAIM_AROUSAL = 0.15  # per "!", up to MAX_EXCLAIMS
EXCLAIM_BOOST = 0.08  # valence amplification per "!"
MAX_EXCLAIMS = 3
SHOUT_AROUSAL = 0.35  # the whole message shouted
SQUASH = 0.6  # x / sqrt(x^2 + SQUASH): sums of word scores to -1 .. +1

_EMOTICON_RE = "|".join(re.escape(e) for e in sorted(EMOTICONS, key=len, reverse=True))
_EMOJI_RE = "[" + "".join(re.escape(e) for e in EMOJI) + "]"
_TOKEN = re.compile(
    rf"(?<!\S)(?P<emoticon>{_EMOTICON_RE})(?!\S)"
    rf"|(?P<word>[^\W\d_]+(?:['’][^\W\d_]+)*)"
    rf"|(?P<emoji>{_EMOJI_RE})"
    r"|(?P<bang>!)"
    r"|(?P<stop>[.,;:?\n])",
    re.IGNORECASE,
)


def appraise(text: str) -> Mood:
    """Valence and arousal of a message, each in -1 .. +1; (0, 0) when it says nothing."""
    tokens = [(m.lastgroup or "", m.group()) for m in _TOKEN.finditer(text)]
    letters = [ch for ch in text if ch.isalpha()]
    shouting = (
        len(letters) >= 4
        and all(not ch.islower() for ch in letters)
        and any(ch.isupper() for ch in letters)
    )
    last_contrast = max(
        (i for i, (kind, tok) in enumerate(tokens) if kind == "word" and tok.lower() in CONTRASTS),
        default=-1,
    )

    v_sum = a_sum = 0.0
    negate_left = 0  # words still inside a negation's scope
    scale = 1.0  # product of the intensifiers just before the next word
    bangs = 0
    for i, (kind, tok) in enumerate(tokens):
        weight = 1.0
        if last_contrast >= 0:
            weight = BEFORE_CONTRAST if i < last_contrast else AFTER_CONTRAST
        if kind == "bang":
            bangs += 1
            continue
        if kind == "stop":
            negate_left, scale = 0, 1.0
            continue
        if kind in ("emoticon", "emoji"):
            table = EMOTICONS if kind == "emoticon" else EMOJI
            v, a = table.get(tok.lower(), table.get(tok, (0.0, 0.0)))
            v_sum += v * weight
            a_sum += a * weight
            continue
        word = tok.lower().replace("’", "'")
        bare = word.replace("'", "")
        if bare in NEGATORS or word.endswith("n't"):
            negate_left = NEGATION_SCOPE
            continue
        if word in INTENSIFIERS:
            scale *= INTENSIFIERS[word]
            continue
        entry = _lookup(word)
        if entry is not None:
            v, a = entry
            if negate_left > 0 and word in NEGATED:
                (v, a), negate_left = NEGATED[word], 0
            factor = scale * weight
            if not shouting and tok.isupper() and len(tok) > 2:
                factor *= SHOUT_BOOST
                a += 0.3
            if negate_left > 0:
                v *= NEGATION_FLIP
                a *= NEGATED_AROUSAL
            v_sum += v * factor
            a_sum += a * factor
        scale = 1.0
        negate_left = max(0, negate_left - 1)

    valence = _squash(v_sum)
    arousal = _squash(a_sum)
    shown = min(bangs, MAX_EXCLAIMS)
    valence *= 1.0 + EXCLAIM_BOOST * shown
    arousal += EXCLAIM_AROUSAL * shown + (SHOUT_AROUSAL if shouting else 0.0)
    return Mood(valence=_clamp(valence), arousal=_clamp(arousal))


def _lookup(word: str) -> tuple[float, float] | None:
    if word in LEXICON:
        return LEXICON[word]
    for suffix, repl in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)] + repl
            if stem in LEXICON:
                return LEXICON[stem]
    return None


def _squash(total: float) -> float:
    return total / math.sqrt(total * total + SQUASH)


def _clamp(x: float) -> float:
    return max(-1.0, min(1.0, x))
