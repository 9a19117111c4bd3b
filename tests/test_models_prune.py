"""``companion models`` shows each model's size on disk; ``companion models prune``
removes the converted copies older versions left, never a GGUF."""

from __future__ import annotations

from pathlib import Path

import pytest

from companion.cli.main import main
from companion.llm.registry import load_registry


def _cache(root: Path) -> dict[str, Path]:
    entry = load_registry().get("smollm2-135m-instruct")
    assert entry is not None
    gguf = root / "gguf" / entry.file
    gguf.parent.mkdir(parents=True)
    gguf.write_bytes(b"G" * 1000)
    converted = root / entry.name
    converted.mkdir()
    (converted / "model.safetensors").write_bytes(b"F" * 5000)
    quantized = root / "quantized" / f"{entry.name}-abc123"
    quantized.mkdir(parents=True)
    (quantized / "weights.bin").write_bytes(b"Q" * 3000)
    return {"gguf": gguf, "converted": converted, "quantized": quantized}


def test_prune_asks_then_removes_only_the_copies(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("COMPANION_MODELS", str(tmp_path))
    paths = _cache(tmp_path)
    monkeypatch.setattr("builtins.input", lambda _prompt: "n")
    assert main(["models", "prune"]) == 0
    assert "Nothing deleted." in capsys.readouterr().out
    assert paths["converted"].exists() and paths["quantized"].exists()
    monkeypatch.setattr("builtins.input", lambda _prompt: "y")
    assert main(["models", "prune"]) == 0
    out = capsys.readouterr().out
    assert str(paths["quantized"]) in out and "Deleted" in out
    assert not paths["converted"].exists() and not paths["quantized"].exists()
    assert paths["gguf"].read_bytes() == b"G" * 1000
    assert main(["models", "prune", "--yes"]) == 0
    assert "Nothing to prune" in capsys.readouterr().out


def test_prune_yes_does_not_ask(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("COMPANION_MODELS", str(tmp_path))
    paths = _cache(tmp_path)

    def no_questions(_prompt: str) -> str:
        raise AssertionError("asked")

    monkeypatch.setattr("builtins.input", no_questions)
    assert main(["models", "prune", "--yes"]) == 0
    assert not paths["converted"].exists()


@pytest.mark.parametrize("answer", ["", "no", "N"])
def test_prune_default_is_no(tmp_path, monkeypatch, answer) -> None:
    monkeypatch.setenv("COMPANION_MODELS", str(tmp_path))
    paths = _cache(tmp_path)
    monkeypatch.setattr("builtins.input", lambda _prompt: answer)
    main(["models", "prune"])
    assert paths["converted"].exists()


def test_models_lists_the_sizes_on_disk(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("COMPANION_MODELS", str(tmp_path))
    _cache(tmp_path)
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "on disk: 0 MB GGUF + 0 MB of converted copies" in out
