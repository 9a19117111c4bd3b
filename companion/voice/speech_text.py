"""Text prepared for speech: :func:`speakable` and :class:`SentenceChunker`.

As pipecat does, the reply's token stream is cut into sentences as soon as each
is complete (so the first sentence is synthesized while the model writes the
next), and each sentence is cleaned of what should not be read aloud before
synthesis::

    chunker = SentenceChunker()
    for token in reply:
        for sentence in chunker.push(token):
            say(speakable(sentence))        # skip it when speakable() returns ""
    for sentence in chunker.flush():
        say(speakable(sentence))

The chunker returns the reply's own text (stripped), so what was spoken can be
matched back to the reply after an interruption; :func:`speakable` is applied
per sentence. Pure functions and plain state: no I/O, no heavy imports.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# ---------------------------------------------------------------- speakable()


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_FENCED = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_INLINE_CODE = re.compile(r"`([^`\n]*)`")
_ANGLE_URL = re.compile(r"<((?:https?://|www\.)[^>\s]+)>", re.IGNORECASE)
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>()\[\]\"']+", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_QUOTE = re.compile(r"^\s{0,3}>+\s?", re.MULTILINE)
_BULLET = re.compile(r"^\s*(?:[-*+\u2022]|\d{1,3}[.)])\s+", re.MULTILINE)
_RULE = re.compile(
    r"^\s*(?:[-*_]\s*){3,}$|^\s*\|?(?:\s*:?-{2,}:?\s*\|)+\s*:?-*:?\s*$", re.MULTILINE
)
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_STRIKE = re.compile(r"~~(.+?)~~")
_STAR_SPAN = re.compile(r"\*(?=\S)([^*\n]+?)(?<=\S)\*")
_UNDERSCORE_SPAN = re.compile(r"(?<![\w])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w])")
_PAREN = re.compile(r"\(([^()\n]*)\)")
_BRACKET = re.compile(r"\[([^\[\]\n]*)\]")
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f1e6-\U0001f1ff"
    "\U00002b00-\U00002bff\U0000fe00-\U0000fe0f\U0000200d\U000020e3\U000e0020-\U000e007f]"
)
_EMOTICON = re.compile(r"(?<!\S)(?:[:;=][-^o']?[()\[\]DPpO3/\\|*]+|<3+|\^_?\^|xD+|XD+)(?!\S)")
_ACTION_VERB = re.compile(r"^[a-z]+(?:s|ing)$")
#: Single words that are stage directions wherever they stand: *smiles*, (laughs).
_ACTIONS = _words(
    "smiles laughs giggles sighs grins winks nods chuckles blushes waves hugs shrugs gasps "
    "pouts beams smirks yawns whispers hums pauses sniffles cries squeals gulps coughs "
    "smiling laughing giggling sighing grinning winking nodding chuckling blushing waving "
    "shrugging gasping pouting beaming smirking yawning whispering humming pausing"
)
_SENTENCE_END = ".!?\u2026"


def speakable(text: str) -> str:
    """``text`` as it should be read aloud: one line, no markup, no stage directions.

    Removes code blocks, markdown markup (headings, bullets, bold, italics,
    strike-through, tables, quotes), emoji and emoticons, and roleplay actions
    (``*smiles*``, ``(laughs)``, ``[sighs]``); keeps a link's text and an URL's
    site name (``https://docs.python.org/3/`` -> ``docs.python.org``). Lines
    become sentences. Returns ``""`` when nothing is left to say.
    """
    text = _FENCED.sub(" ", text.replace("\r\n", "\n")).replace("&", " and ")
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _ANGLE_URL.sub(r"\1", text)
    text = _URL.sub(_site, text)
    text = _RULE.sub("", text)
    text = _HEADING.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub("", text)
    text = _STRIKE.sub(r"\1", text)
    text = _BOLD.sub(r"\2", text)
    text = _STAR_SPAN.sub(_star_span, text)
    text = _UNDERSCORE_SPAN.sub(r"\1", text)
    text = _PAREN.sub(_parenthetical, text)
    text = _BRACKET.sub(" ", text)
    text = _EMOJI.sub(" ", text)
    text = _EMOTICON.sub(" ", text)
    text = re.sub(r"[*`#~|<>]|(?<!\w)_+|_+(?!\w)", " ", text)
    # Joining lines can close a bracket or parenthesis opened on an earlier line.
    text = _join_lines(text)
    text = _BRACKET.sub(" ", _PAREN.sub(_parenthetical, text))
    return _tidy(text)


def _site(match: re.Match[str]) -> str:
    url = match.group(0).rstrip(".,;:!?")
    tail = match.group(0)[len(url):]
    host = urlsplit(url if "://" in url else f"http://{url}").hostname or ""
    host = host.removeprefix("www.")
    return (host or "a link") + tail


def _star_span(match: re.Match[str]) -> str:
    """``*...*``: an action (dropped) or emphasis (its words kept)."""
    inner = match.group(1).strip()
    before = match.string[: match.start()].rstrip(" \t")
    after = match.string[match.end():].lstrip(" \t")
    at_start = not before or before[-1] in _SENTENCE_END + "\n*)]"
    at_end = not after or after[0] in _SENTENCE_END + "\n*(["
    if at_start and (inner[:1].islower() or not after or not after[0].islower()):
        return " "
    if (at_start or at_end) and _looks_like_action(inner):
        return " "
    return inner


def _looks_like_action(inner: str) -> bool:
    """"smiles", "leans in closer", "laughing softly"; not "amazing" or "so much fun"."""
    words = inner.split()
    if not words or not inner.islower() or not all(w.isalpha() for w in words):
        return False
    if words[0] in _ACTIONS:
        return True
    return 2 <= len(words) <= 6 and bool(_ACTION_VERB.match(words[0]))


def _parenthetical(match: re.Match[str]) -> str:
    """``(laughs)``, ``(smiling warmly)``: dropped; other parentheses kept."""
    inner = match.group(1).strip()
    if not inner or _looks_like_action(inner):
        return " "
    return match.group(0)


def _join_lines(text: str) -> str:
    """Lines (headings, list items) become sentences: end each with a stop if it has none."""
    lines = [line.strip() for line in text.split("\n")]
    lines = [line for line in lines if any(ch.isalnum() for ch in line)]
    out: list[str] = []
    for i, line in enumerate(lines):
        if i < len(lines) - 1 and line[-1] not in _SENTENCE_END + ",;:\"'\u201d\u2019)":
            line += "."
        out.append(line)
    return " ".join(out)


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\(\s*\)|\[\s*\]", " ", text)
    text = re.sub(r"\s+([.,;:!?\u2026])", r"\1", text)
    text = re.sub(r"([.,;:!?])(?:\s*[,;:])+", r"\1", text)
    text = re.sub(r"(?<![.])\.\s*\.(?!\.)", ".", text)
    text = re.sub(r"^(?:[\s.,;:!?\u2026)\]]|(?:[-+\u2022]|\d{1,3}[.)])(?=\s))+", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text if any(ch.isalnum() for ch in text) else ""


# ---------------------------------------------------------------- SentenceChunker

#: Never end a sentence: titles before a name, and "e.g."-like openers.
_NEVER_END = _words(
    "mr mrs ms dr prof sr jr st mt capt gen col lt sgt rev hon fr messrs mme mlle "
    "vs e.g eg i.e ie cf viz approx"
)
#: End a sentence only when the next word starts with a capital.
_MAYBE_END = _words(
    "etc u.s u.k u.n a.m p.m inc ltd co corp jan feb mar apr jun jul aug sep sept oct "
    "nov dec no fig"
)
_TERMINAL = ".!?\u2026"
_CLOSERS = "\"'\u201d\u2019)]*_`\u00bb"
_CLAUSE = re.compile(r"[,;:](?=\s)|\s[\u2013\u2014-](?=\s)")


class SentenceChunker:
    """Cuts a stream of text into sentences as soon as each one is complete.

    A sentence ends at ``.``, ``!``, ``?``, ``…`` (and runs like ``?!`` or
    ``...``), with any closing quotes, brackets or emphasis marks after it, once
    whitespace follows; and at every line break. Not after titles (``Mr.``,
    ``Dr.``), ``e.g.``/``i.e.``, initials (``J. R. R.``) or inside numbers
    (``3.14``); after an ellipsis or ``etc.``/``U.S.``-like abbreviations only
    when the next word is capitalized (the chunker waits for that word); not
    inside an unclosed ``*action*``, parenthesis, bracket or inline code; and not
    inside a fenced code block, which comes out whole.

    Length: the first sentence comes out as soon as it is complete whatever its
    length ("Oh." is heard at once, and covers the time to make the next one).
    With ``first_words`` (e.g. 6), the first piece is shorter still: it ends at
    the first comma, semicolon, colon or dash, or after ``first_words`` words,
    whichever comes first (her first sound does not wait for a whole sentence);
    the rest follows in sentences.
    After it, a fragment shorter than ``min_chars`` is held and joined to the next
    sentence (while earlier audio plays, so the wait is not heard; fewer tiny
    clips, better prosody), unless the two together would pass ``max_chars``. A
    sentence longer than ``max_chars`` (``first_max_chars`` for the first) is cut
    at its last comma, semicolon, colon or dash within the limit, else at its
    last space: synthesis of a long first sentence starts early.

    The cuts depend only on the text, not on how it is split into chunks.
    """

    def __init__(
        self,
        *,
        min_chars: int = 15,
        max_chars: int = 180,
        first_max_chars: int = 90,
        first_words: int = 0,
    ) -> None:
        if not 0 <= min_chars < first_max_chars <= max_chars:
            raise ValueError("need 0 <= min_chars < first_max_chars <= max_chars")
        if first_words < 0:
            raise ValueError("first_words must be 0 (off) or more")
        self.first_words = first_words
        self.min_chars = min_chars
        self.max_chars = max_chars
        self.first_max_chars = first_max_chars
        self._buffer = ""
        self._held = ""
        self._emitted = 0

    def push(self, chunk: str) -> list[str]:
        """Add text; returns the sentences it completed (often none)."""
        self._buffer += chunk
        return self._drain(final=False)

    def flush(self) -> list[str]:
        """The rest, at the end of the reply; the chunker is then ready for the next one."""
        out = self._drain(final=True)
        if self._held.strip():
            out.append(self._held.strip())
        self._buffer, self._held, self._emitted = "", "", 0
        return out

    def _drain(self, *, final: bool) -> list[str]:
        out: list[str] = []
        while True:
            limit = self.first_max_chars if self._emitted == 0 else self.max_chars
            cut = _find_cut(self._buffer, limit, final=final)
            if self._emitted == 0 and self.first_words:
                clause = _first_clause_cut(self._buffer, self.first_words)
                if clause is not None and (cut is None or clause < cut):
                    cut = clause
            if cut is None:
                return out
            piece, self._buffer = self._buffer[:cut], self._buffer[cut:]
            if not piece.strip():
                continue
            for sentence in self._merge(piece):
                out.append(sentence)
                self._emitted += 1

    def _merge(self, piece: str) -> list[str]:
        """What to emit for ``piece``, joined to a held fragment; holds it if too short."""
        held = self._held.strip()
        if held and len((self._held + piece).strip()) > self.max_chars:
            self._held = ""
            return [held, *self._merge(piece)]
        text = self._held + piece
        if self._emitted > 0 and len(text.strip()) < self.min_chars:
            self._held = text
            return []
        self._held = ""
        return [text.strip()]


def _find_cut(buf: str, limit: int, *, final: bool) -> int | None:
    """Where the first sentence of ``buf`` ends, or None until more text decides it."""
    depth = {"(": 0, "[": 0}
    stars = ticks = 0
    fence = False
    start = len(buf) - len(buf.lstrip())
    if start == len(buf):
        return None
    i = start
    n = len(buf)
    while i < n:
        if buf.startswith("```", i):
            fence = not fence
            i += 3
            if not fence:
                end = buf.find("\n", i)
                if end == -1:
                    return n if final else None
                return end
            continue
        if fence:
            i += 1
            continue
        if i - start >= limit:
            cut = _split_long(buf, start, limit)
            return n if cut is None and final else cut
        ch = buf[i]
        if ch == "\n":
            return i
        if ch in "([":
            depth[ch] += 1
        elif ch == ")":
            depth["("] = max(0, depth["("] - 1)
        elif ch == "]":
            depth["["] = max(0, depth["["] - 1)
        elif ch == "*" and not _is_bullet(buf, i):
            stars += 1
        elif ch == "`":
            ticks += 1
        elif ch in _TERMINAL:
            run_end = i
            while run_end < n and buf[run_end] in _TERMINAL:
                run_end += 1
            end = run_end
            while end < n and buf[end] in _CLOSERS:
                closer = buf[end]
                if closer == ")":
                    depth["("] = max(0, depth["("] - 1)
                elif closer == "]":
                    depth["["] = max(0, depth["["] - 1)
                elif closer == "*":
                    stars += 1
                elif closer == "`":
                    ticks += 1
                end += 1
            if end == n:
                return n if final else None
            if not buf[end].isspace():
                i = end
                continue
            if end - start > limit:
                cut = _split_long(buf, start, limit)
                return n if cut is None and final else cut
            inside = depth["("] or depth["["] or stars % 2 or ticks % 2
            verdict = "no" if inside else _ends_sentence(buf, i, run_end)
            if verdict == "yes":
                return end
            if verdict == "ask":
                nxt = end
                while nxt < n and buf[nxt].isspace():
                    if buf[nxt] == "\n":
                        return end
                    nxt += 1
                if nxt == n:
                    return n if final else None
                if not buf[nxt].islower():
                    return end
            i = end
            continue
        i += 1
    if final and not fence:
        return n
    return None


def _first_clause_cut(buf: str, words: int) -> int | None:
    """Where the first clause of ``buf`` ends: after its first clause mark (``,;:``
    or a spaced dash) or after ``words`` words, once the text that follows has
    begun; None when neither is in ``buf`` yet (or it is inside markup, a line
    break or a code fence comes first)."""
    depth = stars = ticks = 0
    count = 0
    prev_space = True
    gap = -1  # where the whitespace after the last word began
    for i, ch in enumerate(buf):
        if ch == "\n" or buf.startswith("```", i):
            return None
        if ch.isspace():
            if not prev_space:
                gap = i
            prev_space = True
            continue
        if prev_space:
            inside = depth or stars % 2 or ticks % 2
            spaced_dash = ch in "\u2013\u2014-" and i + 1 < len(buf) and buf[i + 1].isspace()
            if spaced_dash:
                if count and not inside:
                    return gap
            else:
                count += 1
                if count > words and not inside:
                    return gap
        prev_space = False
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        elif ch == "*" and not _is_bullet(buf, i):
            stars += 1
        elif ch == "`":
            ticks += 1
        elif ch in ",;:" and i + 1 < len(buf) and buf[i + 1].isspace() \
                and not (depth or stars % 2 or ticks % 2):
            return i + 1
    return None


def _ends_sentence(buf: str, dot: int, run_end: int) -> str:
    """Whether the terminal run ``buf[dot:run_end]`` ends a sentence: yes, no, or ask
    (decided by the case of the next word)."""
    run = buf[dot:run_end]
    if run != ".":
        return "ask" if run.startswith("...") or "\u2026" in run else "yes"
    word_start = dot
    while word_start > 0 and not buf[word_start - 1].isspace() \
            and buf[word_start - 1] not in "(\"'\u201c*":
        word_start -= 1
    word = buf[word_start:dot]
    if not word:
        return "yes"
    if word.isdigit():
        # "1. " opening a line is a list marker; "in 2023. " ends a sentence
        return "no" if not buf[buf.rfind("\n", 0, word_start) + 1:word_start].strip() else "yes"
    key = word.lower().rstrip(".")
    if key in _NEVER_END:
        return "no"
    if len(word) == 1 and word.isupper():
        return "no"
    if key in _MAYBE_END or ("." in word and all(len(p) <= 2 for p in word.split("."))):
        return "ask"
    return "yes"


def _is_bullet(buf: str, i: int) -> bool:
    line_start = buf.rfind("\n", 0, i) + 1
    return not buf[line_start:i].strip() and i + 1 < len(buf) and buf[i + 1] == " "


def _split_long(buf: str, start: int, limit: int) -> int | None:
    """Cut a sentence that has passed ``limit``: after the last clause mark, else the last space."""
    window = buf[start:start + limit]
    best = None
    for m in _CLAUSE.finditer(window):
        if m.start() >= 10:
            best = m.start() + 1 if buf[start + m.start()] in ",;:" else m.start()
    if best is not None:
        return start + best
    space = window.rfind(" ")
    if space > 0:
        return start + space
    nxt = re.search(r"\s", buf[start + limit:])
    return start + limit + nxt.start() if nxt else None
