"""Choosing the next token: penalties, then temperature, min-p and top-p.

One :class:`Sampler` per reply, used by the one decode loop
(:mod:`companion.llm.decode`) of every local backend. It works on the last
position's logits as a numpy array (a CPU torch tensor converts without a copy)
and applies, in order:

1. **Repetition, frequency and presence penalties** over the tokens of the reply
   so far. Repetition is CTRL's multiplicative penalty (a positive logit is
   divided by it, a negative one multiplied); frequency and presence are
   OpenAI's additive ones (per occurrence, and once for any occurrence).
2. **DRY** ("don't repeat yourself", as in llama.cpp and SillyTavern): when the
   text just generated repeats an earlier stretch of the context, the token that
   continued that stretch is penalised by ``multiplier * base ** (length -
   allowed_length)``, growing with the length of the repeat. It reaches back
   over the prompt too, so a reply that starts like the previous one ("Hi Theo,
   I'm Samantha") is pushed elsewhere. Matches never extend across a sequence
   breaker (a newline or a special token), so the chat template's own repeated
   markers are not penalised.
3. **Echo**: the same rule against the user's last message alone, with its own
   multiplier, so that a reply does not go on copying what the user just said.
4. **Temperature**, then **min-p** (keep tokens at least ``min_p`` times as
   likely as the best one) and **top-p**, then a draw. ``temperature == 0`` is
   greedy: the best token after the penalties.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from companion.types import GenerationParams

#: Longest repeat measured by DRY and echo (the penalty stops growing there).
MAX_MATCH = 40
#: How far back DRY looks, in tokens (prompt tail + reply).
DRY_WINDOW = 1024
#: Tokens less likely than this relative to the best one are never drawn
#: (e^-20: far below any min-p or top-p cut; it saves sorting the whole vocabulary).
_FLOOR = -20.0


class Sampler:
    """Picks tokens for one reply under ``params``.

    ``context`` is the prompt's token ids, ``echo`` the token ids of the user's
    last message, ``is_breaker(token)`` says whether a token stops a DRY match.
    Call :meth:`pick` with each step's logits and :meth:`accept` with the token
    fed back.
    """

    def __init__(
        self,
        params: GenerationParams,
        *,
        context: Sequence[int] = (),
        echo: Sequence[Sequence[int]] = (),
        is_breaker: Callable[[int], bool] = lambda _t: False,
        seed: int | None = None,
    ) -> None:
        self.params = params
        self._breaker = is_breaker
        chosen = params.seed if seed is None else seed
        self._rng = np.random.default_rng(None if chosen is None else chosen & (2**64 - 1))
        tail = list(context)[-DRY_WINDOW:]
        self._context: list[int] = tail
        self._reply_start = len(tail)
        self._echo = [list(e) for e in echo if e]
        self._counts: dict[int, int] = {}

    @property
    def reply(self) -> list[int]:
        return self._context[self._reply_start :]

    def accept(self, token: int) -> None:
        """Record ``token`` as the reply's next token."""
        self._context.append(token)
        self._counts[token] = self._counts.get(token, 0) + 1

    def pick(self, logits: Any, draft: int | None = None) -> int:
        """The next token for ``logits`` (the last position's, any array-like of floats).

        ``draft``: a token a draft model proposed for this position (speculative
        decoding, :mod:`companion.llm.speculative`). The draft picks its tokens
        greedily, so its proposal distribution is all on ``draft`` and the
        standard speculative-sampling rule reads: accept it with probability
        p(draft), else sample from p without it. Either way the token comes
        from exactly this distribution p; greedily, it is the argmax as always.
        """
        p = self.params
        scores = np.array(logits, dtype=np.float32, copy=True).reshape(-1)
        self._penalise(scores)
        if p.temperature <= 0:
            return int(np.argmax(scores))
        scaled = scores / np.float32(p.temperature)
        best = float(scaled.max())
        floor = best + (math.log(p.min_p) if 0 < p.min_p < 1 else _FLOOR)
        candidates = np.flatnonzero(scaled >= max(floor, best + _FLOOR))
        weights = np.exp(scaled[candidates].astype(np.float64) - best)
        if 0 < p.top_p < 1 and len(candidates) > 1:
            order = np.argsort(-weights, kind="stable")
            cumulative = np.cumsum(weights[order]) / weights.sum()
            keep = int(np.searchsorted(cumulative, p.top_p)) + 1
            order = order[:keep]
            candidates, weights = candidates[order], weights[order]
        probs = weights / weights.sum()
        if draft is not None:
            at = np.flatnonzero(candidates == draft)
            chance = float(probs[at[0]]) if len(at) else 0.0
            if self._rng.random() < chance:
                return draft
            if len(at) and len(candidates) > 1:  # rejected: p without the draft, renormalised
                keep = candidates != draft
                candidates, probs = candidates[keep], probs[keep] / probs[keep].sum()
        choice = self._rng.choice(len(candidates), p=probs)
        return int(candidates[choice])

    # -- penalties ---------------------------------------------------------

    def _penalise(self, scores: np.ndarray) -> None:
        p = self.params
        if self._counts and (
            p.repetition_penalty != 1.0 or p.frequency_penalty or p.presence_penalty
        ):
            ids = np.fromiter(self._counts, dtype=np.int64, count=len(self._counts))
            ids = ids[ids < len(scores)]
            counts = np.array([self._counts[int(i)] for i in ids], dtype=np.float32)
            values = scores[ids]
            if p.repetition_penalty != 1.0:
                r = np.float32(p.repetition_penalty)
                values = np.where(values > 0, values / r, values * r)
            values = values - np.float32(p.frequency_penalty) * counts
            values = values - np.float32(p.presence_penalty) * (counts > 0)
            scores[ids] = values
        if p.dry_multiplier > 0:
            for token, length in self._continuations(self._context, self._context).items():
                if length >= p.dry_allowed_length and token < len(scores):
                    scores[token] -= p.dry_multiplier * p.dry_base ** (
                        length - p.dry_allowed_length
                    )
        if p.echo_penalty > 0 and self._echo and self.reply:
            worst: dict[int, int] = {}
            for source in self._echo:
                for token, length in self._continuations(self.reply, source).items():
                    worst[token] = max(worst.get(token, 0), length)
            for token, length in worst.items():
                if length >= p.echo_allowed_length and token < len(scores):
                    scores[token] -= p.echo_penalty * p.dry_base ** (
                        length - p.echo_allowed_length
                    )

    def _continuations(self, text: Sequence[int], source: Sequence[int]) -> dict[int, int]:
        """For each token that would continue a stretch of ``source`` which the end
        of ``text`` repeats: the length of the longest such repeat.

        When ``source`` is ``text`` itself, the end of ``text`` is not matched
        against itself (only against earlier positions).
        """
        if not text:
            return {}
        last = text[-1]
        if self._breaker(last):
            return {}
        same = source is text
        limit = len(source) - 1  # a match must have a following token
        found: dict[int, int] = {}
        arr = np.asarray(source[:limit], dtype=np.int64) if limit > 0 else np.empty(0, np.int64)
        for i in np.flatnonzero(arr == last).tolist():
            nxt = source[i + 1]
            if self._breaker(nxt):
                continue
            length = 1
            while length < MAX_MATCH:
                a, b = i - length, len(text) - 1 - length
                if a < 0 or b < 0 or (same and b <= i):
                    break
                tok = source[a]
                if tok != text[b] or self._breaker(tok):
                    break
                length += 1
            if length > found.get(nxt, 0):
                found[nxt] = length
        return found
