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

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from companion.errors import ModelError
from companion.llm.kvshift import MIN_MATCH, find_continuation, rotary_inv_freq, shift_cache
from companion.llm.template import fold_system_messages as fold_system_messages
from companion.llm.template import render_chat
from companion.llm.textstream import IncrementalDetokenizer, StopFilter, common_prefix_length
from companion.types import GenerationParams, Message

if TYPE_CHECKING:
    from companion.llm.lean import LeanModel
    from companion.llm.quantize import Method

StopReason = Literal["eos", "stop", "length", "cancelled"]

#: End-of-turn tokens of common chat formats, stopped at when the vocabulary has them.
_END_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>")
#: Longest prompt piece run through the model at once (bounds memory on long prompts).
_PREFILL_CHUNK = 512
#: libgomp's busy-wait before an idle worker sleeps (see :func:`import_torch`).
SPIN_COUNT = 10_000


@dataclass(frozen=True, slots=True)
class GenerationStats:
    """What the last call did: how much of the prompt was reused, and why it ended."""

    prompt_tokens: int
    reused_tokens: int
    generated_tokens: int
    prefill_seconds: float
    decode_seconds: float
    stop_reason: StopReason


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
        self._lock = threading.Lock()
        self._owner: int | None = None
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
        cpu_quantize: str | None = None,
        cache: Path | None = None,
    ) -> TransformersLLM:
        """Load a model folder, a hub id (from the local cache unless told otherwise) or a GGUF.

        ``device`` defaults to CUDA when torch has it (in bfloat16), else the CPU
        (in float32, the fastest CPU dtype without native bfloat16 support).
        ``quantize`` ("auto", "none", "int8", "int4") picks low-bit weights for the
        CPU (see :mod:`companion.llm.quantize`); "auto" is ``cpu_quantize`` (the
        registry's recommendation) or int8 on the CPU and "none" on a GPU. Only a
        local folder of safetensors is quantized (a hub id or GGUF file under
        "auto" loads in full precision); the quantized copy is cached under
        ``cache`` (default: :func:`companion.paths.models_dir`).
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
        folder = Path(source) if gguf_file is None else None
        method = _quantize_method(quantize, cpu_quantize, device, folder)
        name = name or Path(str(source)).name
        llm: TransformersLLM | None = None
        if device == "cpu" and method != "none" and folder is not None:
            llm = cls._open_lean(
                folder, method, cache, name=name, threads=threads, reuse_prefix=reuse_prefix
            )
        if llm is None:
            llm = cls._open_transformers(
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

    @classmethod
    def _open_lean(
        cls,
        folder: Path,
        method: Method,
        cache: Path | None,
        *,
        name: str,
        threads: int | None,
        reuse_prefix: bool,
    ) -> TransformersLLM | None:
        """The model on the lean pass, from its cached quantized copy, without
        importing transformers (see :mod:`companion.llm.lean`); None when the
        copy is not built yet or the model or CPU does not qualify."""
        from companion.llm.light_tokenizer import LightTokenizer
        from companion.llm.quantize import load_quantized
        from companion.paths import models_dir

        where = cache or models_dir()
        if not _lean_candidate(folder, method, where):
            return None
        tokenizer = LightTokenizer(folder)
        if not tokenizer.chat_template:
            raise ModelError(f"{folder} has no chat template; it is not a chat model")
        _return_freed_memory()  # before the weights: the tokenizer's temporaries go back
        built = _lean_from_cache(folder, method, where)
        if built is None:
            return None
        lean, config = built

        def loader() -> Any:  # the transformers model, for whoever asks for it
            return load_quantized(folder, method, cache=where)[0]

        return cls(
            None,
            tokenizer,
            name=name,
            threads=threads,
            reuse_prefix=reuse_prefix,
            lean=lean,
            config=config,
            generation_config=_generation_config(folder),
            loader=loader,
        )

    @classmethod
    def _open_transformers(
        cls,
        source: str | Path,
        method: Method,
        cache: Path | None,
        *,
        name: str,
        threads: int | None,
        gguf_file: str | None,
        local_files_only: bool,
        device: str,
        reuse_prefix: bool,
    ) -> TransformersLLM:
        """The model as a transformers model (its quantized copy is built here on first use)."""
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as _hf_logging
        except ImportError as exc:
            raise ModelError(
                "the local model needs torch and transformers: pip install 'companion[llm]'"
            ) from exc
        torch = import_torch()
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        folder = Path(source) if gguf_file is None else None
        kwargs: dict[str, Any] = {"local_files_only": local_files_only}
        if gguf_file is not None:
            kwargs["gguf_file"] = gguf_file
        hf_logging: Any = _hf_logging  # its functions are untyped
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            tokenizer: Any = AutoTokenizer.from_pretrained(str(source), **kwargs)
            if method != "none" and folder is not None:
                from companion.llm.quantize import load_quantized
                from companion.paths import models_dir

                _return_freed_memory()
                model, _ = load_quantized(folder, method, cache=cache or models_dir())
            else:
                model = AutoModelForCausalLM.from_pretrained(str(source), dtype=dtype, **kwargs)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        model.to(device)
        model.eval()
        if not tokenizer.chat_template:
            raise ModelError(f"{source} has no chat template; it is not a chat model")
        return cls(model, tokenizer, name=name, threads=threads, reuse_prefix=reuse_prefix)

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
        torch = self._torch
        self._acquire()
        reason: StopReason = "cancelled"
        reused = generated = 0
        prefill_threads = torch.get_num_threads()
        started = time.perf_counter()
        prefill_s = 0.0
        try:
            with torch.inference_mode():
                reused = self._reuse(prompt)
                logits = self._forward(prompt[reused:])
                prefill_s = time.perf_counter() - started
                prefill_threads = torch.get_num_threads()
                if self.decode_threads is not None:
                    torch.set_num_threads(self.decode_threads)
                rng = torch.Generator(device=self._device)
                if params.seed is None:
                    rng.seed()
                else:
                    rng.manual_seed(params.seed)
                # With a prefill the reply continues text: decode it in context for the spacing.
                context = prompt[-4:] if params.prefill else []
                detok = IncrementalDetokenizer(self._decode, context)
                stops = StopFilter(params.stop)
                budget = min(params.max_tokens, self.context_length - len(prompt))
                ending: StopReason = "length"
                while generated < budget:
                    token = self._pick(logits, params, rng)
                    if token in self._end_ids:
                        ending = "eos"
                        break
                    generated += 1
                    text = stops.push(detok.push(token))
                    if text:
                        yield text
                    if stops.stopped:
                        break
                    if generated < budget:
                        logits = self._forward([token])
                if not stops.stopped:
                    tail = stops.push(detok.flush()) + stops.flush()
                    if tail:
                        yield tail
                reason = "stop" if stops.stopped else ending
        finally:
            if self.decode_threads is not None:
                torch.set_num_threads(prefill_threads)
            self.last_stats = GenerationStats(
                prompt_tokens=len(prompt),
                reused_tokens=reused,
                generated_tokens=generated,
                prefill_seconds=prefill_s,
                decode_seconds=time.perf_counter() - started - prefill_s,
                stop_reason=reason,
            )
            self._release()

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

    def _pick(self, logits: Any, params: GenerationParams, rng: Any) -> int:
        torch = self._torch
        if params.temperature <= 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / params.temperature, dim=-1)
        if 0 < params.top_p < 1:
            sorted_probs, order = torch.sort(probs, descending=True)
            outside = torch.cumsum(sorted_probs, dim=-1) - sorted_probs > params.top_p
            sorted_probs[outside] = 0.0
            choice = torch.multinomial(sorted_probs, 1, generator=rng)
            return int(order[choice])
        return int(torch.multinomial(probs, 1, generator=rng))

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

    def _acquire(self) -> None:
        me = threading.get_ident()
        if not self._lock.acquire(blocking=False):
            if self._owner == me:
                raise ModelError(
                    f"{self.name} is already generating a reply in this thread; "
                    "close that reply's iterator before starting another"
                )
            self._lock.acquire()
        self._owner = me

    def _release(self) -> None:
        self._owner = None
        self._lock.release()


def import_torch() -> Any:
    """Import torch; on first import, ask OpenMP to sleep rather than spin when idle.

    Spinning worker threads make decoding about 4x slower on a 2-core machine as
    soon as another process (speech synthesis, a test run) holds one core; sleeping
    costs about 5% on an idle machine. A decode step on the native kernels, though,
    opens ~120 short parallel regions, and waking a sleeping thread for each made
    2 threads slower than 1 (SmolLM2: 52 vs 75 tok/s): with ``GOMP_SPINCOUNT``
    (:data:`SPIN_COUNT`) a worker spins a few microseconds before it sleeps, which
    catches the next region of the same step (115 tok/s) without holding a core
    between replies. Values already in the environment are kept.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        os.environ.setdefault("GOMP_SPINCOUNT", str(SPIN_COUNT))
    import torch

    return torch


