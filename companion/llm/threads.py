"""How many CPU threads a local model generates with, changed at run time.

Voice mode runs speech recognition and synthesis beside generation. When they
hold a core, a generation spread over every core waits at each synchronisation
point for a thread that is not running, and decoding slows down far more than
the lost core explains; on one thread it only loses its share of the CPU
(``bench/generation.py --baseline --busy 1`` measures both). So a voice loop can
generate on fewer threads while speech runs::

    with generation_threads(llm, 1):
        for chunk in llm.stream(messages, params):
            ...

For :class:`~companion.llm.transformers_backend.TransformersLLM` the setting is
torch's, which is process-wide (it also applies to the memory embedder); for
:class:`~companion.llm.llamacpp_backend.LlamaCppLLM` it belongs to the instance.
Other backends (remote, fake) have no such setting and are left alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from companion.llm.base import LLM


def set_generation_threads(llm: LLM, threads: int) -> int | None:
    """Make ``llm`` generate on ``threads`` threads from its next token on.

    Returns the previous count, or ``None`` when the backend has no such setting.
    """
    from companion.llm.llamacpp_backend import LlamaCppLLM
    from companion.llm.transformers_backend import TransformersLLM, import_torch

    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    if isinstance(llm, LlamaCppLLM):
        previous = llm.threads
        llm.set_threads(threads)
        return previous
    if isinstance(llm, TransformersLLM):
        torch = import_torch()
        previous = int(torch.get_num_threads())
        torch.set_num_threads(threads)
        return previous
    return None


@contextlib.contextmanager
def generation_threads(llm: LLM, threads: int) -> Iterator[None]:
    """Generate on ``threads`` threads inside the block; restore the previous count after."""
    previous = set_generation_threads(llm, threads)
    try:
        yield
    finally:
        if previous is not None:
            set_generation_threads(llm, previous)
