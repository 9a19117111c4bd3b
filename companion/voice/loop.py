"""The voice conversation: listen, transcribe, answer aloud, listen again.

:class:`VoiceLoop` consumes the device's duplex frames on the calling thread.
Each frame goes through echo handling (:class:`~companion.voice.echo.EchoGuard`)
to the end-of-turn detector (:class:`~companion.voice.endpoint.Endpointer`).
The stages overlap: the turn is transcribed from its first short silence on
(:class:`~companion.voice.streaming.StreamingRecognizer`; with ``partial_every_s``
also while the user speaks),
the end-of-turn model (Smart Turn, with the consent of a transcript that reads
as a complete sentence) decides at 600 ms of silence (800 ms when in doubt),
and meanwhile the would-be prompt is read by the model
(:class:`~companion.voice.speculate.Speculator`). The turn's
text is given to :meth:`Companion.say`, and the reply is spoken by a
:class:`~companion.voice.speaker.Speaker` while it is generated. Frames keep
flowing while she speaks: if the user starts talking over her (barge-in),
playback stops at once, the reply is stored as what was actually said
(:meth:`Companion.cut_reply`), and what the user is saying becomes the next turn.
The same code runs on a sound card and on
:class:`~companion.voice.devices.VirtualDevice` (WAV files in and out).

Progress is reported as :data:`Event` values to ``on_event``, with stream
times (seconds since the stream began) for the latency figures.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from companion.dialog import Companion
from companion.errors import InputError
from companion.reply import Reply
from companion.types import Turn
from companion.voice.audio import MIC_RATE, Audio, Samples, StreamResampler
from companion.voice.base import STT, TTS, VAD, AudioDevice, Frame, SpeechStyle
from companion.voice.echo import EchoGuard
from companion.voice.endpoint import Endpointer, Pause, Resume, SpeechStart, Utterance
from companion.voice.speaker import Speaker, Speech
from companion.voice.speculate import PromptFor, Speculator
from companion.voice.streaming import Job, StreamingRecognizer
from companion.voice.talk import TalkKey
from companion.voice.turn import TURN_PLANS, TurnModel, WithTranscript

# A transcript with no words, or only a bracketed sound tag ("[BLANK_AUDIO]",
# "(coughs)", "*music*"), is noise: it is not worth a model call.
_NOISE = re.compile(r"^[\W_]*$|^\s*[\[(*♪][^\])*♪]*[\])*♪]\s*$")


def is_noise(text: str) -> bool:
    """Whether a transcript holds no words (silence, a cough, a sound tag)."""
    return bool(_NOISE.match(text))


@dataclass(frozen=True, slots=True)
class TurnTimes:
    """Stream times (s) of one turn, from the user's last word to her first sound.

    Stages that run off the stream (recognition, generation, synthesis) are
    timed by the clock and placed on the stream at the device's speed.
    """

    speech_end: float
    detected: float
    transcribed: float
    first_token: float | None = None
    first_synthesized: float | None = None
    first_queued: float | None = None
    first_audio: float | None = None


@dataclass(frozen=True, slots=True)
class Heard:
    """The user's turn, recognized: when their speech started and ended, when the
    end of the turn was detected and when recognition finished (stream times)."""

    text: str
    started: float
    ended: float
    detected: float
    transcribed: float


@dataclass(frozen=True, slots=True)
class Ignored:
    """An utterance that held no words (nothing was asked of the model)."""

    text: str
    started: float


@dataclass(frozen=True, slots=True)
class ReplyStarted:
    time: float
    greeting: bool = False


@dataclass(frozen=True, slots=True)
class FirstAudio:
    """Her first sample of a reply left the speaker."""

    time: float
    #: The turn's stage times (None for the greeting).
    times: TurnTimes | None


@dataclass(frozen=True, slots=True)
class BargeIn:
    """The user spoke over her: ``onset`` of their speech, when it was detected,
    and when playback was stopped (all stream times)."""

    onset: float
    detected: float
    stopped: float
    spoken: str


@dataclass(frozen=True, slots=True)
class ReplyDone:
    """A reply ended and was stored: ``text`` as stored (None: nothing was said)."""

    text: str | None
    interrupted: bool
    time: float
    turn_id: int | None


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should know (e.g. the switch to half-duplex)."""

    text: str


