"""``companion models`` shows each model's size on disk; ``companion models prune``
removes the copies older versions converted (their layout, faked in a temporary
model cache), never a GGUF, nor what the current version still uses."""

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
    quantized = root / "quantized" / f"{entry.name}-0123456789ab"
    quantized.mkdir(parents=True)
    (quantized / "weights.bin").write_bytes(b"Q" * 3000)
    return {"gguf": gguf, "converted": converted, "quantized": quantized}


def test_prune_finds_the_copies_of_gguf_files_given_by_path_too(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("COMPANION_MODELS", str(tmp_path))
    local = tmp_path / "local" / "MyModel.Q4_K_M-0123456789ab"
    local.mkdir(parents=True)
    (local / "model.safetensors").write_bytes(b"F" * 4000)
    local_int8 = tmp_path / "quantized" / f"{local.name}-ba9876543210"
    local_int8.mkdir(parents=True)
    # Live, not legacy: the int8 copy of a user's own safetensors folder, and the
    # cache's other residents.
    users = tmp_path / "quantized" / "my-finetune-0123456789ab"
    users.mkdir()
    (users / "int8.safetensors").write_bytes(b"Q" * 100)
    keep = [users, tmp_path / "native", tmp_path / "smart-turn"]
    for folder in keep[1:]:
        folder.mkdir()
    assert main(["models"]) == 0
    assert "and 0 MB of copies older versions converted from .gguf files" in (
        capsys.readouterr().out
    )
    assert main(["models", "prune", "--yes"]) == 0
    out = capsys.readouterr().out
    assert str(local) in out and str(local_int8) in out and str(users) not in out
    assert not local.exists() and not local_int8.exists()
    assert all(folder.exists() for folder in keep)


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
    assert "on disk: 0 MB GGUF + 0 MB of copies older versions converted" in out
