"""A model folder's tokenizer and chat template without transformers.

transformers' ``AutoTokenizer`` builds its Python-side tables on top of the
``tokenizers`` library's (measured: 102 MB for Qwen2.5's vocabulary where the
``tokenizers`` object alone holds 46 MB; 68 MB against 19 MB for SmolLM2), and
importing transformers costs another 23 MB. On the lean path
(:mod:`companion.llm.lean`) nothing else needs transformers, so the backend
reads ``tokenizer.json`` with ``tokenizers`` and renders the chat template
(``chat_template.jinja`` or ``tokenizer_config.json``) as transformers does:
sandboxed jinja2 with trimmed blocks (:func:`companion.llm.template.compile_chat_template`).

Only what the backend uses is here; the tests check it gives transformers'
ids, text and prompts on the shipped models.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from companion.errors import ModelError
from companion.llm.template import compile_chat_template


class LightTokenizer:
    """Encode, decode and render chat prompts for a model folder."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        try:
            self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
            config = _json(folder / "tokenizer_config.json")
        except (OSError, ValueError, Exception) as exc:  # tokenizers raises its own Exception
            raise ModelError(f"{folder.name}: unreadable tokenizer ({exc})") from exc
        template_file = folder / "chat_template.jinja"
        template = (
            template_file.read_text(encoding="utf-8")
            if template_file.is_file()
            else config.get("chat_template")
        )
        if isinstance(template, list):  # named templates: the default one
            template = next(
                (t.get("template") for t in template if t.get("name") == "default"), None
            )
        self.chat_template: str | None = template if isinstance(template, str) else None
        self._template = compile_chat_template(self.chat_template) if self.chat_template else None
        self.bos_token = _token(config.get("bos_token"))
        self.eos_token = _token(config.get("eos_token"))
        self.eos_token_id = self._tok.token_to_id(self.eos_token) if self.eos_token else None
        limit = config.get("model_max_length")
        self.model_max_length = limit if isinstance(limit, int) else None

    def apply_chat_template(
        self,
        turns: list[dict[str, str]],
        *,
        tokenize: bool = False,
        add_generation_prompt: bool = True,
    ) -> str:
        if self._template is None:
            raise ModelError("the model has no chat template")
        if tokenize:
            raise NotImplementedError("render, then encode")
        return str(
            self._template.render(
                messages=turns,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token or "",
                eos_token=self.eos_token or "",
            )
        )

    def __call__(self, text: str, *, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": self.encode(text, add_special_tokens=add_special_tokens)}

    def encode(self, text: str, *, add_special_tokens: bool = False) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        return str(self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens))

    def get_vocab(self) -> dict[str, int]:
        return dict(self._tok.get_vocab(with_added_tokens=True))


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _token(value: Any) -> str | None:
    """A special token as tokenizer_config.json gives it: a string or ``{"content": ...}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None
