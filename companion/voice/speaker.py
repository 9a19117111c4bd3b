"""Speaking a reply while it is being generated, and knowing what was heard.

:meth:`Speaker.start` takes the reply's text stream and returns a
:class:`Speech` at once. Two worker threads do the rest:

- the *text* thread pulls the stream (this is what runs the language model),
  cuts it into sentences (:class:`~companion.voice.speech_text.SentenceChunker`)
  and hands each one on as soon as it is complete;
- the *voice* thread prepares each sentence for speech
  (:func:`~companion.voice.speech_text.speakable`), synthesizes it and queues
  the clip on the device, so the first sentence plays while the next is still
  being generated.

:meth:`Speech.stop` is barge-in: the speaker falls silent at once, nothing more
is synthesized and the stream is no longer pulled. :meth:`Speech.spoken_text`
says what reached the user: the sentences played to the end, and the words of
the one in progress in proportion to how much of it was played.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from companion.errors import AudioError
from companion.voice.audio import MIC_RATE, Audio, write_wav
from companion.voice.base import TTS, AudioDevice, Frame, Playback, SpeechStyle

Clock = Callable[[], float]


@dataclass
class SpeechTimes:
    """When things happened (``clock`` seconds; None until they did), for latency figures."""

    started: float
    #: The first text chunk arrived from the stream (first token).
    first_chunk: float | None = None
    #: The first sentence was complete in the text.
    first_sentence: float | None = None
    #: The first sentence's clip was synthesized.
    first_synthesized: float | None = None
    #: The first clip was queued on the device.
    first_queued: float | None = None
    #: The text stream ended (or was abandoned).
    text_done: float | None = None


@dataclass
class _Said:
    """One sentence: its text as generated, as spoken, and its clip once queued."""

    text: str
    words: list[str]
    audio: Audio | None = None
    playback: Playback | None = None
    seconds: float = 0.0

    def fraction(self) -> float:
        if self.playback is None:
            return 0.0
        if self.seconds <= 0:
            return 1.0
        return min(self.playback.played_seconds / self.seconds, 1.0)


@dataclass
class _State:
    said: list[_Said] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    error: BaseException | None = None


class Speech:
    """One reply being spoken. Thread-safe; see :class:`Speaker`."""

    def __init__(
        self,
        chunks: Iterable[str],
        device: AudioDevice,
        tts: TTS,
        style: SpeechStyle,
        *,
        save_to: Path | None,
        clock: Clock,
    ) -> None:
        from companion.voice.speech_text import SentenceChunker

        self._device = device
        self._tts = tts
        self._style = style
        self._save_to = save_to
        self._clock = clock
        # Her first words are spoken alone: the first clause (up to the first
        # comma, or ~6 words) is synthesized as soon as it is written; at ~10
        # tokens/s a whole first sentence would keep her silent for a second or two.
        self._chunker = SentenceChunker(first_max_chars=FIRST_CHUNK_CHARS,
                                        first_words=FIRST_CHUNK_WORDS)
        self._iter: Iterator[str] = iter(chunks)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._sentences: queue.Queue[str | None] = queue.Queue()
        self._state = _State()
        self._finalized = False
        self.times = SpeechTimes(clock())
        self.saved: Path | None = None
        self._text_thread = threading.Thread(target=self._pull, name="speech-text", daemon=True)
        self._voice_thread = threading.Thread(target=self._speak, name="speech-voice", daemon=True)
        self._text_thread.start()
        self._voice_thread.start()

    # -- what the caller sees ------------------------------------------------

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    @property
    def text_done(self) -> bool:
        """The text stream has ended (generation finished, failed or was abandoned)."""
        return not self._text_thread.is_alive()

    @property
    def done(self) -> bool:
        """Everything is over: generated, synthesized and played (or stopped)."""
        if self._text_thread.is_alive() or self._voice_thread.is_alive():
            return False
        with self._lock:
            playing = any(s.playback is not None and not s.playback.done
                          for s in self._state.said)
        if playing:
            return False
        self._finalize()
        return True

    @property
    def error(self) -> BaseException | None:
        """What went wrong in generation or synthesis, if anything did."""
        with self._lock:
            return self._state.error

    @property
    def text(self) -> str:
        """The reply's text as generated so far."""
        with self._lock:
            return "".join(self._state.text)

    @property
    def sentences(self) -> list[str]:
        """The sentences handed to the voice so far, as generated."""
        with self._lock:
            return [s.text for s in self._state.said]

    def spoken_text(self) -> str:
        """What reached the user: whole sentences played, then the words of the
        sentence in progress in proportion to how much of its clip was played."""
        with self._lock:
            said = list(self._state.said)
        parts: list[str] = []
        for s in said:
            frac = s.fraction()
            if frac >= 0.999:
                parts.append(s.text)
                continue
            n = round(frac * len(s.words))
            if n:
                parts.append(" ".join(s.words[:n]))
            break
        return " ".join(p.strip() for p in parts if p.strip())

    def stop(self, *, timeout: float = 5.0) -> None:
        """Barge-in: silence the speaker now, synthesize nothing more, stop pulling
        the stream. Waits (up to ``timeout``) until the stream is let go, so the
        caller may then end the reply (e.g. :meth:`Companion.cut_reply`)."""
        with self._lock:  # the voice thread checks and queues under this lock
            first = not self._stopped.is_set()
            self._stopped.set()
            if first:
                self._device.stop_playback()
        self._sentences.put(None)
        self._text_thread.join(timeout)
        self._voice_thread.join(timeout)
        self._finalize()

    def wait_text(self, timeout: float | None = None) -> bool:
        """Block until the text stream has ended (the reply is generated); returns if it has."""
        self._text_thread.join(timeout)
        return self.text_done

    def wait(self, timeout: float | None = None, *, poll: float = 0.01) -> bool:
        """Block until :attr:`done` (or ``timeout`` seconds); returns :attr:`done`."""
        end = None if timeout is None else self._clock() + timeout
        while not self.done:
            if end is not None and self._clock() >= end:
                return False
            time.sleep(poll)
        return True

    # -- the worker threads --------------------------------------------------

    def _pull(self) -> None:
        try:
            for chunk in self._iter:
                if self._stopped.is_set():
                    break
                now = self._clock()
                if self.times.first_chunk is None:
                    self.times.first_chunk = now
                with self._lock:
                    self._state.text.append(chunk)
                self._hand_on(self._chunker.push(chunk))
            else:
                self._hand_on(self._chunker.flush())
        except Exception as exc:  # handed to the caller's thread through .error
            self._fail(exc)
        finally:
            close = getattr(self._iter, "close", None)
            if close is not None:
                close()  # let the reply end (and be stored) now, on this thread
            self.times.text_done = self._clock()
            self._sentences.put(None)

    def _hand_on(self, sentences: list[str]) -> None:
        for sentence in sentences:
            if self._stopped.is_set():
                return
            if sentence.strip():
                if self.times.first_sentence is None:
                    self.times.first_sentence = self._clock()
                self._sentences.put(sentence)

    def _speak(self) -> None:
        from companion.voice.speech_text import speakable

        while True:
            sentence = self._sentences.get()
            if sentence is None or self._stopped.is_set():
                return
            words = speakable(sentence)
            said = _Said(sentence.strip(), words.split())
            if words.strip():
                try:
                    audio = self._tts.synthesize(words, self._style)
                except Exception as exc:  # handed to the caller's thread through .error
                    self._fail(exc)
                    return
                if self.times.first_synthesized is None:
                    self.times.first_synthesized = self._clock()
                said.audio = audio
                said.seconds = audio.resampled(self._device.rate).seconds
            with self._lock:
                if self._stopped.is_set():
                    return
                if said.audio is not None:
                    said.playback = self._device.play(said.audio)
                    if self.times.first_queued is None:
                        self.times.first_queued = self._clock()
                else:  # nothing to say aloud (an emoji, a stage direction): heard at once
                    said.playback = _Instant()
                self._state.said.append(said)

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._state.error is None:
                self._state.error = exc
        self._stopped.set()
        self._sentences.put(None)

    def _finalize(self) -> None:
        with self._lock:
            if self._finalized:
                return
            self._finalized = True
            said = list(self._state.said)
        if self._save_to is None:
            return
        clips: list[Audio] = []
        for s in said:
            if s.audio is None:
                continue
            frac = s.fraction()
            if frac <= 0:
                break
            keep = round(len(s.audio.samples) * frac)
            clips.append(Audio(s.audio.samples[:keep], s.audio.rate))
            if frac < 0.999:
                break
        if clips:
            try:
                self.saved = write_wav(self._save_to, Audio.concat(clips))
            except AudioError as exc:
                with self._lock:
                    self._state.error = self._state.error or exc