def _quantize_method(
    quantize: str, cpu_quantize: str | None, device: str, folder: Path | None
) -> Method:
    """The weights to load: "none", "int8" or "int4" (see :func:`quantize.resolve_method`)."""
    from companion.llm.quantize import resolve_method

    local = folder is not None and folder.is_dir() and any(folder.glob("*.safetensors"))
    method = resolve_method(quantize, device=device.split(":")[0], recommended=cpu_quantize)
    if method != "none" and not local:
        if quantize == "auto":
            return "none"
        raise ModelError(f"{quantize} weights need a local folder of safetensors weights")
    return method


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


def _lean_candidate(folder: Path, method: Method, cache: Path) -> bool:
    """Whether :func:`_lean_from_cache` may work: the kernels run, the architecture
    is one the lean pass knows, and the quantized copy is built."""
    from companion.llm.lean import ARCHITECTURES
    from companion.llm.native import kernels
    from companion.llm.quantize import cached_path, weight_files

    try:
        config = _light_config(folder)
    except (OSError, ValueError):
        return False
    if getattr(config, "model_type", None) not in ARCHITECTURES or kernels() is None:
        return False
    return cached_path(folder, weight_files(folder), method, cache).is_file()


def _lean_from_cache(folder: Path, method: Method, cache: Path) -> tuple[LeanModel, Any] | None:
    """The lean pass and config straight from the cached quantized copy, without a
    transformers model (see :func:`companion.llm.lean.lean_from_tensors`); None when
    the copy is not built yet or the model does not qualify."""
    from companion.llm.lean import lean_from_tensors
    from companion.llm.quantize import read_cached

    config = _light_config(folder)
    cached = read_cached(folder, method, cache=cache)
    if cached is None:
        return None
    tensors, kinds = cached
    del cached
    lean = lean_from_tensors(config, tensors, kinds)
    return (lean, config) if lean is not None else None


