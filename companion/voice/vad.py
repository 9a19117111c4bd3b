"""Voice activity detection: Silero (ONNX, no torch) and an energy fallback.

Both implement :class:`~companion.voice.base.VAD`: call them on consecutive
512-sample 16 kHz frames (32 ms) and they return the probability that the frame
holds speech, carrying state from one frame to the next.

- :class:`SileroVAD` runs ``silero_vad.onnx`` from the silero-vad package
  directly with onnxruntime on one thread (about 0.1 ms a frame; the package's
  own wrapper needs torch, which voice does not).
- :class:`EnergyVAD` needs nothing but numpy: frame loudness against an adaptive
  noise floor. It cannot tell speech from other sounds; use it only when
  onnxruntime is missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from companion.errors import AudioError
from companion.voice.audio import MIC_RATE, Samples
from companion.voice.base import VAD

#: Samples per frame at 16 kHz for both detectors (32 ms).
FRAME_SAMPLES = 512
#: Samples of the previous frame Silero sees in front of each frame.
_SILERO_CONTEXT = 64

_INSTALL = "pip install 'companion[voice]'"


def silero_model_path() -> Path:
    """``silero_vad.onnx`` inside the installed silero-vad package (found without importing it:
    the package's ``__init__`` imports torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise AudioError(f"silero-vad is not installed; {_INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise AudioError(f"{path}: missing from the silero-vad package; reinstall silero-vad")
    return path


class SileroVAD:
    """Silero VAD v5/v6 on onnxruntime: 512-sample frames at 16 kHz, state carried across calls."""

    name = "silero"
    frame_samples = FRAME_SAMPLES

    def __init__(self, model: Path | str | None = None) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            raise AudioError(f"onnxruntime is not installed; {_INSTALL}") from exc
        path = Path(model) if model is not None else silero_model_path()
        opts = onnxruntime.SessionOptions()
        # One thread: a 32 ms frame costs well under a millisecond, and the
        # other core belongs to the language model.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        try:
            self._session: Any = onnxruntime.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise AudioError(f"{path}: cannot load the Silero VAD model ({exc})") from exc
        self._sr = np.array(MIC_RATE, dtype=np.int64)
        self._input = np.zeros((1, _SILERO_CONTEXT + FRAME_SAMPLES), dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._input[:] = 0.0

    def __call__(self, frame: Samples) -> float:
        if len(frame) != FRAME_SAMPLES:
            raise ValueError(f"SileroVAD takes {FRAME_SAMPLES}-sample frames, got {len(frame)}")
        buf = self._input
        # The model sees the last 64 samples of the previous frame, then this one.
        buf[0, :_SILERO_CONTEXT] = buf[0, -_SILERO_CONTEXT:]
        buf[0, _SILERO_CONTEXT:] = frame
        out, self._state = self._session.run(
            None, {"input": buf, "state": self._state, "sr": self._sr}
        )
        return float(out[0, 0])


class EnergyVAD:
    """Loudness above an adaptive noise floor, mapped to a 0..1 score.

    The floor follows quiet frames quickly and loud ones slowly (it rises about
    3 dB a second), so it settles on the room's noise and a long utterance does
    not become the floor. A frame ``margin_db`` above the floor scores 0.5.
    """

    name = "energy"
    frame_samples = FRAME_SAMPLES

    def __init__(self, *, margin_db: float = 12.0, min_floor_db: float = -70.0) -> None:
        self.margin_db = margin_db
        self.min_floor_db = min_floor_db
        self.reset()

    def reset(self) -> None:
        self._floor: float | None = None

    def __call__(self, frame: Samples) -> float:
        if len(frame) != FRAME_SAMPLES:
            raise ValueError(f"EnergyVAD takes {FRAME_SAMPLES}-sample frames, got {len(frame)}")
        rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64))))
        db = 20.0 * np.log10(max(rms, 1e-7))
        floor = db if self._floor is None else self._floor
        # Fall fast (0.3 of the gap per frame), rise slowly (0.1 dB per 32 ms frame).
        floor = floor + 0.3 * (db - floor) if db < floor else floor + min(0.1, db - floor)
        self._floor = max(floor, self.min_floor_db)
        # 6 dB either side of the margin spans most of the 0..1 range.
        return float(1.0 / (1.0 + np.exp(-(db - self._floor - self.margin_db) / 3.0)))


def load_vad(name: str = "auto") -> VAD:
    """A detector by name: "silero", "energy", or "auto" (Silero when onnxruntime and
    silero-vad are installed, else energy)."""
    if name == "silero":
        return SileroVAD()
    if name == "energy":
        return EnergyVAD()
    if name == "auto":
        if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("silero_vad"):
            return SileroVAD()
        return EnergyVAD()
    raise AudioError(f"unknown VAD {name!r}; use auto, silero or energy")
