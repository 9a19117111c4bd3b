"""Speculative decoding: a small draft model proposes, the large model verifies.

:class:`Speculative` is a :class:`~companion.llm.decode.Stepper` for the one
decode loop, over two steppers of models that share a vocabulary. The draft
model writes the next ``lookahead`` tokens greedily (cheap); when the loop
accepts the first of them, the large model reads all of them in one batched
forward pass (about the cost of one decode step, since a step on a CPU is
bound by reading the weights) and its logits for the next positions are ready
without more passes, for as long as the loop keeps taking the draft's tokens.

The loop always samples from the large model's own logits, so the output is
the large model's: greedily, token for token the same as without a draft (the
batched pass gives the same numbers as single steps: the GGUF engine computes
every position in the same order); with sampling, the loop applies the
standard speculative-sampling rule for a greedy draft (accept its token with
probability p(token), else sample from p without it; see
:meth:`companion.llm.sampling.Sampler.pick`), whose output distribution is p.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from companion.errors import ModelError

#: Draft tokens proposed at a time.
LOOKAHEAD = 4


class Batched(Protocol):
    """A stepper that can also read several tokens in one pass and forget a tail."""

    end_ids: frozenset[int]

    def prefill(self, prompt: list[int]) -> tuple[int, Any]: ...

    def step(self, token: int) -> Any: ...

    def feed(self, tokens: Sequence[int]) -> list[Any]:
        """Feed ``tokens``; return the logits after each of them."""
        ...

    def truncate(self, length: int) -> None:
        """Forget every position from ``length`` on."""
        ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def encode(self, text: str) -> list[int]: ...


def check_vocabularies(target: Sequence[str], draft: Sequence[str], names: tuple[str, str]) -> None:
    """Refuse (one line) a draft whose tokens are not the target's, id for id.

    A draft may have a few more or fewer trailing special tokens (padding of the
    embedding table); the ids both use must name the same tokens."""
    shared = min(len(target), len(draft))
    differ = next((i for i in range(shared) if target[i] != draft[i]), None)
    if differ is not None or shared < 0.99 * max(len(target), len(draft)):
        where = f"token {differ}" if differ is not None else "their sizes"
        raise ModelError(
            f"draft model {names[1]} cannot draft for {names[0]}: their vocabularies differ "
            f"({where}; {len(draft)} against {len(target)} tokens)"
        )


class Speculative:
    """The large model ``target`` with ``draft`` proposing ``lookahead`` tokens."""

    def __init__(self, target: Batched, draft: Batched, *, lookahead: int = LOOKAHEAD) -> None:
        self.target = target
        self.draft = draft
        self.lookahead = max(1, lookahead)
        self.end_ids = target.end_ids
        self.proposed = 0
        self.accepted = 0
        self._pos = 0  # tokens of the sequence so far (prompt + accepted reply)
        self._drafts: list[int] = []
        self._verified: list[Any] | None = None
        self._draft_logits: Any = None

    @property
    def acceptance(self) -> float:
        """Share of proposed draft tokens the loop took."""
        return self.accepted / self.proposed if self.proposed else 0.0

    # -- the Stepper protocol ---------------------------------------------------

    def prefill(self, prompt: list[int]) -> tuple[int, Any]:
        reused, logits = self.target.prefill(prompt)
        _, self._draft_logits = self.draft.prefill(prompt)
        self._pos = len(prompt)
        self._propose()
        return reused, logits

    def proposal(self) -> int | None:
        """The draft's token for the position the loop is about to pick."""
        return self._drafts[0] if self._drafts else None

    def step(self, token: int) -> Any:
        if self._drafts and token == self._drafts[0]:
            return self._take(token)
        # The loop took another token: forget the drafts, draft again from it, and
        # let the large model read the token and the new drafts in one pass.
        if self._verified is not None:
            self.target.truncate(self._pos)
        self.draft.truncate(self._pos)
        self._draft_logits = self.draft.step(token)
        self._pos += 1
        self._propose()
        read = list(self.target.feed([token, *self._drafts]))
        self._verified = read[1:]
        return read[0]

    def decode(self, ids: Sequence[int]) -> str:
        return self.target.decode(ids)

    def encode(self, text: str) -> list[int]:
        return self.target.encode(text)

    # -- internals ----------------------------------------------------------------

    def _take(self, token: int) -> Any:
        if self._verified is None:  # the first draft taken: the target reads them all at once
            self._verified = list(self.target.feed(self._drafts))
        logits = self._verified.pop(0)
        last = self._drafts.pop(0)
        self.accepted += 1
        self._pos += 1
        if not self._drafts:  # every draft taken: the draft model reads its last one
            self._draft_logits = self.draft.step(last)
            self._propose()
        return logits

    def _propose(self) -> None:
        """The draft model's next ``lookahead`` tokens, greedily."""
        self._verified = None
        drafts = [int(np.argmax(np.asarray(self._draft_logits)))]
        while len(drafts) < self.lookahead and drafts[-1] not in self.end_ids:
            drafts.append(int(np.argmax(np.asarray(self.draft.step(drafts[-1])))))
        self._drafts = drafts
        self.proposed += len(drafts)
