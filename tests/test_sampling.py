"""The Sampler: penalties (repetition, frequency, presence, DRY, echo), min-p, top-p, greedy."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from companion.llm.sampling import DRY_WINDOW, Sampler
from companion.types import GenerationParams

V = 16
NL = 15  # a sequence breaker (a newline token)
OFF = GenerationParams(temperature=0.0, top_p=1.0)  # greedy, every penalty off


def make(
    context: Sequence[int] = (),
    reply: Sequence[int] = (),
    echo: Sequence[Sequence[int]] = (),
    **changes: object,
) -> Sampler:
    params = replace(OFF, **changes)
    s = Sampler(params, context=context, echo=echo, is_breaker=lambda t: t == NL)
    for t in reply:
        s.accept(t)
    return s


def penalised(s: Sampler, logits: Sequence[float]) -> np.ndarray:
    """The scores pick() chooses from, after the penalties."""
    scores = np.array(logits, dtype=np.float32)
    s._penalise(scores)
    return scores


def changes(s: Sampler) -> dict[int, float]:
    """Which tokens the penalties lowered from a flat 0 logit, and by how much."""
    out = penalised(s, [0.0] * V)
    return {int(i): round(-float(out[i]), 4) for i in np.flatnonzero(out)}


def draws(s: Sampler, logits: Sequence[float], n: int = 500) -> Counter[int]:
    return Counter(s.pick(np.array(logits)) for _ in range(n))


# -- greedy and the reply's own tokens -------------------------------------


def test_greedy_picks_argmax_and_leaves_logits_alone() -> None:
    logits = np.array([0.1, 2.5, -1.0, 2.4], dtype=np.float32)
    s = make(seed=1)
    assert [s.pick(logits) for _ in range(5)] == [1] * 5
    assert logits.tolist() == pytest.approx([0.1, 2.5, -1.0, 2.4])


def test_repetition_penalty_divides_positive_multiplies_negative_of_reply_tokens_only() -> None:
    s = make(context=[7, 3], reply=[1, 2, 2], repetition_penalty=2.0)
    out = penalised(s, [0.0, 2.0, -1.0, 0.5, 0, 0, 0, 3.0])
    # 1 (positive) halved, 2 (negative) doubled; prompt tokens 3 and 7 untouched
    assert out.tolist() == pytest.approx([0.0, 1.0, -2.0, 0.5, 0, 0, 0, 3.0])


def test_frequency_per_occurrence_presence_once() -> None:
    s = make(reply=[1, 2, 2, 2], frequency_penalty=0.5, presence_penalty=0.25)
    assert changes(s) == {1: 0.75, 2: 1.75}


def test_greedy_honours_the_penalties() -> None:
    logits = [0.0, 2.0, 0.0, 1.5]
    assert make(reply=[1]).pick(logits) == 1
    assert make(reply=[1], repetition_penalty=1.2).pick(logits) == 1
    assert make(reply=[1], repetition_penalty=2.0).pick(logits) == 3


# -- DRY -------------------------------------------------------------------

DRY = {"dry_multiplier": 0.8, "dry_base": 1.75, "dry_allowed_length": 2}


@pytest.mark.parametrize("repeat", [1, 2, 3, 4, 6])
def test_dry_penalises_the_continuation_growing_with_the_repeat(repeat: int) -> None:
    stretch = list(range(1, repeat + 2))  # 1..repeat, then its continuation repeat+1
    s = make(context=stretch + [12], reply=stretch[:repeat], **DRY)
    nxt = repeat + 1
    expected = {nxt: round(0.8 * 1.75 ** (repeat - 2), 4)} if repeat >= 2 else {}
    assert changes(s) == expected


def test_dry_allowed_length_moves_the_threshold() -> None:
    ctx = [1, 2, 3, 4, 12, 1, 2, 3]
    assert changes(make(context=ctx, **DRY)) == {4: round(0.8 * 1.75, 4)}
    assert changes(make(context=ctx, **{**DRY, "dry_allowed_length": 3})) == {4: 0.8}
    assert changes(make(context=ctx, **{**DRY, "dry_allowed_length": 4})) == {}


def test_dry_reaches_back_into_the_prompt() -> None:
    # "Hi Theo, I'm Sam" earlier in the prompt; the reply starts the same way.
    prompt = [NL, 1, 2, 3, 4, 5, NL, 9, 10, NL]
    s = make(context=prompt, reply=[1, 2, 3], **DRY)
    assert changes(s) == {4: round(0.8 * 1.75, 4)}
    s.accept(4)
    assert changes(s) == {5: round(0.8 * 1.75**2, 4)}


def test_dry_does_not_match_across_a_breaker() -> None:
    assert changes(make(context=[1, 5, 2, 3, 12, 1, 5, 2], **DRY)) == {3: round(0.8 * 1.75, 4)}
    # the same text with a newline inside the stretch: only a 1-token match
    assert changes(make(context=[1, NL, 2, 3, 12, 1, NL, 2], **DRY)) == {}
    # a breaker is never penalised as the continuation, nor matched from
    assert changes(make(context=[1, 2, NL, 12, 1, 2], **DRY)) == {}
    assert changes(make(context=[1, NL, 3, 12, 1, NL], **DRY)) == {}


def test_dry_looks_back_only_over_its_window() -> None:
    near = [1, 2, 3] + [NL] * (DRY_WINDOW - 10)
    far = [1, 2, 3] + [NL] * DRY_WINDOW
    assert changes(make(context=near, reply=[1, 2], **DRY)) == {3: 0.8}
    assert changes(make(context=far, reply=[1, 2], **DRY)) == {}


def test_dry_off_by_default() -> None:
    assert changes(make(context=[1, 2, 3, 4, 12, 1, 2, 3])) == {}


# -- echo ------------------------------------------------------------------

ECHO = {"echo_penalty": 3.0, "echo_allowed_length": 2, "dry_base": 2.0}


def test_echo_penalises_continuing_a_copy_of_the_users_words() -> None:
    said = [3, 4, 5, 6]
    assert changes(make(reply=[3], echo=[said], **ECHO)) == {}
    s = make(reply=[3, 4], echo=[said], **ECHO)
    assert changes(s) == {5: 3.0}
    s.accept(5)
    assert changes(s) == {6: 6.0}
    # a reply on its own words: nothing
    assert changes(make(reply=[8, 9], echo=[said], **ECHO)) == {}


def test_echo_counts_only_the_reply_not_the_prompt() -> None:
    said = [3, 4, 5]
    assert changes(make(context=[3], reply=[4], echo=[said], **ECHO)) == {}
    assert changes(make(context=[3, 4], echo=[said], **ECHO)) == {}  # no reply yet


def test_echo_takes_the_longest_match_over_its_sources() -> None:
    s = make(reply=[2, 3, 4], echo=[[9, 3, 4, 5], [2, 3, 4, 5]], **ECHO)
    assert changes(s) == {5: 6.0}


# -- drawing -----------------------------------------------------------------


def probs(*p: float) -> list[float]:
    return [float(np.log(x)) for x in p]


def test_min_p_never_draws_tokens_below_the_cut() -> None:
    logits = probs(1.0, 0.3, 0.08, 0.5)  # 0.08 < 0.1 * 1.0
    seen = draws(make(temperature=1.0, min_p=0.1, seed=3), logits)
    assert seen[2] == 0 and seen[0] and seen[1] and seen[3]
    assert draws(make(temperature=1.0, seed=3), logits)[2] > 0  # min-p off: drawn


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    logits = probs(0.5, 0.3, 0.15, 0.05)
    seen = draws(make(temperature=1.0, top_p=0.75, seed=4), logits)
    assert set(seen) == {0, 1}
    assert 0.52 < seen[0] / 500 < 0.72  # renormalised: 0.5 / 0.8 = 0.625
    assert set(draws(make(temperature=1.0, top_p=1.0, seed=4), logits)) == {0, 1, 2, 3}


def test_temperature_one_draws_the_softmax() -> None:
    seen = draws(make(temperature=1.0, seed=5), probs(0.5, 0.3, 0.15, 0.05), n=4000)
    for token, p in enumerate((0.5, 0.3, 0.15, 0.05)):
        assert seen[token] / 4000 == pytest.approx(p, abs=0.03)


def test_low_temperature_concentrates() -> None:
    logits = [1.0, 0.6, 0.0]
    assert draws(make(temperature=1.0, seed=6), logits)[1] > 100
    assert draws(make(temperature=0.02, seed=6), logits)[0] == 500


def test_same_seed_same_draws() -> None:
    logits = [0.0] * V

    def run(**kw: object) -> list[int]:
        s = make(temperature=1.0, **kw)
        return [s.pick(logits) for _ in range(60)]

    assert run(seed=11) == run(seed=11)
    assert run(seed=11) != run(seed=12)
    explicit = Sampler(replace(OFF, temperature=1.0, seed=99), seed=11)
    assert [explicit.pick(logits) for _ in range(60)] == run(seed=11)