class _Instant:
    """The playback of a sentence with nothing to say aloud."""

    done = True
    played_seconds = 0.0


class NoSpeaker:
    """An :class:`~companion.voice.base.AudioDevice` with nothing to play on: each
    clip counts as heard at once (``--save-audio`` without a sound card)."""

    rate = MIC_RATE
    playing = False

    def frames(self) -> Iterator[Frame]:
        return iter(())

    def play(self, audio: Audio) -> Playback:
        return _Heard(audio.seconds)

    def stop_playback(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class _Heard:
    played_seconds: float
    done: bool = True


#: Longest first piece of a reply sent to synthesis (see SentenceChunker).
FIRST_CHUNK_CHARS = 48
#: Most words in the first piece: it ends at the first clause mark or after these.
FIRST_CHUNK_WORDS = 6


class Speaker:
    """Speaks replies on ``device`` with ``tts`` in ``style`` (one at a time).

    With ``save_dir``, each reply is also written there as ``reply-NNN.wav``
    (what was played: a reply cut off by the user is cut there too).
    """

    def __init__(
        self,
        device: AudioDevice,
        tts: TTS,
        style: SpeechStyle | None = None,
        *,
        save_dir: Path | str | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.device = device
        self.tts = tts
        self.style = style or SpeechStyle()
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self._clock = clock
        self._count = 0
        self.current: Speech | None = None

    def start(self, chunks: Iterable[str], style: SpeechStyle | None = None) -> Speech:
        """Begin speaking ``chunks`` (e.g. a :class:`~companion.reply.Reply`); returns at once.

        A reply still being spoken is stopped first.
        """
        if self.current is not None and not self.current.done:
            self.current.stop()
        self._count += 1
        save_to = self.save_dir / f"reply-{self._count:03d}.wav" if self.save_dir else None
        self.current = Speech(chunks, self.device, self.tts, style or self.style,
                              save_to=save_to, clock=self._clock)
        return self.current

    def speak(self, chunks: Iterable[str], style: SpeechStyle | None = None) -> Speech:
        """Speak ``chunks`` and wait until it has all been played.

        Ctrl-C (KeyboardInterrupt) stops the speech, then propagates.
        """
        speech = self.start(chunks, style)
        try:
            speech.wait()
        except BaseException:
            speech.stop()
            raise
        return speech
