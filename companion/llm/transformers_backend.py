"""The local backend: a causal language model run with PyTorch through transformers.

The decode loop is written out here rather than delegated to ``model.generate``
so that it can stream token by token on the calling thread (no generate thread,
closing the iterator cancels at once) and keep the key/value cache between
calls. The next prompt of a conversation starts with the previous prompt and
reply, so only the new tokens are prefilled: that keeps time-to-first-token
small at turn 20 as at turn 1.

One instance serves one conversation at a time: the cache is per instance and a
lock serialises calls. Starting a second reply from the same thread while the
first is still open is an error (close the first iterator).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from companion.errors import ModelError
from companion.llm.decode import GenerationStats as GenerationStats
from companion.llm.decode import StopReason as StopReason
from companion.llm.decode import decode_reply
from companion.llm.kvshift import MIN_MATCH, find_continuation, rotary_inv_freq, shift_cache
from companion.llm.replylock import ReplyLock
from companion.llm.template import fold_system_messages as fold_system_messages
from companion.llm.template import render_chat
from companion.llm.textstream import common_prefix_length
from companion.llm.torchenv import import_torch
from companion.types import GenerationParams, Message

if TYPE_CHECKING:
    from companion.llm.lean import LeanModel

#: End-of-turn tokens of common chat formats, stopped at when the vocabulary has them.
_END_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>")
#: Longest prompt piece run through the model at once (bounds memory on long prompts).
_PREFILL_CHUNK = 512


class TransformersLLM:
    """A chat model backed by a transformers ``AutoModelForCausalLM`` and its tokenizer.

    Build one with :meth:`from_pretrained` (or :func:`companion.llm.load_llm`).
    ``reuse_prefix=False`` recomputes every prompt from scratch (for comparison).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        threads: int | None = None,
        reuse_prefix: bool = True,
        lean: bool | LeanModel = True,
        config: Any = None,
        generation_config: Any = None,
        loader: Callable[[], Any] | None = None,
    ) -> None:
        """``model`` is a transformers model; or None, with ``lean`` a ready
        :class:`~companion.llm.lean.LeanModel`, the model's ``config`` and
        ``generation_config``, and a ``loader`` that makes the transformers model
        the first time :attr:`model` is read (the quality guard, benchmarks)."""
        import inspect

        from companion.llm.lean import LeanModel, build_lean

        torch = import_torch()
        if threads is not None:
            torch.set_num_threads(threads)
        if model is None and not isinstance(lean, LeanModel):
            raise ValueError("without a transformers model, pass the LeanModel to run")
        self.name = name
        self._model = model
        self._loader = loader
        self.config = config if config is not None else model.config
        self.tokenizer = tokenizer
        self.reuse_prefix = reuse_prefix
        self.context_length = _context_length(self.config, tokenizer)
        self.last_stats: GenerationStats | None = None
        #: Threads for the token-by-token decode (None: the same as the prefill).
        #: A one-token step is too small to split well, and waking a second
        #: thread for each of the ~100 small matmuls of a step costs more than it
        #: saves on a small CPU; the prefill's big matmuls still use them all.
        self.decode_threads: int | None = None
        self._torch = torch
        self._device = torch.device("cpu") if model is None else next(model.parameters()).device
        if generation_config is None and model is not None:
            generation_config = getattr(model, "generation_config", None)
        self._end_ids = _end_token_ids((generation_config, self.config), tokenizer)
        self._cache_kw, self._logits_kw = "past_key_values", None
        if model is not None:
            params = inspect.signature(model.forward).parameters
            # transformers 5 calls the cache argument `cache`; 4.x called it `past_key_values`.
            self._cache_kw = "cache" if "cache" in params else "past_key_values"
            self._logits_kw = next(
                (k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None
            )
        self._cache: Any = None
        self._cache_ids: list[int] = []
        self._inv_freq: Any = False  # RoPE frequencies for window shifts; found on first use
        self._lock = ReplyLock()
        #: The lean forward pass (int8/int4 Llama/Qwen2 on an AVX2 CPU), else None:
        #: the transformers forward. See :mod:`companion.llm.lean`.
        self.lean: LeanModel | None = (
            lean if isinstance(lean, LeanModel) else build_lean(model) if lean else None
        )

    @property
    def model(self) -> Any:
        """The transformers model (made now by the loader if the lean pass ran without it)."""
        if self._model is None:
            if self._loader is None:
                raise ModelError(f"{self.name} has no transformers model to load")
            self._model = self._loader()
            self._model.eval()
        return self._model

    def weight_kinds(self) -> list[str]:
        """The kinds of linear layers that run, for reports: ``["Int4Linear", "Int8Linear"]``."""
        if self.lean is not None:
            return self.lean.weight_kinds()
        return sorted(
            {type(m).__name__ for m in self.model.modules() if "Linear" in type(m).__name__}
        )

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path,
        *,
        name: str | None = None,
        threads: int | None = None,
        gguf_file: str | None = None,
        local_files_only: bool = True,
        device: str | None = None,
        reuse_prefix: bool = True,
        quantize: str = "auto",
        cache: Path | None = None,
    ) -> TransformersLLM:
        """Load a model folder, a hub id (from the local cache unless told otherwise) or a GGUF.

        ``device`` defaults to CUDA when torch has it (in bfloat16), else the CPU
        (in float32, the fastest CPU dtype without native bfloat16 support).
        ``quantize`` ("auto", "none", "int8", "int4") picks low-bit weights for the
        CPU (see :mod:`companion.llm.quantize`); "auto" is int8 on the CPU and
        "none" on a GPU. Only a local folder of safetensors is quantized (a hub id
        or a GGUF file, which ``gguf_file`` names in the folder ``source`` and which
        is dequantized in memory, loads in full precision under "auto"); the
        quantized copy is cached under ``cache`` (default:
        :func:`companion.paths.models_dir`).
        Raises :class:`ModelError` when torch or transformers is missing or the
        model has no chat template, and transformers' own ``OSError`` when the files
        cannot be found, so that a caller can try the next place.
        """
        try:
            torch = import_torch()
        except ImportError as exc:
            raise ModelError(
                "the local model needs torch and transformers: pip install 'companion[llm]'"
            ) from exc
        if threads is not None:
            torch.set_num_threads(threads)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        from companion.llm.local_open import open_lean, open_transformers, quantize_method

        folder = Path(source) if gguf_file is None else None
        method = quantize_method(quantize, device, folder)
        name = name or Path(str(source)).name
        llm: TransformersLLM | None = None
        if device == "cpu" and method != "none" and folder is not None:
            llm = open_lean(
                cls, folder, method, cache, name=name, threads=threads, reuse_prefix=reuse_prefix
            )
        if llm is None:
            llm = open_transformers(
                cls,
                source,
                method,
                cache,
                name=name,
                threads=threads,
                gguf_file=gguf_file,
                local_files_only=local_files_only,
                device=device,
                reuse_prefix=reuse_prefix,
            )
        if (
            device == "cpu"
            and method != "none"
            and llm.lean is None
            and torch.get_num_threads() <= 2
        ):
            # Measured on 2 cores (bench/dialog_latency.py --decode-threads): decode
            # steps on aten's low-bit kernels run faster on one thread; prefill keeps
            # both. The lean path's kernels split a step well (SmolLM2 int4: 115
            # tok/s on 2 threads, 75 on 1), so it keeps every thread.
            llm.decode_threads = 1
        return llm

    # -- the LLM protocol -------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        prompt = self.prompt_ids(messages, prefill=params.prefill)
        if len(prompt) >= self.context_length:
            raise ModelError(
                f"the prompt takes {len(prompt)} tokens; {self.name} takes at most "
                f"{self.context_length}"
            )
        return self._generate(prompt, params)

    # -- prompt -----------------------------------------------------------

    def render_prompt(self, messages: Sequence[Message], *, prefill: str = "") -> str:
        """The prompt text: the model's chat template, the generation prompt, then ``prefill``."""

        def render(turns: list[dict[str, str]]) -> str:
            return str(
                self.tokenizer.apply_chat_template(
                    turns, tokenize=False, add_generation_prompt=True
                )
            )

        return render_chat(render, messages, self.name) + prefill

    def prompt_ids(self, messages: Sequence[Message], *, prefill: str = "") -> list[int]:
        """Token ids of :meth:`render_prompt` (the template already holds any BOS)."""
        text = self.render_prompt(messages, prefill=prefill)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def reset(self) -> None:
        """Forget the cached prefix; the next call prefills its whole prompt."""
        with self._lock:
            self._drop_cache()

    # -- generation -------------------------------------------------------

    def _generate(self, prompt: list[int], params: GenerationParams) -> Iterator[str]:
        self._lock.acquire_for(self.name)
        steps = _Steps(self)
        try:
            with self._torch.inference_mode():
                yield from decode_reply(
                    steps, prompt, params,
                    context_length=self.context_length, on_stats=self._set_stats,
                )  # fmt: skip
        finally:
            steps.restore_threads()
            self._lock.release()

    def _set_stats(self, stats: GenerationStats) -> None:
        self.last_stats = stats

    def _reuse(self, prompt: list[int]) -> int:
        """Crop the cache to the longest prefix it shares with ``prompt``; return its length."""
        if not self.reuse_prefix or self._cache is None:
            self._new_cache()
            return 0
        keep = min(common_prefix_length(self._cache_ids, prompt), len(prompt) - 1)
        drop = len(self._cache_ids) - keep
        if keep <= 0 or self._cache.get_seq_length() != len(self._cache_ids):
            self._new_cache()
            return 0
        shifted = self._shift(prompt, keep) if drop > MIN_MATCH else 0
        if shifted:
            return keep + shifted
        if drop > 0:
            self._cache.crop(-drop)  # a negative count removes tokens in 4.x and 5.x alike
            del self._cache_ids[keep:]
        return keep

    def _shift(self, prompt: list[int], keep: int) -> int:
        """When ``prompt`` is the cached prompt with a stretch cut out after ``keep``
        (the history window moved on), evict that stretch and move the rest back
        (see :mod:`companion.llm.kvshift`); return how many more tokens are reused."""
        if self._inv_freq is False:
            self._inv_freq = self.lean.inv_freq if self.lean else rotary_inv_freq(self.model)
        if self._inv_freq is None:
            return 0
        cut_end, length = find_continuation(self._cache_ids, prompt, keep)
        length = min(length, len(prompt) - 1 - keep)
        if length < MIN_MATCH:
            return 0
        if not shift_cache(self._cache, keep, cut_end, length, self._inv_freq):
            return 0
        self._cache_ids = self._cache_ids[:keep] + self._cache_ids[cut_end : cut_end + length]
        return length

    def _forward(self, ids: list[int]) -> Any:
        """Run ``ids`` through the model on top of the cache; return the last position's logits."""
        torch = self._torch
        kwargs: dict[str, Any] = {self._cache_kw: self._cache, "use_cache": True}
        if self._logits_kw:
            kwargs[self._logits_kw] = 1
        logits: Any = None
        try:
            for start in range(0, len(ids), _PREFILL_CHUNK):
                chunk = ids[start : start + _PREFILL_CHUNK]
                if self.lean is not None:
                    logits = self.lean.forward(chunk, self._cache)
                else:
                    input_ids = torch.tensor([chunk], dtype=torch.long, device=self._device)
                    logits = self.model(input_ids=input_ids, **kwargs).logits[0, -1]
                self._cache_ids.extend(chunk)
        except BaseException:
            # An interrupted forward may have updated some layers only: start over next time.
            self._drop_cache()
            raise
        return logits.float()

    def sequence_logits(self, ids: Sequence[int]) -> Any:
        """Logits ``[len(ids), vocab]`` of every position of ``ids`` from an empty
        context, through the same forward pass as generation (the quality guard)."""
        torch = self._torch
        with self._lock, torch.inference_mode():
            if self.lean is not None:
                return self.lean.forward(list(ids), self.lean.new_cache(), every=True).float()
            input_ids = torch.tensor([list(ids)], dtype=torch.long, device=self._device)
            return self.model(input_ids=input_ids).logits[0].float()

    def _decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def _new_cache(self) -> None:
        if self.lean is not None:
            self._cache = self.lean.new_cache()
            self._cache_ids = []
            return
        from transformers import DynamicCache

        try:
            self._cache = DynamicCache(config=self.model.config)
        except TypeError:  # transformers < 4.56 takes no config
            self._cache = DynamicCache()
        self._cache_ids = []

    def _drop_cache(self) -> None:
        self._cache = None
        self._cache_ids = []



