"""pyttsx3 over espeak-ng: :class:`Pyttsx3TTS`.

pyttsx3 2.99's espeak driver plays speech by writing a WAV and running
``aplay`` (absent on many machines), and once :meth:`save_to_file` has been
called it keeps writing every later utterance to that same file. So this
backend never plays: each sentence is saved to a fresh temporary WAV, read back
with :func:`~companion.voice.audio.read_wav` and the file removed.

Its ``runAndWait`` can also return before the speech is written: espeak-ng's
retrieval mode synthesizes on its own thread, and the driver ends its loop after
one 10 ms tick (seen in 1 call of 100 for a 4 s sentence). So each call waits
for the driver's ``finished-utterance`` notice, sent once the file is written. And the
loop's first step cancels whatever espeak-ng is busy with, which can be the
voice/rate settings just queued and, with them, the sentence: empty clips in
about 2.5% of calls with the CPU busy (12 of 480 here). Waiting for espeak-ng to
go idle (``espeak_Synchronize``) before each sentence brought that to 0 of 480;
an empty clip is still retried twice before :class:`AudioError`.

espeak-ng is one engine per process (its synthesis callback is global), so every
engine object shares one lock, and calls from several threads take turns.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from companion.errors import AudioError
from companion.voice.audio import Audio, read_wav
from companion.voice.base import SpeechStyle

#: The rate of espeak-ng's retrieval mode, for empty clips.
ESPEAK_RATE = 22_050
_INSTALL = "install espeak-ng (apt install espeak-ng) and pyttsx3 (pip install 'companion[voice]')"
_RATE_RANGE = (80.0, 450.0)
#: Longest wait for one sentence (espeak-ng runs some hundred times real time).
_TIMEOUT = 30.0
_ATTEMPTS = 3
# espeak-ng is process-global: one synthesis at a time, whatever the engine object.
_ESPEAK_LOCK = threading.Lock()


def _quiet(*_args: object, **_kwargs: object) -> None:
    """Stands in for ``print`` in the espeak driver, which prints "Audio saved to ..."."""


class Pyttsx3TTS:
    """Speech from espeak-ng through pyttsx3, at 22050 Hz.

    ``voice`` is the espeak voice used when :attr:`SpeechStyle.voice` is empty
    (default: espeak's own, ``gmw/en``). A style voice that espeak does not know
    (one written for another engine, say) falls back to it too. Ids are listed by
    :meth:`voices` (``gmw/en-us``, ...).
    """

    name = "pyttsx3"

    def __init__(self, voice: str = "") -> None:
        try:
            import pyttsx3
            import pyttsx3.drivers.espeak as espeak_driver
        except ImportError as exc:
            raise AudioError(f"pyttsx3 is not installed ({exc.name}): {_INSTALL}") from exc
        except (OSError, RuntimeError) as exc:
            raise AudioError(f"espeak-ng cannot be loaded ({exc}): {_INSTALL}") from exc
        # The driver announces every saved file on standard output; silence that
        # (module-local: sys.stdout is left alone, other threads keep printing).
        espeak_driver.print = _quiet
        with _ESPEAK_LOCK:
            try:
                self._engine: Any = pyttsx3.init("espeak")
                found = [str(v.id) for v in self._engine.getProperty("voices")]
                default = str(self._engine.getProperty("voice") or "")
            except (OSError, RuntimeError) as exc:
                raise AudioError(f"espeak-ng does not start ({exc}): {_INSTALL}") from exc
        self._voices = sorted(found)
        if voice and voice not in found:
            raise AudioError(f"espeak-ng has no voice {voice!r} (see `companion doctor`)")
        self.default_voice = voice or default
        self._errors: list[BaseException] = []
        self._finished = threading.Event()
        from pyttsx3.drivers import _espeak

        self._synchronize: Any = _espeak.Synchronize
        self._engine.connect("error", self._on_error)
        self._engine.connect("finished-utterance", self._on_finished)

    def _on_error(self, name: object = None, exception: BaseException | None = None) -> None:
        if exception is not None:
            self._errors.append(exception)
            self._finished.set()

    def _on_finished(self, **_kwargs: object) -> None:
        self._finished.set()

    def synthesize(self, text: str, style: SpeechStyle) -> Audio:
        if not any(ch.isalnum() for ch in text):
            return Audio(np.zeros(0, dtype=np.float32), ESPEAK_RATE)
        voice = style.voice if style.voice in self._voices else self.default_voice
        rate = round(min(max(style.rate, _RATE_RANGE[0]), _RATE_RANGE[1]))
        volume = min(max(style.volume, 0.0), 1.0)
        with _ESPEAK_LOCK, tempfile.TemporaryDirectory(prefix="companion-tts-") as folder:
            for attempt in range(_ATTEMPTS):
                audio = self._say(text, Path(folder) / f"sentence{attempt}.wav", voice, rate,
                                  volume)
                if len(audio.samples):
                    return audio
        raise AudioError(f"espeak-ng produced no audio for {text[:40]!r}")

    def _say(self, text: str, path: Path, voice: str, rate: int, volume: float) -> Audio:
        """One attempt, under the lock: the clip, empty if espeak-ng dropped it."""
        self._errors.clear()
        self._finished.clear()
        self._engine.setProperty("voice", voice)
        self._engine.setProperty("rate", rate)
        self._engine.setProperty("volume", volume)
        # Let espeak-ng's thread apply those settings before the run loop starts:
        # the loop's first step cancels whatever espeak-ng is still doing, and
        # could cancel the sentence that follows with it.
        self._synchronize()
        self._engine.save_to_file(text, str(path))
        self._engine.runAndWait()
        if not self._finished.wait(_TIMEOUT):
            raise AudioError(f"espeak-ng did not finish {text[:40]!r} in {_TIMEOUT:.0f} s")
        if self._errors:
            raise AudioError(f"espeak-ng could not speak {text[:40]!r}: {self._errors[0]}") \
                from self._errors[0]
        if not path.is_file():
            return Audio(np.zeros(0, dtype=np.float32), ESPEAK_RATE)
        return read_wav(path)

    def voices(self) -> list[str]:
        return list(self._voices)