Event = Heard | Ignored | ReplyStarted | FirstAudio | BargeIn | ReplyDone | Notice


@dataclass
class _Current:
    """The reply being spoken."""

    reply: Reply[Turn | None]
    speech: Speech
    greeting: bool
    anchor_stream: float
    anchor_clock: float
    speech_end: float = 0.0
    detected: float = 0.0
    transcribed: float = 0.0
    first_audio: float | None = None
    notes: list[str] = field(default_factory=list)


class VoiceLoop:
    """A spoken conversation with ``companion`` on ``device``.

    ``push_to_talk``: a :class:`~companion.voice.talk.TalkKey` says when the
    user holds the talk key; what the microphone hears meanwhile is one turn,
    and pressing it while she speaks interrupts her. ``half_duplex``: the
    microphone is ignored while she speaks (no barge-in). ``endpointer``
    overrides the end-of-turn detector built on ``vad``; ``turn`` is the
    end-of-turn model, asked as the plan ``end_of_turn`` says (a name in
    :data:`~companion.voice.turn.TURN_PLANS`; None: the silence rule).
    ``prompt_for`` builds the prompt ``say`` would send, for speculation
    (default: the companion's ``prompt_for``; ``speculate=False``: off).
    """

    def __init__(
        self,
        companion: Companion,
        device: AudioDevice,
        stt: STT,
        tts: TTS,
        vad: VAD,
        *,
        push_to_talk: TalkKey | None = None,
        half_duplex: bool = False,
        on_event: Callable[[Event], None] | None = None,
        save_dir: Path | str | None = None,
        clock: Callable[[], float] = time.monotonic,
        endpointer: Endpointer | None = None,
        style: Callable[[], SpeechStyle] | None = None,
        between_turns: Callable[[], Reply[Turn | None] | None] | None = None,
        turn: TurnModel | None = None,
        prompt_for: PromptFor | None = None,
        partial_every_s: float | None = None,
        end_of_turn: str = "model",
        speculate: bool = True,
    ) -> None:
        self.companion = companion
        #: Asked while nobody speaks: something to say unprompted (a due reminder).
        self.between_turns = between_turns
        self.device = device
        self.stt = stt
        self.talk = push_to_talk
        # Partial transcripts while the user speaks cost a core and are not needed
        # for speed: the transcript from the first silence is ready before the turn
        # model has decided (Whisper on a short window, 0.1-0.2 s).
        self.recognizer = StreamingRecognizer(stt, every_s=partial_every_s or 0.0)
        self._partials = partial_every_s is not None
        if end_of_turn not in TURN_PLANS:
            raise ValueError(f"unknown end-of-turn plan {end_of_turn!r}: use "
                             + ", ".join(TURN_PLANS))
        plan = TURN_PLANS[end_of_turn if turn is not None else "silence"]
        self._judge = WithTranscript(turn, self._pause_text) if turn is not None else None
        judge = self._judged if turn is not None else None
        self.endpointer = endpointer or Endpointer(
            vad, turn=judge, turn_checks=plan.checks, end_silence_ms=plan.fallback_ms
        )
        self.speculator = Speculator(
            companion.llm,
            (prompt_for or getattr(companion, "prompt_for", None)) if speculate else None,
        )
        self._resample = StreamResampler(device.rate, MIC_RATE)
        self._job: Job | None = None
        self._next_partial = 0.0
        self._carry = ""  # the words of a turn cut at max_utterance_s, said before this one
        self.guard = EchoGuard(device.rate, half_duplex=half_duplex)
        self._clock = clock
        self.speaker = Speaker(device, tts, save_dir=save_dir, clock=clock)
        self._style = style or self._persona_style
        self._emit = on_event or (lambda _event: None)
        speed = float(getattr(device, "speed", 1.0))
        self._speed = speed if math.isfinite(speed) else 1.0
        self._current: _Current | None = None
        self._now = 0.0
        self._noticed = ""
        self._recording: list[Samples] | None = None
        self._recording_start = 0.0
        self.events: list[Event] = []

    # -- running -------------------------------------------------------------

    def run(self, *, greet: bool = True) -> None:
        """Talk until the device's input ends (or Ctrl-C). A reply in progress at
        the end is stopped and stored as far as it was spoken."""
        try:
            if greet:
                self._start(self.companion.greet(), greeting=True)
            for frame in self.device.frames():
                self._frame(frame)
            self._end_of_input()
        finally:
            if self._current is not None:
                self._interrupt()
            self.recognizer.close()

    def _frame(self, frame: Frame) -> None:
        rate = self.device.rate
        self._now = frame.time + len(frame.mic) / rate
        cur = self._current
        if cur is not None and cur.first_audio is None and frame.played.any():
            cur.first_audio = frame.time + int(np.argmax(frame.played != 0)) / rate
            self._say(FirstAudio(cur.first_audio, None if cur.greeting else self._times(cur)))
        samples, start = self.guard.process(frame, self.device.playing)
        # a clipped or broken microphone block must not upset the detectors
        samples = np.nan_to_num(np.clip(samples, -1.0, 1.0), nan=0.0).astype(np.float32)
        samples = self._resample(samples)
        if self.guard.notice and self.guard.notice != self._noticed:
            self._noticed = self.guard.notice
            self._say(Notice(self.guard.notice))
        if self.talk is not None:
            self._push_to_talk(frame)
        else:
            for event in self.endpointer.push(samples, start):
                if isinstance(event, SpeechStart):
                    self.recognizer.reset()
                    self._next_partial = event.time + self.recognizer.every_s
                    if self._current is not None and self.guard.barge_in:
                        self._barge_in(event)
                elif isinstance(event, Pause):
                    self._job = self.recognizer.final(event.audio)
                elif isinstance(event, Resume):
                    self._job = None
                    self.speculator.cancel()
                elif isinstance(event, Utterance):
                    self._utterance(event)
            self._overlap()
        self._check_reply()
        if (self.between_turns is not None and self._current is None
                and self._recording is None and not self.endpointer.speaking):
            unprompted = self.between_turns()
            if unprompted is not None:  # spoken as a greeting is: no turn to time
                self._start(unprompted, greeting=True)

    def _overlap(self) -> None:
        """Work done before the turn is over: partial transcripts while the user
        speaks, the speculative prefill once the pause's transcript is ready."""
        ep = self.endpointer
        if self._partials and ep.speaking and self._job is None \
                and self._now >= self._next_partial:
            audio = ep.current_audio()
            if audio is not None and self.recognizer.partial(audio):
                self._next_partial = self._now + self.recognizer.every_s
        job = self._job
        if job is not None and job.done and self._current is None and self.speculator.enabled \
                and not self.speculator.running:
            try:
                text = self._carry + (job.wait(0) or "")
            except Exception:  # the recognizer's error is raised where the turn ends
                return
            if text.strip() and not is_noise(text):
                self.speculator.start(text.strip())

    def _judged(self, audio: Samples) -> float:
        """The end-of-turn model's verdict; a model that fails is dropped for the
        silence rule, with a one-line notice (the turn goes on as if it had said no)."""
        judge = self._judge
        if judge is None:
            return 0.0
        try:
            return judge(audio)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            self._judge = None
            reason = " ".join(str(exc).split())[:160]
            self._say(Notice(f"end of turn by silence only: the turn model failed ({reason})"))
            return 0.0

    def _pause_text(self, audio: Samples) -> str:
        """The transcript of the pause the turn model is judging ("" if not ready in time)."""
        job = self._job
        if job is None or len(job.audio.samples) > len(audio):
            return ""
        return job.wait(0.5) or ""

    def _end_of_input(self) -> None:
        if self.talk is None:
            for event in self.endpointer.flush():
                if isinstance(event, Utterance):
                    self._utterance(event)
        elif self._recording is not None:
            self._release()
        self._check_reply()  # a reply still playing when the device ended is cut in run()

    # -- turns ---------------------------------------------------------------

    def _utterance(self, utterance: Utterance) -> None:
        if self._current is not None:  # they kept talking before she made a sound
            self._interrupt()
        detected, clock = self._now, self._clock()
        job, self._job = self._job, None
        if job is None or len(job.audio.samples) != len(utterance.audio.samples):
            job = self.recognizer.final(utterance.audio)  # not cut at the pause (e.g. too long)
        text = (job.wait() or "").strip()
        transcribed = detected + (self._clock() - clock) * self._speed
        if utterance.truncated:  # they are still talking: keep it for the rest of the turn
            self._carry = f"{self._carry}{text} " if not is_noise(text) else self._carry
            return
        text, self._carry = (self._carry + text).strip(), ""
        self.speculator.settle(text)
        if is_noise(text):
            self._say(Ignored(text, utterance.started))
            return
        try:
            reply = self.companion.say(text)
        except InputError:
            self._say(Ignored(text, utterance.started))
            return
        self._say(Heard(text, utterance.started, utterance.ended, detected, transcribed))
        cur = self._start(reply, greeting=False, anchor=(detected, clock))
        cur.speech_end = utterance.ended
        cur.detected = detected
        cur.transcribed = transcribed

    def _start(
        self,
        reply: Reply[Turn | None],
        *,
        greeting: bool,
        anchor: tuple[float, float] | None = None,
    ) -> _Current:
        stream, clock = anchor or (self._now, self._clock())
        speech = self.speaker.start(reply, self._style())
        self._current = _Current(reply, speech, greeting, stream, clock)
        self._say(ReplyStarted(self._now, greeting))
        return self._current

    def _check_reply(self) -> None:
        cur = self._current
        if cur is None or not cur.speech.done:
            return
        self._current = None
        if cur.speech.error is not None:
            raise cur.speech.error
        turn = cur.reply.result
        self._say(ReplyDone(turn.content if turn else None, False, self._now,
                            turn.id if turn else None))

    def _barge_in(self, start: SpeechStart) -> None:
        self._interrupt(onset=start.time)

    def _interrupt(self, *, onset: float | None = None) -> None:
        """Stop her now and store what she said; ``onset``: the user's speech that cut in."""
        cur = self._current
        assert cur is not None
        self._current = None
        stopped = self._now
        cur.speech.stop()
        spoken = cur.speech.spoken_text()
        turn = self.companion.cut_reply(cur.reply, spoken)
        if onset is not None:
            self._say(BargeIn(onset, stopped, stopped, spoken))
        self._say(ReplyDone(turn.content if turn else None, True, self._now,
                            turn.id if turn else None))

    # -- push-to-talk --------------------------------------------------------

    def _push_to_talk(self, frame: Frame) -> None:
        assert self.talk is not None
        held = self.talk.held(frame.time)
        if held and self._recording is None:
            if self._current is not None:
                self._interrupt(onset=frame.time)
            self._recording = []
            self._recording_start = frame.time
        if held and self._recording is not None:
            self._recording.append(frame.mic)
        elif not held and self._recording is not None:
            self._release()

    def _release(self) -> None:
        assert self._recording is not None
        samples = np.concatenate(self._recording) if self._recording else np.zeros(0, np.float32)
        self._recording = None
        audio = Audio(samples.astype(np.float32, copy=False), self.device.rate)
        self._utterance(Utterance(audio, self._recording_start, self._now))

    # -- helpers -------------------------------------------------------------

    def _persona_style(self) -> SpeechStyle:
        from companion.voice.style import speech_style

        return speech_style(self.companion.persona, self.companion.state)

    def _times(self, cur: _Current) -> TurnTimes:
        def on_stream(clock: float | None) -> float | None:
            if clock is None:
                return None
            return cur.anchor_stream + (clock - cur.anchor_clock) * self._speed

        t = cur.speech.times
        return TurnTimes(
            speech_end=cur.speech_end,
            detected=cur.detected,
            transcribed=cur.transcribed,
            first_token=on_stream(t.first_chunk),
            first_synthesized=on_stream(t.first_synthesized),
            first_queued=on_stream(t.first_queued),
            first_audio=cur.first_audio,
        )

    def _say(self, event: Event) -> None:
        self.events.append(event)
        self._emit(event)
