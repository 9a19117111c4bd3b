"""Turning a stream of token ids into a stream of text: pure helpers, no model needed.

:class:`IncrementalDetokenizer` decodes one token at a time without breaking
multi-byte characters or losing the spaces that some tokenizers only render in
context. :class:`StopFilter` withholds text that might be the start of a stop
sequence, and ends the stream just before one appears.
"""

from __future__ import annotations

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
