"""The llama.cpp backend: a GGUF model run by llama-cpp-python, without torch.

An optional alternative to :class:`~companion.llm.transformers_backend.TransformersLLM`
with the same behaviour: it streams text on the calling thread, stops at the
model's end-of-turn token, at ``max_tokens`` and just before a stop string,
closing the iterator cancels, and the next prompt of a conversation only
prefills what is new (llama.cpp keeps the key/value cache of the tokens it has
evaluated and reuses their longest common prefix with the next prompt).

The prompt is rendered with the chat template stored in the GGUF file (jinja2,
sandboxed, as transformers renders it), so neither torch nor transformers is
needed. llama.cpp allocates the whole key/value cache up front, so the context
is capped at ``context_length`` tokens (default :data:`DEFAULT_CONTEXT`).

One instance serves one conversation at a time; a lock serialises calls.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from companion.errors import ModelError, ModelNotFoundError
from companion.llm.decode import GenerationStats, decode_reply
from companion.llm.fetch import Progress, assemble, gguf_path, stderr_progress
from companion.llm.registry import Registry
from companion.llm.replylock import ReplyLock
from companion.llm.template import compile_chat_template, render_chat
from companion.llm.textstream import common_prefix_length
from companion.llm.transformers_backend import _END_TOKENS
from companion.paths import models_dir
from companion.types import GenerationParams, Message

INSTALL_HINT = (
    "the llama.cpp backend needs llama-cpp-python: "
    "pip install 'companion[llamacpp]' (builds from source, ~6 min)"
)
#: Context window allocated when none is given (capped by the model's own).
DEFAULT_CONTEXT = 4096


class LlamaCppLLM:
    """A chat model in a GGUF file, run by llama.cpp on the CPU.

    ``threads`` sets llama.cpp's decode and prompt threads (default: all cores);
    :meth:`set_threads` changes them between replies. ``reuse_prefix=False``
    prefills every prompt from scratch (for comparison).
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        name: str | None = None,
        threads: int | None = None,
        context_length: int | None = None,
        reuse_prefix: bool = True,
    ) -> None:
        llama_cpp = import_llama_cpp()
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"no GGUF file at {path}")
        threads = threads or os.cpu_count() or 1
        try:
            llama: Any = _open(llama_cpp, path, context_length or DEFAULT_CONTEXT, threads)
            trained = int(llama._model.n_ctx_train())
            if 0 < trained < llama.n_ctx():  # rare: a model trained on a shorter context
                del llama
                llama = _open(llama_cpp, path, trained, threads)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp cannot load {path}: {_first_line(exc)}") from exc
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"{path} has no chat template; it is not a chat model")
        self.name = name or path.stem
        self.path = path
        self.context_length: int = llama.n_ctx()
        self.reuse_prefix = reuse_prefix
        self.threads = threads
        self.last_stats: GenerationStats | None = None
        self._llama_cpp: Any = llama_cpp
        self._llama = llama
        self._template = compile_chat_template(template)
        self._bos = _token_text(llama, llama.token_bos())
        self._eos = _token_text(llama, llama.token_eos())
        self._end_ids = self._end_token_ids()
        self._lock = ReplyLock()

    # -- the LLM protocol -------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text))

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        prompt = self.prompt_ids(messages, prefill=params.prefill)
        if len(prompt) >= self.context_length:
            raise ModelError(
                f"the prompt takes {len(prompt)} tokens; {self.name} takes at most "
                f"{self.context_length} here"
            )
        return self._generate(prompt, params)

    # -- prompt -----------------------------------------------------------

    def render_prompt(self, messages: Sequence[Message], *, prefill: str = "") -> str:
        """The prompt text: the model's chat template, the generation prompt, then ``prefill``."""
        return render_chat(self._render, messages, self.name) + prefill

    def prompt_ids(self, messages: Sequence[Message], *, prefill: str = "") -> list[int]:
        """Token ids of :meth:`render_prompt` (the template already holds any BOS)."""
        return self._tokenize(self.render_prompt(messages, prefill=prefill))

    def reset(self) -> None:
        """Forget the evaluated prefix; the next call prefills its whole prompt."""
        with self._lock:
            self._llama.reset()

    def set_threads(self, threads: int) -> None:
        """Use ``threads`` threads from the next evaluated token on (this instance only)."""
        self._llama_cpp.llama_set_n_threads(self._llama.ctx, threads, threads)
        self.threads = threads

    # -- generation -------------------------------------------------------

    def _generate(self, prompt: list[int], params: GenerationParams) -> Iterator[str]:
        self._lock.acquire_for(self.name)
        try:
            yield from decode_reply(
                _Steps(self), prompt, params,
                context_length=self.context_length, on_stats=self._set_stats,
            )  # fmt: skip
        finally:
            self._lock.release()

    def _set_stats(self, stats: GenerationStats) -> None:
        self.last_stats = stats

    def _prefill(self, prompt: list[int]) -> tuple[int, Any]:
        """Evaluate ``prompt`` after the prefix llama.cpp already holds; return
        (tokens reused, the last position's logits)."""
        llama = self._llama
        reused = 0
        if self.reuse_prefix:
            evaluated = llama.input_ids[: llama.n_tokens].tolist()
            reused = min(common_prefix_length(evaluated, prompt), len(prompt) - 1)
        if reused > 0:
            llama.n_tokens = reused  # eval() drops the cached keys and values past here
        else:
            llama.reset()
        return reused, self._eval(prompt[reused:])

    def _eval(self, ids: list[int]) -> Any:
        import numpy as np

        llama = self._llama
        try:
            llama.eval(ids)
        except BaseException:
            llama.reset()  # a half-evaluated batch: start over next time
            raise
        # The last position's logits, as llama.cpp left them (Llama.scores is
        # only kept with logits_all, which would cost a copy of every position).
        return np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),)).copy()

    def _render(self, turns: list[dict[str, str]]) -> str:
        return str(
            self._template.render(
                messages=turns,
                add_generation_prompt=True,
                bos_token=self._bos,
                eos_token=self._eos,
            )
        )

    def _tokenize(self, text: str) -> list[int]:
        return list(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _decode(self, ids: Sequence[int]) -> str:
        data: bytes = self._llama.detokenize(list(ids))
        return data.decode("utf-8", errors="replace")

    def _end_token_ids(self) -> frozenset[int]:
        """The model's EOS and EOT ids and any end-of-turn token in its vocabulary."""
        llama = self._llama
        ids = {t for t in (llama.token_eos(), llama._model.token_eot()) if t >= 0}
        # In ChatML, a new turn starting (<|im_start|>) means ours ended.
        single = {t: self._tokenize(t) for t in (*_END_TOKENS, "<|im_start|>")}
        ids.update(found[0] for found in single.values() if len(found) == 1)
        if len(single["<|im_end|>"]) != 1 and len(single["<|im_start|>"]) == 1:
            ids.discard(single["<|im_start|>"][0])  # only ChatML models end a turn at it
        return frozenset(ids)



class _Steps:
    """The decode loop's view of a :class:`LlamaCppLLM` (lock already held)."""

    def __init__(self, llm: LlamaCppLLM) -> None:
        self._llm = llm
        self.end_ids = llm._end_ids

    def prefill(self, prompt: list[int]) -> tuple[int, Any]:
        return self._llm._prefill(prompt)

    def step(self, token: int) -> Any:
        return self._llm._eval([token])

    def decode(self, ids: Sequence[int]) -> str:
        return self._llm._decode(ids)

    def encode(self, text: str) -> list[int]:
        return list(self._llm._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def import_llama_cpp() -> Any:
    """Import llama_cpp, or raise :class:`ModelError` with the install hint."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelError(INSTALL_HINT) from exc
    return llama_cpp


def open_llamacpp_llm(
    target: str,
    *,
    registry: Registry,
    threads: int | None = None,
    progress: Progress | None = None,
    cache: Path | None = None,
) -> LlamaCppLLM:
    """Load ``target`` (a registry name, a ``.gguf`` file, or a folder holding one) with llama.cpp.

    A registry model's GGUF is downloaded and verified on first use (no conversion).
    """
    import_llama_cpp()  # fail before a download, not after
    say = progress or (lambda _line: None)
    entry = registry.get(target)
    if entry is not None:
        root = cache or models_dir()
        path = gguf_path(entry, root)
        if not (path.is_file() and path.stat().st_size == entry.size):
            assemble(entry, root, progress=progress or stderr_progress)
        say(f"loading {entry.name} with llama.cpp")
        return LlamaCppLLM(path, name=entry.name, threads=threads)
    path = Path(target).expanduser()
    ggufs = sorted(path.glob("*.gguf")) if path.is_dir() else [path]
    if len(ggufs) == 1 and ggufs[0].is_file() and ggufs[0].suffix.lower() == ".gguf":
        say(f"loading {ggufs[0].name} with llama.cpp")
        return LlamaCppLLM(ggufs[0], name=ggufs[0].stem, threads=threads)
    tried = [
        f"registry: no model named {target!r}",
        f"{path}: not a .gguf file or a folder with one",
    ]
    raise ModelNotFoundError(f"llamacpp:{target}", tried=tried, available=registry.names())


def _token_text(llama: Any, token: int) -> str:
    if token < 0:
        return ""
    data: bytes = llama.detokenize([token], special=True)
    return data.decode("utf-8", errors="replace")


def _open(llama_cpp: Any, path: Path, n_ctx: int, threads: int) -> Any:
    return llama_cpp.Llama(
        str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
