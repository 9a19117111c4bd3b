"""Speculative prefill: read the would-be prompt while the user is still silent.

When the user stops, the end of the turn is not yet certain (the turn model
and the silence decide it), but the transcript of what they said is ready.
:class:`Speculator` builds the prompt :meth:`Companion.say` would build for
that text, with the companion's ``prompt_for(text)`` (which stores nothing), and
runs the model over it on a worker thread (the backend's ``prepare`` where it
has one: the prompt read, nothing generated; else one token), then lets go: the
backend keeps the prompt in its key/value cache. When the turn ends with the
same text, ``say`` finds its prompt already read and only the first token is
left (a *hit*); when the user goes on or the text changes (a *miss*), nothing
was stored, and the backend's prefix reuse crops the cache back to what the
real prompt shares with it on the next call.

Without ``prompt_for`` (a companion that does not offer it) speculation is off
and counted as neither.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence

from companion.llm.base import LLM
from companion.types import GenerationParams, Message

#: What ``say(text)`` would send: the messages and the generation settings.
PromptFor = Callable[[str], tuple[Sequence[Message], GenerationParams]]


class Speculator:
    """Prefills ``llm`` with ``prompt_for(text)`` on a worker thread; counts hits and misses."""

    def __init__(self, llm: LLM, prompt_for: PromptFor | None) -> None:
        self.llm = llm
        self.prompt_for = prompt_for
        self.hits = 0
        self.misses = 0
        self.text: str | None = None
        self._thread: threading.Thread | None = None
        #: What went wrong in the last prefill (it is only a speculation: not raised).
        self.error: BaseException | None = None

    @property
    def enabled(self) -> bool:
        return self.prompt_for is not None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, text: str) -> bool:
        """Prefill for ``text`` (the prompt is built here, on the caller's thread, which
        owns the store; the model runs on a worker). Returns whether it started."""
        if self.prompt_for is None or not text or self.running or text == self.text:
            return False
        messages, params = self.prompt_for(text)
        params = dataclasses.replace(params, max_tokens=1)
        self.text = text
        self._thread = threading.Thread(
            target=self._prefill, args=(list(messages), params), name="speculate", daemon=True
        )
        self._thread.start()
        return True

    def settle(self, text: str, timeout: float = 5.0) -> bool:
        """The turn ended with ``text``: a hit if the prefill was for it. Waits for a
        prefill still running (the model is needed for the reply now)."""
        if self.text is None:
            return False
        hit = self.text == text
        self.wait(timeout)
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        self.text = None
        return hit

    def cancel(self) -> None:
        """The user went on: the prefill is wasted (nothing was stored)."""
        if self.text is not None:
            self.misses += 1
            self.text = None

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _prefill(self, messages: list[Message], params: GenerationParams) -> None:
        prepare = getattr(self.llm, "prepare", None)
        try:
            if prepare is not None:  # a backend that reads a prompt without answering it
                prepare(messages, params)
                return
            stream = self.llm.stream(messages, params)
            try:
                for _ in stream:
                    pass
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
        except Exception as exc:  # a failed speculation costs nothing: the real call reports
            self.error = exc
