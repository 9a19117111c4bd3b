"""The GGUF tokenizer (from the file's metadata) against llama.cpp's and the one
transformers builds from the same file."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from companion.errors import ModelError
from companion.llm.gguf.reader import GGUFFile
from companion.llm.gguf.tokenizer import GGUFTokenizer
from companion.paths import models_dir

#: Where the GGUFs may be: the test model cache, then the user's (the Qwen models are big).
GGUF_DIRS = [models_dir() / "gguf", Path.home() / ".cache" / "companion" / "models" / "gguf"]


def gguf_file(name: str) -> Path:
    found = [d / name for d in GGUF_DIRS if (d / name).is_file()]
    return found[0] if found else GGUF_DIRS[0] / name


MODELS = (
    "SmolLM2-135M-Instruct.Q4_1.gguf",
    "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
    "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf",
)
FRAGMENTS = [
    "Hello", " world", "!", "I'm", " you're", " THEY'LL", " we've", "'d", " 12345", " 3.14159",
    " 1,000,000", " ½ ² ٣", " 😀", "👍🏽", " 👨‍👩‍👧", " café", " naïve", " Ünïcödé", " 中文",
    "日本語", " 한국어", " Привет", " مرحبا", "\n", "\n\n", "\r\n", "\t", "    ", "  ", " ",
    "def f(x):",
    "\n    return x ** 2", "  # comment", "{'a': [1, 2]}", "<|im_start|>", "<|im_end|>",
    "<|endoftext|>", "<tool_call>", "http://example.com/a?b=c", " e-mail@x.org", "...", "?!",
    " --flag", "#include <stdio.h>", " Samantha", " ok", "ÀÉÎ", " ∑∫√", "\u00a0", "\u200b",
]  # fmt: skip


def corpus(n: int = 300) -> list[str]:
    rng = random.Random(16)
    texts = ["", " ", "a", "\n", *FRAGMENTS]
    while len(texts) < n:
        texts.append("".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(2, 12))))
    return texts


def _open(name: str) -> GGUFTokenizer:
    path = gguf_file(name)
    if not path.is_file():
        pytest.skip(f"{path} is not downloaded")
    gguf = GGUFFile.open(path)
    return GGUFTokenizer(gguf.metadata, gguf.path)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_ids_match_llama_cpp(name: str) -> None:
    tok = _open(name)
    llama_cpp = pytest.importorskip("llama_cpp")
    llama = llama_cpp.Llama(str(gguf_file(name)), vocab_only=True, verbose=False)
    for text in corpus():
        ids = tok.encode(text)
        assert ids == llama.tokenize(text.encode(), add_bos=False, special=True), repr(text)
        # decoding gives the text back (special tokens kept when asked)
        assert tok.decode(ids, skip_special=False) == text, repr(text)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_ids_and_prompts_match_the_tokenizer_transformers_builds(name: str) -> None:
    """transformers' tokenizer of the same file: what its path runs on a GGUF."""
    tok = _open(name)
    transformers = pytest.importorskip("transformers")
    path = gguf_file(name)
    full = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    for text in corpus():
        if name.startswith("SmolLM2") and any(c.isnumeric() for c in text):
            # transformers' SmolLM2 tokenizer loses the model's digit splitting ("3.14"
            # -> "3", ".", "1", "4"); llama.cpp keeps it, and so do we (checked above)
            continue
        ids = tok.encode(text)
        assert ids == full(text, add_special_tokens=False)["input_ids"], repr(text)
        assert tok.decode(ids) == full.decode(ids, skip_special_tokens=True), repr(text)
    turns = [
        {"role": "system", "content": "You are Sam. 😀"},
        {"role": "user", "content": "Hi! What's 2+2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "Thanks\n\nbye"},
    ]
    want = full.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    assert tok.render(turns) == want
    assert tok.encode(tok.render(turns)) == full(want, add_special_tokens=False)["input_ids"]


def test_end_ids_hold_the_end_of_turn_tokens() -> None:
    tok = _open("SmolLM2-135M-Instruct.Q4_1.gguf")
    im_end, im_start = tok.encode("<|im_end|>"), tok.encode("<|im_start|>")
    assert len(im_end) == len(im_start) == 1
    assert {im_end[0], im_start[0]} <= tok.end_ids
    assert tok.decode([*tok.encode("Hi"), im_end[0]]) == "Hi"


def test_refusals_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    base = {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.tokens": ["a", "b", "ab"],
        "tokenizer.ggml.merges": ["a b"],
        "tokenizer.ggml.token_type": [1, 1, 1],
        "tokenizer.chat_template": "{{ messages[0]['content'] }}",
    }
    assert GGUFTokenizer(base, path).encode("ab") == [2]
    with pytest.raises(ModelError, match=r"m\.gguf: no chat template"):
        GGUFTokenizer({**base, "tokenizer.chat_template": ""}, path)
    with pytest.raises(ModelError, match=r"m\.gguf: tokenizer 'llama' is not byte-level BPE"):
        GGUFTokenizer({**base, "tokenizer.ggml.model": "llama"}, path)
    with pytest.raises(ModelError, match=r"m\.gguf: pre-tokenizer 'falcon' is not supported"):
        GGUFTokenizer({**base, "tokenizer.ggml.pre": "falcon"}, path)
    with pytest.raises(ModelError, match=r"m\.gguf: 2 token types for 3 tokens"):
        GGUFTokenizer({**base, "tokenizer.ggml.token_type": [1, 1]}, path)
