"""The sound card: one full-duplex sounddevice stream (16 kHz mono).

A single callback reads the microphone block and fills the speaker block from
the same :class:`~companion.voice.devices.SpeakerQueue` the virtual device
uses. :func:`open_microphone` opens it and turns PortAudio failures (no
device, no library) into one :class:`~companion.errors.AudioError` line.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import numpy as np

from companion.errors import AudioError
from companion.voice.audio import MIC_RATE, Audio
from companion.voice.base import Frame, Playback
from companion.voice.devices import TRY_VIRTUAL, SpeakerQueue


class SoundDeviceDuplex:
    """The sound card as one full-duplex sounddevice stream (16 kHz mono float32).

    The stream's callback takes the microphone block and fills the speaker
    block from the playback queue, so ``Frame.played`` is sample-aligned with
    ``Frame.mic`` up to the acoustic path. Frames wait in a queue for
    :meth:`frames`; if the reader falls more than ``max_queued_s`` behind, the
    oldest are dropped and counted in :attr:`dropped`.
    """

    def __init__(
        self,
        device: int | str | None = None,
        *,
        rate: int = MIC_RATE,
        block: int = 512,
        max_queued_s: float = 10.0,
    ) -> None:
        sd = _sounddevice()
        self.rate = rate
        self.block = block
        self._speaker = SpeakerQueue(rate)
        self._queue: queue.Queue[Frame | None] = queue.Queue()
        self._max_queued = max(1, round(max_queued_s * rate / block))
        self._n = 0
        #: Blocks PortAudio reported as over/underflowed, and blocks dropped unread.
        self.xruns = 0
        self.dropped = 0
        self._closed = False
        try:
            self._stream: Any = sd.Stream(
                device=device,
                samplerate=rate,
                blocksize=block,
                channels=1,
                dtype="float32",
                callback=self._callback,
            )
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioError(
                f"cannot open audio device {device or 'default'}: {_one_line(exc)}; {TRY_VIRTUAL}"
            ) from exc

    def _callback(self, indata: Any, outdata: Any, frames: int, _time: Any, status: Any) -> None:
        played = self._speaker.pull(frames)
        outdata[:, 0] = played
        if status:
            self.xruns += 1
        frame = Frame(indata[:, 0].astype(np.float32, copy=True), played, self._n / self.rate)
        self._n += frames
        if self._queue.qsize() >= self._max_queued:
            try:
                self._queue.get_nowait()
                self.dropped += 1
            except queue.Empty:
                pass
        self._queue.put(frame)

    def frames(self) -> Iterator[Frame]:
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            yield frame

    def play(self, audio: Audio) -> Playback:
        return self._speaker.play(audio)

    def stop_playback(self) -> None:
        self._speaker.stop()

    @property
    def playing(self) -> bool:
        return self._speaker.playing

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._speaker.stop()
        try:
            self._stream.stop()
            self._stream.close()
        finally:
            self._queue.put(None)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _sounddevice() -> Any:
    """The sounddevice module, or an :class:`AudioError` saying what to install."""
    try:
        import sounddevice
    except ImportError as exc:
        raise AudioError(
            f"sounddevice is not installed (pip install 'companion[voice]'); {TRY_VIRTUAL}"
        ) from exc
    except OSError as exc:  # raised at import when libportaudio is missing
        raise AudioError(
            f"PortAudio is missing (apt-get install libportaudio2); {TRY_VIRTUAL}"
        ) from exc
    return sounddevice


def open_microphone(
    device: int | str | None = None, *, rate: int = MIC_RATE, block: int = 512
) -> SoundDeviceDuplex:
    """The sound card's microphone and speaker as one duplex stream.

    Raises :class:`AudioError` (one line, suggesting ``--input-wav``) when
    PortAudio is missing, no input device exists, or the device cannot open.
    """
    sd = _sounddevice()
    try:
        sd.query_devices(device, kind="input")
    except (sd.PortAudioError, ValueError) as exc:
        what = f"audio input device {device!r}" if device is not None else "audio input device"
        raise AudioError(f"no {what} found; {TRY_VIRTUAL}") from exc
    return SoundDeviceDuplex(device, rate=rate, block=block)


def list_devices() -> list[str]:
    """The sound devices PortAudio sees, one line each (empty when there are none)."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
    except sd.PortAudioError as exc:
        raise AudioError(f"cannot list audio devices: {_one_line(exc)}") from exc
    return [
        f"{d['index']}: {d['name']} ({d['max_input_channels']} in, {d['max_output_channels']} out)"
        for d in devices
    ]
