"""The one decode loop of the local backends.

A backend supplies a :class:`Stepper`: it prefills the prompt (reusing what it
has cached) and feeds one token at a time, returning the next position's
logits, and it knows its tokenizer. :func:`decode_reply` does the rest, the
same way for every backend: sampling with the penalties of
:mod:`companion.llm.sampling`, the model's end-of-turn tokens, stop strings,
the persona's number of sentences, the token limit (past ``max_tokens`` the
reply may run on a little to finish its sentence, and it never ends mid-word),
incremental detokenizing, and the statistics of the call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from companion.llm.sampling import Sampler
from companion.llm.textstream import IncrementalDetokenizer, SentenceLimit, StopFilter
from companion.types import GenerationParams

StopReason = Literal["eos", "stop", "length", "sentences", "cancelled"]

#: Past ``max_tokens``, how many more tokens a reply limited to a number of
#: sentences may take to end its sentence.
SENTENCE_GRACE_TOKENS = 24
#: Without a sentence limit, the last tokens before ``max_tokens`` are held back
#: until their word is whole, so that a reply cut there never ends mid-word.
WHOLE_WORD_TOKENS = 8


@dataclass(frozen=True, slots=True)
class GenerationStats:
    """What the last call did: how much of the prompt was reused, and why it ended."""

    prompt_tokens: int
    reused_tokens: int
    generated_tokens: int
    prefill_seconds: float
    decode_seconds: float
    stop_reason: StopReason


class Stepper(Protocol):
    """What a backend does for the decode loop."""

    end_ids: frozenset[int]

    def prefill(self, prompt: list[int]) -> tuple[int, Any]:
        """Run ``prompt`` (reusing the cached prefix); return (tokens reused, last logits)."""
        ...

    def step(self, token: int) -> Any:
        """Feed ``token``; return the next position's logits."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` (special tokens left out)."""
        ...

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        ...


def decode_reply(
    stepper: Stepper,
    prompt: list[int],
    params: GenerationParams,
    *,
    context_length: int,
    on_stats: Callable[[GenerationStats], None],
) -> Iterator[str]:
    """Generate the reply to ``prompt`` token by token, yielding its text as it comes.

    ``on_stats`` is called once at the end, however the loop ends (also when
    the caller closes the iterator).
    """
    reason: StopReason = "cancelled"
    reused = generated = 0
    started = time.perf_counter()
    prefill_s = 0.0
    try:
        reused, logits = stepper.prefill(prompt)
        prefill_s = time.perf_counter() - started
        sampler = Sampler(
            params,
            context=prompt,
            echo=_echo_sources(stepper, params.echo_text),
            is_breaker=_breakers(stepper),
        )
        # With a prefill the reply continues text: decode it in context for the spacing.
        detok = IncrementalDetokenizer(stepper.decode, prompt[-4:] if params.prefill else [])
        stops = StopFilter(params.stop)
        sentences = SentenceLimit(params.max_sentences)
        room = context_length - len(prompt)
        # A reply shaped in sentences may run a little past max_tokens to end
        # its sentence; otherwise max_tokens is a hard limit. Either way the
        # last tokens before the hard limit are released in whole words.
        grace = SENTENCE_GRACE_TOKENS if params.max_sentences > 0 and not params.hard_limit else 0
        soft = min(params.max_tokens, room)
        hard = min(params.max_tokens + grace, room)
        words_from = soft if grace else max(hard - WHOLE_WORD_TOKENS, 0)
        if words_from == 0:
            sentences.whole_words = True
        ending: StopReason = "length"
        # A speculative stepper proposes its draft model's next token for each position.
        proposal: Callable[[], int | None] = getattr(stepper, "proposal", lambda: None)
        while generated < hard:
            token = sampler.pick(logits, proposal())
            if token in stepper.end_ids:
                ending = "eos"
                break
            generated += 1
            sampler.accept(token)
            if generated == words_from:
                if grace:
                    sentences.finish_sentence()
                else:
                    sentences.whole_words = True
            text = sentences.push(stops.push(detok.push(token)))
            if text:
                yield text
            if stops.stopped or sentences.done:
                break
            if generated < hard:
                logits = stepper.step(token)
        if not sentences.done:
            # After a stop string the filters give nothing more, but the text
            # before the stop is whole: release what SentenceLimit held back.
            tail = stops.push(detok.flush()) + stops.flush()
            complete = ending == "eos" or stops.stopped
            text = sentences.push(tail) + sentences.flush(complete=complete)
            if text:
                yield text
        if stops.stopped:
            reason = "stop"
        elif sentences.done:
            reason = "sentences"
        else:
            reason = ending
    finally:
        on_stats(
            GenerationStats(
                prompt_tokens=len(prompt),
                reused_tokens=reused,
                generated_tokens=generated,
                prefill_seconds=prefill_s,
                decode_seconds=time.perf_counter() - started - prefill_s,
                stop_reason=reason,
            )
        )


def _echo_sources(stepper: Stepper, text: str) -> list[list[int]]:
    """The user's words as the model would write them: with and without a leading space."""
    text = text.strip()
    if not text:
        return []
    return [stepper.encode(text), stepper.encode(" " + text)]


#: Characters that end a repeat match (llama.cpp's default DRY sequence breakers).
_BREAK_CHARS = ("\n", ":", '"', "*")


def _breakers(stepper: Stepper) -> Callable[[int], bool]:
    """A token stops a repeat match when it is special or holds one of :data:`_BREAK_CHARS`."""
    known: dict[int, bool] = {}

    def is_breaker(token: int) -> bool:
        found = known.get(token)
        if found is None:
            if token in stepper.end_ids:
                found = True
            else:
                text = stepper.decode([token])
                found = not text or any(c in text for c in _BREAK_CHARS)
            known[token] = found
        return found

    return is_breaker
