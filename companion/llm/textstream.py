"""Turning a stream of token ids into a stream of text: pure helpers, no model needed.

:class:`IncrementalDetokenizer` decodes one token at a time without breaking
multi-byte characters or losing the spaces that some tokenizers only render in
context. :class:`StopFilter` withholds text that might be the start of a stop
sequence, and ends the stream just before one appears.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

#: Decodes token ids to text (e.g. ``lambda ids: tok.decode(ids, skip_special_tokens=True)``).
Decode = Callable[[Sequence[int]], str]

_REPLACEMENT = "\ufffd"


class IncrementalDetokenizer:
    """Emit exactly the new text each token adds.

    Decoding tokens one by one is wrong twice over: a character split across
    byte-level tokens decodes to U+FFFD, and SentencePiece tokenizers drop the
    leading space of a word decoded on its own. So each step decodes a short
    window of recent tokens and emits what the window gained; text ending in an
    incomplete character is held back until the next token completes it.

    ``context`` are ids already shown (the end of the prompt): they give the
    first reply token its left context and are never emitted.
    """

    def __init__(self, decode: Decode, context: Sequence[int] = ()) -> None:
        self._decode = decode
        self._ids: list[int] = list(context)
        self._prefix = 0  # start of the decode window
        self._read = len(self._ids)  # ids up to here have been emitted

    def push(self, token_id: int) -> str:
        """Add one token; return the text it completes ('' while a character is incomplete)."""
        self._ids.append(token_id)
        shown = self._decode(self._ids[self._prefix : self._read])
        full = self._decode(self._ids[self._prefix :])
        if len(full) <= len(shown) or full.endswith(_REPLACEMENT):
            return ""
        self._prefix, self._read = self._read, len(self._ids)
        return full[len(shown) :]

    def flush(self) -> str:
        """Text of tokens still held back (an incomplete character at the very end)."""
        shown = self._decode(self._ids[self._prefix : self._read])
        full = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return full[len(shown) :] if len(full) > len(shown) else ""


class StopFilter:
    """Pass text through until a stop sequence; never emit the stop or anything after it.

    Text that could be the beginning of a stop sequence is held back until the
    following text rules it in or out.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.stopped = False

    def push(self, text: str) -> str:
        """Feed new text; return what is safe to emit. Sets :attr:`stopped` at a stop."""
        if self.stopped:
            return ""
        buffer = self._held + text
        hits = [i for s in self._stops if (i := buffer.find(s)) >= 0]
        if hits:
            self.stopped = True
            self._held = ""
            return buffer[: min(hits)]
        keep = _longest_stop_prefix_suffix(buffer, self._stops)
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """At the end of generation: release what was held back (it was not a stop)."""
        held, self._held = ("" if self.stopped else self._held), ""
        return held


def _longest_stop_prefix_suffix(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that is a proper prefix of some stop."""
    best = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:n]):
                best = n
                break
    return best


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading items ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


# A sentence end: terminal punctuation (and closing quotes or brackets) followed
# by white space. The word before it must not be a common abbreviation.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)")
_PENDING_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*$")
_ABBREVIATIONS = frozenset(
    ("mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "jr", "sr", "prof", "mt")
)


class SentenceLimit:
    """Ends streamed text after ``limit`` sentences (0: no limit), at the sentence's end.

    Text that may end a sentence is held back until the next character shows
    whether it does. With ``whole_words`` on (past the soft token limit), a
    trailing partial word is held back too, so that a reply cut at the hard
    limit ends on a whole word.
    """

    def __init__(self, limit: int = 0) -> None:
        self.limit = limit
        self.count = 0
        self.done = False
        self.whole_words = False
        self._held = ""
        self._seen = ""  # the emitted text's last words, to spot abbreviations

    def finish_sentence(self) -> None:
        """End at the next sentence end (the soft token limit was reached)."""
        self.limit = self.count + 1
        self.whole_words = True

    def push(self, text: str) -> str:
        if self.done:
            return ""
        buffer = self._held + text
        out = 0
        for match in _SENTENCE_END.finditer(buffer):
            if self._abbreviation(buffer, match.start()):
                continue
            self.count += 1
            if self.limit and self.count >= self.limit:
                self.done = True
                self._held = ""
                return self._emit(buffer[: match.end()])
            out = match.end()
        keep = len(buffer)
        pending = _PENDING_END.search(buffer, out)
        if pending is not None:
            keep = pending.start()
        elif self.whole_words:
            space = max(buffer.rfind(" "), buffer.rfind("\n"))
            keep = space + 1 if space >= out else out
        self._held = buffer[keep:]
        return self._emit(buffer[:keep])

    def flush(self, *, complete: bool) -> str:
        """Release held text at the end: all of it when the model ended the reply
        (``complete``), else only whole words."""
        held, self._held = self._held, ""
        if self.done:
            return ""
        if complete or not self.whole_words or _PENDING_END.search(held):
            return self._emit(held)
        return ""

    def _emit(self, text: str) -> str:
        self._seen = (self._seen + text)[-40:]
        return text

    def _abbreviation(self, buffer: str, dot: int) -> bool:
        if buffer[dot] != ".":
            return False
        before = (self._seen + buffer[:dot]).rsplit(None, 1)
        word = before[-1].lower().lstrip("(\"'") if before else ""
        # A single letter is an initial ("J. Smith"), except the pronoun ("So do I.").
        return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha() and word != "i")
