"""The language-model backend protocol.

A backend is one class with one core method, :meth:`LLM.stream`, which yields
the reply's text in chunks as it is generated. Closing the iterator (``.close()``
or simply abandoning it) cancels generation; a backend must leave itself usable
for the next call when that happens.

``count_tokens`` and ``context_length`` let the prompt builder keep the prompt
within the model's window.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from companion.types import GenerationParams, Message


@runtime_checkable
class LLM(Protocol):
    """A chat language model that streams its reply."""

    #: A short name for messages and ``/help`` (e.g. ``smollm2-135m-instruct``).
    name: str
    #: The most tokens (prompt + reply) the backend accepts in one call.
    context_length: int

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes in this model's tokenizer."""
        ...

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        """Generate a reply to ``messages``, yielding text chunks as they come.

        The model's own chat template is applied. Generation ends at
        ``params.max_tokens``, at the model's end-of-turn token, or just before
        the first of ``params.stop`` appears (the stop text is not yielded).
        """
        ...


#: Tokens a chat template adds around each message, on top of its content.
MESSAGE_OVERHEAD_TOKENS = 8