def _end_token_ids(sources: tuple[Any, ...], tokenizer: Any) -> frozenset[int]:
    """Ids that end a reply: the EOS id(s) of the generation config, model config and
    tokenizer, and any end-of-turn token the vocabulary knows."""
    ids: set[int] = set()
    for source in (*sources, tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(v for v in value if isinstance(v, int))
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in _END_TOKENS if t in vocab)
    if "<|im_end|>" in vocab and "<|im_start|>" in vocab:
        ids.add(vocab["<|im_start|>"])  # ChatML: a new turn starting means ours ended
    return frozenset(ids)


def _context_length(config: Any, tokenizer: Any) -> int:
    limits = [
        getattr(config, "max_position_embeddings", None),
        getattr(tokenizer, "model_max_length", None),
    ]
    usable = [n for n in limits if isinstance(n, int) and 0 < n < 10_000_000]
    return min(usable) if usable else 2048


class _Steps:
    """The decode loop's view of a :class:`TransformersLLM` (lock already held)."""

    def __init__(self, llm: TransformersLLM) -> None:
        self._llm = llm
        self.end_ids = llm._end_ids
        self._prefill_threads: int | None = None

    def prefill(self, prompt: list[int]) -> tuple[int, Any]:
        llm = self._llm
        reused = llm._reuse(prompt)
        logits = llm._forward(prompt[reused:])
        if llm.decode_threads is not None:
            self._prefill_threads = llm._torch.get_num_threads()
            llm._torch.set_num_threads(llm.decode_threads)
        return reused, logits.cpu().numpy()

    def step(self, token: int) -> Any:
        return self._llm._forward([token]).cpu().numpy()

    def decode(self, ids: Sequence[int]) -> str:
        return self._llm._decode(ids)

    def encode(self, text: str) -> list[int]:
        return list(self._llm.tokenizer.encode(text, add_special_tokens=False))

    def restore_threads(self) -> None:
        """Give the prefill its threads back (the decode may have used fewer)."""
        if self._prefill_threads is not None:
            self._llm._torch.set_num_threads(self._prefill_threads)
            self._prefill_threads = None
