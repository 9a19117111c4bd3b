"""Quality guard (issue 6, part 5): the fast CPU weights against the full-precision model.

SmolLM2-135M-Instruct, greedy, as a user's own model folder (float32
safetensors, written from its GGUF into a temporary folder: the transformers
path quantizes only such folders; registry models run on the GGUF engine). Over
the fixed prompts of ``tests/data/quality/prompts.toml`` the quantized model
must pick the reference's token at most positions (teacher-forced, see
:mod:`companion.llm.quality`), and its perplexity on ``text.txt`` must stay
within a few percent of the reference's. Thresholds, from ``bench/quality.py
--model smollm2-135m-instruct --reference fp32 --new-tokens 16``: on the native
kernels (int8 activations in blocks of 32, as llama.cpp) int8 and int4 both
score 0.938 with perplexity ratios 1.012 and 1.006; on torch's kernels
(``COMPANION_NATIVE=0``: bf16 activations) 0.977 / 1.006 and 0.953 / 1.004.
int4 is GGUF's Q4_1, which this model's GGUF already is, so it loses no more
than int8. The limits leave room for kernel and library changes but not for a
broken format: an int8 path with per-tensor 8-bit activations (fbgemm's dynamic
kernel) scored 0.41 and 2.8x on the same test; the old int4 layout (bf16 scales,
no exact Q4_1) 0.849 and 1.039.
Run with ``pytest -m real_model``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gguf_files import safetensors_folder, smol_gguf

from companion.llm.loader import load_llm

pytestmark = pytest.mark.real_model

DATA = Path(__file__).parent / "data" / "quality"
NEW_TOKENS = 16
#: Minimum teacher-forced agreement and maximum perplexity ratio per method.
LIMITS = {"int8": (0.90, 1.03), "int4": (0.88, 1.03)}

torch = pytest.importorskip("torch")
quality = pytest.importorskip("companion.llm.quality")
quantize = pytest.importorskip("companion.llm.quantize")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gguf = smol_gguf()
    if not gguf.is_file():
        pytest.skip(f"{gguf} is not downloaded")
    return safetensors_folder(gguf, tmp_path_factory.mktemp("SmolLM2-135M-Instruct"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the quantized copies go (not the test model cache: the folder is new each run)."""
    return tmp_path_factory.mktemp("cache")


def _load(folder: Path, quantize: str, cache: Path) -> Any:
    return load_llm(str(folder), threads=2, progress=lambda _: None, quantize=quantize, cache=cache)


@pytest.fixture(scope="module")
def reference(folder: Path, cache: Path) -> Any:
    """The float32 weights: bf16 is 4x slower on AVX2 CPUs and itself a rounding of them."""
    return _load(folder, "none", cache)


@pytest.fixture(scope="module")
def continuations(reference: Any) -> list[Any]:
    prompts = quality.load_prompts(DATA / "prompts.toml")
    return list(quality.greedy_continuations(reference, prompts, NEW_TOKENS))


@pytest.fixture(scope="module")
def text() -> str:
    return (DATA / "text.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def reference_perplexity(reference: Any, text: str) -> float:
    return float(quality.perplexity(reference, text))


@pytest.mark.parametrize("kernels", ["native", "torch"])
@pytest.mark.parametrize("method", ["int8", "int4"])
def test_quantized_model_agrees_with_the_full_precision_model(
    method: str,
    kernels: str,
    continuations: list[Any],
    text: str,
    reference_perplexity: float,
    folder: Path,
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if kernels == "torch":  # what a CPU without AVX2 or a machine without cc runs
        from companion.llm import lean, native

        monkeypatch.setattr(native, "kernels", lambda: None)
        monkeypatch.setattr(lean, "kernels", lambda: None)
    llm = _load(folder, method, cache)
    assert (llm.lean is not None) == (kernels == "native" and native_available())
    kinds = {kind for _, kind in quantize.iter_quantized_layers(llm.model)}
    assert method in kinds and "int8-embedding" in kinds
    agreement = quality.token_agreement(llm, continuations)
    ratio = quality.perplexity(llm, text) / reference_perplexity
    min_agreement, max_ratio = LIMITS[method]
    assert agreement.positions >= 4 * NEW_TOKENS
    assert agreement.agreement >= min_agreement, agreement
    assert ratio <= max_ratio, ratio


def native_available() -> bool:
    from companion.llm.native import kernels

    return kernels() is not None


def test_the_reference_is_coherent(reference_perplexity: float) -> None:
    """The shipped text is ordinary English: a sane model finds it unsurprising."""
    assert 2.0 < reference_perplexity < 30.0


def test_auto_picks_the_cpu_default_and_a_second_start_reads_the_cache(
    folder: Path, cache: Path, tmp_path: Path
) -> None:
    method = quantize.CPU_DEFAULT
    llm = _load(folder, "auto", cache)
    assert method in {k for _, k in quantize.iter_quantized_layers(llm.model)}
    first, built = quantize.load_quantized(folder, method, cache=tmp_path)
    second, built_again = quantize.load_quantized(folder, method, cache=tmp_path)
    assert built and not built_again
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.inference_mode():
        assert torch.equal(first(input_ids=ids).logits, second(input_ids=ids).logits)
