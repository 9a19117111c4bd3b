"""The tokenizer and chat template stored in a GGUF file's metadata.

A GGUF carries its byte-level BPE (``tokenizer.ggml.tokens``, ``merges``,
``token_type``), the kind of pre-tokenizer (``tokenizer.ggml.pre``), its special
ids and the chat template. :class:`GGUFTokenizer` rebuilds the tokenizer with
the ``tokenizers`` library (vocabulary + merges, the pre-tokenizer llama.cpp
uses for that ``pre`` name, byte-level decoding; control tokens as special
tokens) and renders prompts with
:func:`companion.llm.template.compile_chat_template`, as transformers does. No
file beside the GGUF is needed.

What it cannot rebuild it refuses with :class:`~companion.errors.ModelError`
(so the caller can fall back): a tokenizer that is not byte-level BPE, a
pre-tokenizer it does not know, no chat template.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from companion.errors import ModelError
from companion.llm.template import compile_chat_template

#: ``tokenizer.ggml.token_type`` values (llama.cpp's ``llama_token_type``).
CONTROL, USER_DEFINED = 3, 4

#: Split patterns of the pre-tokenizers (as the models' own tokenizer.json and
#: llama.cpp's ``llama-vocab.cpp`` give them), by ``tokenizer.ggml.pre``.
_QWEN2 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_LLAMA3 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
#: Chat-template end-of-turn tokens, by their text.
END_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>")


class GGUFTokenizer:
    """Encode, decode and render chat prompts from a GGUF's metadata."""

    def __init__(self, metadata: dict[str, Any], path: Path) -> None:
        self.path = path
        kind = metadata.get("tokenizer.ggml.model")
        if kind != "gpt2":
            raise ModelError(f"{path}: tokenizer {kind!r} is not byte-level BPE (gpt2)")
        template = metadata.get("tokenizer.chat_template")
        if not isinstance(template, str) or not template.strip():
            raise ModelError(f"{path}: no chat template; it is not a chat model")
        tokens = metadata.get("tokenizer.ggml.tokens")
        merges = metadata.get("tokenizer.ggml.merges")
        types = metadata.get("tokenizer.ggml.token_type") or [1] * len(tokens or [])
        if not isinstance(tokens, list) or not isinstance(merges, list) or not tokens:
            raise ModelError(f"{path}: the tokenizer's tokens or merges are missing")
        if len(types) != len(tokens):
            raise ModelError(f"{path}: {len(types)} token types for {len(tokens)} tokens")
        self._tok = _build(tokens, merges, types, _pre_tokenizer(metadata, path), path)
        self.tokens: list[str] = tokens
        self.vocab_size = len(tokens)
        self.chat_template = template
        self._template = compile_chat_template(template)
        self.bos_id = _id(metadata, "tokenizer.ggml.bos_token_id", len(tokens))
        self.eos_id = _id(metadata, "tokenizer.ggml.eos_token_id", len(tokens))
        self.bos_token = tokens[self.bos_id] if self.bos_id is not None else ""
        self.eos_token = tokens[self.eos_id] if self.eos_id is not None else ""
        self.end_ids = self._end_ids(types)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special tokens written in it are recognised, none is added."""
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int], *, skip_special: bool = True) -> str:
        return str(self._tok.decode(list(ids), skip_special_tokens=skip_special))

    def render(self, turns: list[dict[str, str]], *, add_generation_prompt: bool = True) -> str:
        """The chat template applied to ``turns`` (raises jinja2's TemplateError as it comes)."""
        return str(
            self._template.render(
                messages=turns,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        )

    def _end_ids(self, types: list[int]) -> frozenset[int]:
        """EOS and the control tokens that end a turn (``<|im_start|>`` too, in ChatML)."""
        control = {t: i for i, t in enumerate(self.tokens) if types[i] == CONTROL}
        ids = {control[t] for t in END_TOKENS if t in control}
        if self.eos_id is not None:
            ids.add(self.eos_id)
        if "<|im_end|>" in control and "<|im_start|>" in control:
            ids.add(control["<|im_start|>"])
        return frozenset(ids)


def _pre_tokenizer(metadata: dict[str, Any], path: Path) -> Any:
    from tokenizers import Regex, pre_tokenizers

    pre = metadata.get("tokenizer.ggml.pre", "default")
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if pre == "qwen2":
        split = pre_tokenizers.Split(Regex(_QWEN2), behavior="isolated")
        return pre_tokenizers.Sequence([split, byte_level])
    if pre in ("llama3", "llama-bpe", "smaug-bpe"):
        split = pre_tokenizers.Split(Regex(_LLAMA3), behavior="isolated")
        return pre_tokenizers.Sequence([split, byte_level])
    if pre == "smollm":
        return pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
            ]
        )
    if pre in ("default", "gpt-2", "gpt2"):
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    raise ModelError(f"{path}: pre-tokenizer {pre!r} is not supported by the GGUF engine")


def _build(tokens: list[str], merges: list[str], types: list[int], pre: Any, path: Path) -> Any:
    from tokenizers import AddedToken, Tokenizer, decoders, models

    vocab = {t: i for i, t in enumerate(tokens)}
    pairs: list[tuple[str, str]] = []
    for merge in merges:
        left, sep, right = merge.partition(" ")
        if not sep:
            raise ModelError(f"{path}: a tokenizer merge {merge!r} is not two tokens")
        pairs.append((left, right))
    try:
        tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False))
    except Exception as exc:  # tokenizers raises plain Exception on a bad table
        raise ModelError(f"{path}: the tokenizer's vocabulary does not load ({exc})") from exc
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    special = [i for i, t in enumerate(types) if t == CONTROL]
    added = [i for i, t in enumerate(types) if t == USER_DEFINED]
    tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False) for i in special])
    tok.add_tokens([AddedToken(tokens[i], special=False, normalized=False) for i in added])
    return tok


def _id(metadata: dict[str, Any], key: str, n: int) -> int | None:
    value = metadata.get(key)
    return value if isinstance(value, int) and 0 <= value < n else None
