"""Speculative decoding (companion.llm.speculative): the large model's output,
token for token greedily and in distribution when sampling, with fewer passes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from companion.errors import ModelError
from companion.llm.decode import decode_reply
from companion.llm.sampling import Sampler
from companion.llm.speculative import Speculative, check_vocabularies
from companion.types import GenerationParams

VOCAB = 12
END = 11


class ToyModel:
    """Logits that depend on the last two tokens only (a fixed random table), with
    the Batched stepper interface; ``noise`` makes a draft that sometimes disagrees."""

    def __init__(self, seed: int = 0, noise: float = 0.0, sharp: float = 3.0) -> None:
        rng = np.random.default_rng(seed)
        self.table = rng.normal(size=(VOCAB, VOCAB, VOCAB)) * sharp
        self.table[:, :, END] -= 4.0  # replies run a while
        if noise:
            self.table += np.random.default_rng(seed + 99).normal(size=self.table.shape) * noise
        self.end_ids = frozenset({END})
        self.seq: list[int] = []
        self.passes = 0

    def _logits(self) -> np.ndarray:
        a, b = (self.seq[-2:] if len(self.seq) >= 2 else [0, *self.seq[-1:]])
        return self.table[a, b].astype(np.float32)

    def prefill(self, prompt: list[int]) -> tuple[int, Any]:
        self.seq = list(prompt)
        self.passes += 1
        return 0, self._logits()

    def step(self, token: int) -> Any:
        self.seq.append(token)
        self.passes += 1
        return self._logits()

    def feed(self, tokens: Sequence[int]) -> list[Any]:
        self.passes += 1
        out = []
        for t in tokens:
            self.seq.append(t)
            out.append(self._logits())
        return out

    def truncate(self, length: int) -> None:
        del self.seq[length:]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(f"<{i}>" for i in ids if i != END)

    def encode(self, text: str) -> list[int]:
        return []


def _reply(stepper: Any, params: GenerationParams) -> str:
    return "".join(decode_reply(stepper, [1, 2, 3], params, context_length=400,
                                on_stats=lambda _s: None))


@pytest.mark.parametrize("noise", [0.0, 0.5, 2.0, 20.0])
def test_greedy_output_is_the_large_models(noise: float) -> None:
    params = GenerationParams(max_tokens=60, temperature=0.0)
    alone = _reply(ToyModel(), params)
    spec = Speculative(ToyModel(), ToyModel(noise=noise), lookahead=4)
    assert _reply(spec, params) == alone
    assert spec.proposed > 0 and 0 <= spec.accepted <= spec.proposed


def test_a_good_draft_saves_passes_of_the_large_model() -> None:
    params = GenerationParams(max_tokens=60, temperature=0.0)
    plain = ToyModel()
    _reply(plain, params)
    target = ToyModel()
    spec = Speculative(target, ToyModel(noise=0.1), lookahead=4)
    _reply(spec, params)
    assert spec.acceptance > 0.8
    assert target.passes < plain.passes / 2


def test_sampling_keeps_the_large_models_distribution() -> None:
    """The first two sampled tokens' joint frequencies, with and without a (poor)
    draft, over many seeds: the same distribution (a chi-square-like bound)."""
    trials = 3000

    def pairs(make: Any) -> Counter[tuple[int, ...]]:
        found: Counter[tuple[int, ...]] = Counter()
        for seed in range(trials):
            stepper = make()
            sampler = Sampler(GenerationParams(temperature=1.0, top_p=1.0, seed=seed),
                              context=[1, 2, 3])
            _, logits = stepper.prefill([1, 2, 3])
            first = sampler.pick(logits, getattr(stepper, "proposal", lambda: None)())
            logits = stepper.step(first)
            second = sampler.pick(logits, getattr(stepper, "proposal", lambda: None)())
            found[(first, second)] += 1
        return found

    base = ToyModel(sharp=1.0)
    plain = pairs(lambda: ToyModel(sharp=1.0))
    spec = pairs(lambda: Speculative(ToyModel(sharp=1.0), ToyModel(seed=5, sharp=1.0)))
    # exact probabilities of the pair under the large model
    def prob(pair: tuple[int, ...]) -> float:
        p1 = np.exp(base.table[2, 3])
        p1 /= p1.sum()
        p2 = np.exp(base.table[3, pair[0]])
        p2 /= p2.sum()
        return float(p1[pair[0]] * p2[pair[1]])

    def chi(found: Counter[tuple[int, ...]]) -> float:
        return sum((found[k] - trials * prob(k)) ** 2 / (trials * prob(k))
                   for k in {*plain, *spec} if prob(k) > 0.01)

    assert chi(plain) < 80 and chi(spec) < 80
    # and the test can tell: the draft model's own samples are far off
    assert chi(pairs(lambda: ToyModel(seed=5, sharp=1.0))) > 300


def test_a_draft_with_another_vocabulary_is_refused() -> None:
    check_vocabularies(["a", "b", "c"], ["a", "b", "c"], ("big", "small"))
    with pytest.raises(ModelError, match="vocabularies differ"):
        check_vocabularies(["a", "b", "c"], ["a", "x", "c"], ("big", "small"))
    with pytest.raises(ModelError, match="cannot draft"):
        check_vocabularies(["a"] * 1000, ["a"] * 10, ("big", "small"))
