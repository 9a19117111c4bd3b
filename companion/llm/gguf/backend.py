"""The GGUF engine as a chat backend: :class:`GGUFBackend`.

It implements :class:`companion.llm.base.LLM` (``stream``, ``count_tokens``,
``context_length``) over a :class:`~companion.llm.gguf.model.GGUFModel`, with the
tokenizer and chat template from the same file, and feeds the shared decode
loop (:func:`companion.llm.decode.decode_reply`) as its
:class:`~companion.llm.decode.Stepper`. Like the llama.cpp backend it keeps the
key/value cache of the last prompt and reply: the next prompt of a
conversation prefills only what follows their common prefix (the cache is
cropped where they diverge).

One instance serves one conversation at a time; a lock serialises calls.
Neither torch nor transformers is imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from companion.errors import ModelError
from companion.llm.decode import GenerationStats, Stepper, decode_reply
from companion.llm.gguf.model import GGUFModel, Ops, native_ops
from companion.llm.gguf.reader import GGUFFile
from companion.llm.gguf.tokenizer import GGUFTokenizer
from companion.llm.kvshift import MIN_MATCH, find_continuation
from companion.llm.replylock import ReplyLock
from companion.llm.speculative import Speculative, check_vocabularies
from companion.llm.template import render_chat
from companion.llm.textstream import common_prefix_length
from companion.types import GenerationParams, Message

#: Context window when none is given (capped by the model's own).
DEFAULT_CONTEXT = 4096


class GGUFBackend:
    """A chat model in a GGUF file, run on its own blocks by the native kernels.

    ``threads`` defaults to every core; :meth:`set_threads` changes it between
    replies. ``reuse_prefix=False`` prefills every prompt from scratch. ``ops``
    replaces the native kernels (tests).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        threads: int | None = None,
        context_length: int | None = None,
        reuse_prefix: bool = True,
        ops: Ops | None = None,
        draft: GGUFBackend | None = None,
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"no GGUF file at {path}")
        gguf = GGUFFile.open(path)
        self.tokenizer = GGUFTokenizer(gguf.metadata, gguf.path)
        self.model = GGUFModel(gguf, ops or native_ops(), threads=threads or os.cpu_count() or 1)
        if self.tokenizer.vocab_size > self.model.embedding.rows:
            raise ModelError(
                f"{path}: {self.tokenizer.vocab_size} tokens for "
                f"{self.model.embedding.rows} embeddings"
            )
        self.name = name or path.stem
        self.path = path
        self.context_length: int = min(
            context_length or DEFAULT_CONTEXT, gguf.hparams.context_length
        )
        self.reuse_prefix = reuse_prefix
        self.last_stats: GenerationStats | None = None
        self._cache = self.model.new_cache(self.context_length)
        #: The tokens whose keys and values are in the cache, in order.
        self._ids: list[int] = []
        self._lock = ReplyLock()
        #: A smaller model of the same vocabulary proposing tokens (speculative
        #: decoding, :mod:`companion.llm.speculative`), and the share it got right
        #: in the last reply.
        self.draft: GGUFBackend | None = None
        self.last_acceptance: float | None = None
        self.draft_with(draft)

    def draft_with(self, draft: GGUFBackend | None) -> None:
        """Let ``draft`` propose tokens (it must share the vocabulary; None: no draft)."""
        if draft is not None:
            check_vocabularies(self.tokenizer.tokens, draft.tokenizer.tokens,
                               (self.name, draft.name))
        self.draft = draft

    @property
    def threads(self) -> int:
        return self.model.threads

    # -- the LLM protocol -------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        prompt = self.prompt_ids(messages, prefill=params.prefill)
        if len(prompt) >= self.context_length:
            raise ModelError(
                f"the prompt takes {len(prompt)} tokens; {self.name} takes at most "
                f"{self.context_length} here"
            )
        return self._generate(prompt, params)

    def prepare(self, messages: Sequence[Message], params: GenerationParams) -> None:
        """Read the prompt of ``messages`` into the cache and generate nothing: a
        voice loop's speculation while the user may still go on. The next call
        reuses what it shares with this prompt."""
        prompt = self.prompt_ids(messages, prefill=params.prefill)
        if len(prompt) >= self.context_length:
            return
        self._lock.acquire_for(self.name)
        try:
            self._prefill(prompt)
        finally:
            self._lock.release()

    # -- prompt -----------------------------------------------------------

    def render_prompt(self, messages: Sequence[Message], *, prefill: str = "") -> str:
        """The prompt text: the model's chat template, the generation prompt, then ``prefill``."""
        return render_chat(self.tokenizer.render, messages, self.name) + prefill

    def prompt_ids(self, messages: Sequence[Message], *, prefill: str = "") -> list[int]:
        """Token ids of :meth:`render_prompt` (the template already holds any BOS)."""
        return self.tokenizer.encode(self.render_prompt(messages, prefill=prefill))

    def reset(self) -> None:
        """Forget the cached prefix; the next call prefills its whole prompt."""
        with self._lock:
            self._forget()

    def set_threads(self, threads: int) -> None:
        """Use ``threads`` threads from the next evaluated token on."""
        self.model.threads = max(1, threads)

    # -- generation -------------------------------------------------------

    def _generate(self, prompt: list[int], params: GenerationParams) -> Iterator[str]:
        self._lock.acquire_for(self.name)
        stepper: Stepper = _Steps(self)
        speculative = None
        if self.draft is not None:
            speculative = stepper = Speculative(_Steps(self), _Steps(self.draft))
        try:
            yield from decode_reply(
                stepper, prompt, params,
                context_length=self.context_length, on_stats=self._set_stats,
            )  # fmt: skip
        finally:
            if speculative is not None:
                self.last_acceptance = speculative.acceptance
            self._lock.release()

    def _set_stats(self, stats: GenerationStats) -> None:
        self.last_stats = stats

    def _prefill(self, prompt: list[int]) -> tuple[int, Any]:
        """Run ``prompt`` after the prefix the cache already holds; return
        (tokens reused, the last position's logits)."""
        reused = 0
        if self.reuse_prefix:
            reused = min(common_prefix_length(self._ids, prompt), len(prompt) - 1)
            if len(self._ids) - reused > MIN_MATCH:
                reused += self._shift(prompt, reused)
        self._cache.crop(reused)
        del self._ids[reused:]
        return reused, self._eval(prompt[reused:])

    def _shift(self, prompt: list[int], keep: int) -> int:
        """When ``prompt`` is the cached one with a stretch cut out after ``keep`` (the
        history window moved on), move the rest back (see :mod:`companion.llm.kvshift`);
        return how many more tokens are reused."""
        cut_end, length = find_continuation(self._ids, prompt, keep)
        length = min(length, len(prompt) - 1 - keep)
        if length < MIN_MATCH:
            return 0
        self.model.shift(self._cache, keep, cut_end, length)
        self._ids = self._ids[:keep] + self._ids[cut_end : cut_end + length]
        return length

    def _eval(self, ids: list[int]) -> Any:
        try:
            logits = self.model.forward(ids, self._cache)
        except BaseException:
            self._forget()  # a half-run batch: start over next time
            raise
        self._ids.extend(ids)
        return logits

    def _forget(self) -> None:
        self._cache.crop(0)
        self._ids.clear()



