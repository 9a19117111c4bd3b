"""Quality guard: does a fast weight format still say what the reference says?

Two measures, both deterministic:

- **Greedy token agreement.** The reference model continues each prompt
  greedily for ``n`` tokens. The candidate then reads prompt + that continuation
  in one forward pass (teacher forcing) and its argmax at every position is
  compared with the reference's token. ``agreement`` is the fraction of the
  ``n`` positions that match; because the candidate is always fed the
  reference's tokens, one early divergence does not cascade into a run of
  mismatches. ``prefix`` is the fraction of positions before the first
  mismatch (what a free-running greedy decode would share with the reference).
- **Perplexity** of a fixed text, ``exp`` of the mean next-token negative
  log-likelihood; the guard compares the candidate's with the reference's.

Both take :class:`~companion.llm.transformers_backend.TransformersLLM` instances
(anything with ``model`` and ``tokenizer``). Import this module only where torch
is wanted.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from companion.llm.torchenv import import_torch
from companion.llm.transformers_backend import TransformersLLM
from companion.types import Message


@dataclass(frozen=True, slots=True)
class Continuation:
    """A prompt's token ids and the reference's greedy continuation of it."""

    prompt: tuple[int, ...]
    tokens: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Agreement:
    """How often the candidate's greedy choice equals the reference's token."""

    #: Matching positions over all positions, with teacher forcing.
    agreement: float
    #: Mean over prompts of (positions before the first mismatch) / positions.
    prefix: float
    positions: int
    #: Per prompt: index of the first mismatch, or the continuation's length.
    first_divergence: tuple[int, ...]


def load_prompts(path: Path) -> list[list[Message]]:
    """The prompt set of a TOML file: ``system`` (optional) and a list ``prompts``."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    system = data.get("system")
    head = [Message("system", system)] if isinstance(system, str) else []
    return [[*head, Message("user", str(p))] for p in data["prompts"]]


def greedy_continuations(
    reference: TransformersLLM, prompts: Sequence[Sequence[Message]], new_tokens: int
) -> list[Continuation]:
    """The reference's greedy continuation of each prompt (stopping early at end of turn)."""
    torch = import_torch()
    out = []
    with torch.inference_mode():
        for messages in prompts:
            ids = reference.prompt_ids(messages)
            input_ids = torch.tensor([ids])
            generated = reference.model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=reference.tokenizer.eos_token_id,
            )[0, len(ids) :].tolist()
            tokens: list[int] = []
            for token in generated:
                tokens.append(int(token))
                if token in reference._end_ids:
                    break
            out.append(Continuation(tuple(ids), tuple(tokens)))
    return out


def token_agreement(candidate: TransformersLLM, continuations: Sequence[Continuation]) -> Agreement:
    """Teacher-forced greedy agreement of ``candidate`` with the reference's continuations."""
    torch = import_torch()
    matched = total = 0
    firsts = []
    prefixes = []
    with torch.inference_mode():
        for c in continuations:
            ids = list(c.prompt) + list(c.tokens)
            logits = candidate.sequence_logits(ids)
            # the logits at position i predict token i + 1
            picks = logits[len(c.prompt) - 1 : len(ids) - 1].argmax(dim=-1).tolist()
            same = [int(a) == b for a, b in zip(picks, c.tokens, strict=True)]
            matched += sum(same)
            total += len(same)
            first = same.index(False) if False in same else len(same)
            firsts.append(first)
            prefixes.append(first / len(same) if same else 1.0)
    return Agreement(
        agreement=matched / total if total else 1.0,
        prefix=sum(prefixes) / len(prefixes) if prefixes else 1.0,
        positions=total,
        first_divergence=tuple(firsts),
    )


def perplexity(llm: TransformersLLM, text: str, *, window: int = 1024) -> float:
    """Perplexity of ``text`` under ``llm``, in independent windows of ``window`` tokens."""
    torch = import_torch()
    ids = llm.tokenizer(text, add_special_tokens=False)["input_ids"]
    nll = 0.0
    count = 0
    with torch.inference_mode():
        for start in range(0, len(ids) - 1, window):
            chunk = ids[start : start + window + 1]
            if len(chunk) < 2:
                break
            logits = llm.sequence_logits(chunk[:-1])
            targets = torch.tensor(chunk[1:])
            loss = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
            nll += float(loss)
            count += len(chunk) - 1
    return math.exp(nll / count)