def _light_config(folder: Path) -> Any:
    """``config.json`` as attributes (what the lean pass reads of a model's config)."""
    import json
    from types import SimpleNamespace

    data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("config.json is not an object")
    return SimpleNamespace(**data)


def _generation_config(folder: Path | None) -> Any:
    """The EOS ids of ``generation_config.json`` (all the backend reads of it), or None."""
    import json
    from types import SimpleNamespace

    path = folder / "generation_config.json" if folder is not None else None
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return SimpleNamespace(eos_token_id=data.get("eos_token_id"))


def _return_freed_memory() -> None:
    """Ask glibc to give large freed blocks back to the system at once.

    Its default threshold for mapping a block on its own grows with the blocks
    freed, so the temporaries of loading (a tensor read before its fused copy is
    made) stay in the heap and count in the process's memory for good. A fixed
    1 MiB threshold keeps large blocks mapped, and returned when freed.
    """
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
        libc.malloc_trim(0)  # and what the tokenizer's loading left in the heap
    except (OSError, AttributeError):
        pass


def _context_length(config: Any, tokenizer: Any) -> int:
    limits = [
        getattr(config, "max_position_embeddings", None),
        getattr(tokenizer, "model_max_length", None),
    ]
    usable = [n for n in limits if isinstance(n, int) and 0 < n < 10_000_000]
    return min(usable) if usable else 2048
