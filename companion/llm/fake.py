"""A scripted language model for tests and for ``--model fake``.

Drive the real dialog code with known replies, then inspect what the model was
asked::

    llm = FakeLLM(["Hello Theo!", "Tell me more."])
    c = Companion.open(user="theo", llm=llm)
    assert c.say("hi").text() == "Hello Theo!"
    assert llm.calls[-1][-1].content == "hi"
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence

from companion.types import GenerationParams, Message

Responder = Callable[[Sequence[Message]], str]

_CHUNK = re.compile(r"\S+\s*|\s+")


#: How the default reply goes on, by the number of the call: a reply sampled again
#: ends otherwise, and none ends as the three before it (the reply guard reads a loop).
ENDINGS = (
    "Tell me more about that? I'm listening.",
    "And how do you feel about it?",
    "What happened then?",
    "I'd love to hear the rest.",
)


def _default_responder(messages: Sequence[Message], call: int = 1) -> str:
    last = next((m.content for m in reversed(messages) if m.role == "user"), "")
    words = last.split()
    if not words:
        return "I'm here. What's on your mind?"
    # The user's last two words (not so many that the reply guard takes it for an echo).
    topic = " ".join(words[-2:]).rstrip(".!?")
    return f"Mm, {topic}. {ENDINGS[(call - 1) % len(ENDINGS)]}"


class FakeLLM:
    """Replies from a queue (then from ``responder``), streamed word by word.

    ``calls`` and ``params`` record every prompt and setting it was given.
    ``delay`` sleeps between chunks, to exercise interruption.
    """

    def __init__(
        self,
        replies: Iterable[str] = (),
        *,
        responder: Responder | None = None,
        name: str = "fake",
        context_length: int = 4096,
        delay: float = 0.0,
    ) -> None:
        self.name = name
        self.context_length = context_length
        self.delay = delay
        self._queue: deque[str] = deque(replies)
        self._responder = responder or (lambda m: _default_responder(m, len(self.calls)))
        self.calls: list[list[Message]] = []
        self.params: list[GenerationParams] = []
        #: Prompts read ahead by :meth:`prepare` (speculation), oldest first.
        self.prepared: list[list[Message]] = []

    def enqueue(self, *replies: str) -> None:
        """Add replies to be returned, in order, by the next calls."""
        self._queue.extend(replies)

    def prepare(self, messages: Sequence[Message], params: GenerationParams) -> None:
        """Read a prompt ahead (speculation): recorded in :attr:`prepared`; no
        scripted reply is used up."""
        self.prepared.append(list(messages))

    def count_tokens(self, text: str) -> int:
        # Roughly what a BPE tokenizer gives for English: 4 characters a token.
        return math.ceil(len(text) / 4)

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        self.calls.append(list(messages))
        self.params.append(params)
        text = self._queue.popleft() if self._queue else self._responder(messages)
        return self._chunks(text, params)

    def _chunks(self, text: str, params: GenerationParams) -> Iterator[str]:
        cut = min((i for s in params.stop if (i := text.find(s)) >= 0), default=len(text))
        text = text[:cut]
        budget = params.max_tokens
        for piece in _CHUNK.findall(text):
            cost = self.count_tokens(piece)
            if cost > budget:
                return
            budget -= cost
            if self.delay:
                time.sleep(self.delay)
            yield piece
