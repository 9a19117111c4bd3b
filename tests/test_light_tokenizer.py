"""The light tokenizer gives what transformers' AutoTokenizer gives, on the shipped
model's tokenizer saved as a model folder holds it (``tokenizer.json``, chat template)."""

from __future__ import annotations

import pytest
from gguf_files import safetensors_folder, smol_gguf

pytestmark = pytest.mark.real_model

TEXTS = [
    "Hi, I'm Theo. I just moved to Boston for a new job as a nurse.",
    "  leading spaces, tabs\tand\nnew lines\n\n",
    "Ünïcödé, emoji 🌊🎻, and CJK 你好",
    "<|im_start|>user\nspecial tokens inside text<|im_end|>",
    "",
]
CHATS = [
    [{"role": "user", "content": "Hello!"}],
    [
        {"role": "system", "content": "You are Samantha."},
        {"role": "user", "content": "I play the cello."},
        {"role": "assistant", "content": "I'd love to hear you play."},
        {"role": "user", "content": "What do I play?"},
    ],
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object]:
    pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    from companion.llm.light_tokenizer import LightTokenizer

    gguf = smol_gguf()
    if not gguf.is_file():
        pytest.skip(f"{gguf} is not downloaded")
    folder = safetensors_folder(gguf, tmp_path_factory.mktemp("smol"), weights=False)
    return LightTokenizer(folder), transformers.AutoTokenizer.from_pretrained(str(folder))


def test_ids_text_and_prompts_match_transformers(pair: tuple[object, object]) -> None:
    light, full = pair
    for text in TEXTS:
        ids = light.encode(text)  # type: ignore[attr-defined]
        assert ids == full(text, add_special_tokens=False)["input_ids"], text  # type: ignore[operator]
        assert light.decode(ids) == full.decode(ids, skip_special_tokens=True), text  # type: ignore[attr-defined]
    for chat in CHATS:
        want = full.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)  # type: ignore[attr-defined]
        assert light.apply_chat_template(chat, add_generation_prompt=True) == want  # type: ignore[attr-defined]
    assert light.eos_token_id == full.eos_token_id  # type: ignore[attr-defined]
    assert light.get_vocab() == full.get_vocab()  # type: ignore[attr-defined]