class _Steps:
    """The decode loop's view of a :class:`GGUFBackend` (lock already held)."""

    def __init__(self, llm: GGUFBackend) -> None:
        self._llm = llm
        self.end_ids = llm.tokenizer.end_ids

    def prefill(self, prompt: list[int]) -> tuple[int, Any]:
        return self._llm._prefill(prompt)

    def step(self, token: int) -> Any:
        return self._llm._eval([token])

    def feed(self, tokens: Sequence[int]) -> list[Any]:
        """Feed ``tokens`` in one pass; the logits after each of them."""
        llm = self._llm
        try:
            logits = llm.model.forward(list(tokens), llm._cache, every=True)
        except BaseException:
            llm._forget()
            raise
        llm._ids.extend(tokens)
        return list(logits)

    def truncate(self, length: int) -> None:
        """Forget every position from ``length`` on."""
        self._llm._cache.crop(length)
        del self._llm._ids[length:]

    def decode(self, ids: Sequence[int]) -> str:
        return self._llm.tokenizer.decode(ids)

    def encode(self, text: str) -> list[int]:
        return self._llm.tokenizer.encode(text)


def open_gguf_engine(
    path: Path,
    *,
    name: str,
    threads: int | None,
    notice: Callable[[str], None],
    required: bool = False,
) -> GGUFBackend | None:
    """``path`` run by the GGUF engine, or None (after one ``notice`` line) when it cannot
    be (an architecture, block type or tokenizer it does not know, no chat template,
    no kernels), so that the caller falls back to transformers; ``required`` raises instead."""
    try:
        return GGUFBackend(path, name=name, threads=threads)
    except ModelError as exc:
        if required:
            raise
        notice(f"the GGUF engine cannot run {name} ({exc}); using transformers instead")
        return None
