"""The passes of bench/voice_latency.py: one chat model, the live voice loop, three tests.

Each pass plays synthesized speech through
:class:`~companion.voice.devices.VirtualDevice` in real time (the microphone's
code path) into a :class:`~companion.voice.loop.VoiceLoop` with the real Silero
VAD, Whisper tiny.en, Smart Turn and her Piper voice, on a fresh companion
(temporary home, greedy), and reads the figures off the device's placed times
and the loop's events:

- :func:`latency_pass`: conversational utterances; each turn's stage times
  (speech end -> end of turn detected -> transcript -> first token -> first
  sentence synthesized -> first sample out) and the recognizer's word error rate.
- :func:`cutoff_pass`: sentences with a mid-sentence pause of 300, 450 and
  600 ms (built as bench/turn_taking.py builds them); a false cut-off is a turn
  the loop ended before the sentence's last speech.
- :func:`barge_in_pass`: with her echo in the microphone, the user asks, then
  talks over her reply (:class:`~companion.voice.devices.OverReply`); barge-in
  time is from the user's first sound to her playback stopping; a false
  barge-in is one decided while only her echo was in the microphone (her
  replies to what was said over her play to the end with no user speech).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from turn_taking import PAUSES_MS, paused, spoken
from voicedata import Engine, speech

from companion.voice.audio import MIC_RATE, Audio
from companion.voice.base import SpeechStyle
from companion.voice.devices import OverReply, VirtualDevice
from companion.voice.loop import BargeIn, Event, FirstAudio, Heard, Ignored, Notice, ReplyDone

UTTERANCES = [
    "Hi Samantha, my name is Theo.",
    "I had a long day at work today.",
    "Do you like music?",
    "My sister lives in Boston and she is a nurse.",
    "What should I cook for dinner tonight?",
    "I went for a walk by the ocean this morning.",
    "Tell me something that made you laugh.",
    "I'm a bit nervous about tomorrow.",
    "Do you remember where my sister lives?",
    "Thank you, that really helps.",
]
#: The barge-in pass: a question that asks for a long answer, then words said over it.
QUESTIONS = [
    "Tell me about a place you would love to visit one day.",
    "What do you think makes someone a really good friend?",
    "Can you describe your idea of a perfect weekend?",
    "What kind of music do you like, and why?",
    "Tell me a little story about the sea.",
    "How do you like to spend a rainy afternoon?",
    "What would you cook for a dinner party with friends?",
    "Tell me what you know about Boston.",
]
INTERRUPTIONS = [
    "Wait, what about the weekend?",
    "Sorry, can I ask something else?",
    "Hold on, say that again.",
    "Actually, never mind that.",
    "No, I meant my sister.",
    "Wait, stop for a second.",
    "Hmm, what do you mean by that?",
    "Oh, that reminds me of something.",
]
STAGES = ("end of turn", "STT", "first token", "1st sentence synth", "first audio out")


@dataclass(frozen=True)
class Voice:
    """The loop's parts that do not depend on the chat model (loaded once)."""

    stt: Any
    tts: Any
    turn: Any


@dataclass
class Run:
    """One live run of the loop: its events and the speculator's counts."""

    events: list[Event]
    device: VirtualDevice
    speculation: bool
    hits: int
    misses: int

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def live(llm: Any, voice: Voice, device: VirtualDevice, *, max_tokens: int) -> Run:
    """Run the voice loop on ``device`` with ``llm`` (a fresh companion, greedy) to the end."""
    from companion import Companion
    from companion.cli.voice import voice_decoding
    from companion.voice.loop import VoiceLoop
    from companion.voice.vad import load_vad

    with tempfile.TemporaryDirectory(prefix="voice-bench-") as home, \
            Companion.open(user="theo", model=llm, home=home, temperature=0.0,
                           max_tokens=max_tokens) as c:
        voice_decoding(llm, c.config)
        loop = VoiceLoop(c, device, voice.stt, voice.tts, load_vad(), turn=voice.turn)
        try:
            loop.run(greet=False)
        finally:
            device.close()
        spec = loop.speculator
        spec.wait()
        return Run(loop.events, device, spec.enabled, spec.hits, spec.misses)


# -- latency -------------------------------------------------------------------


@dataclass
class Latency:
    engine: str
    rows: list[list[float]]  # per turn: the stage times, then the total (ms)
    wer: float
    run: Run


def latency_pass(llm: Any, voice: Voice, engine: str, *, turns: int, max_tokens: int,
                 verbose: bool = False) -> Latency:
    """Stage times of ``turns`` utterances said by ``engine`` (piper or espeak through pyttsx3)."""
    from companion.voice.tts import load_tts
    from companion.voice.wer import corpus_wer

    maker = load_tts("piper" if engine == "piper" else "pyttsx3")
    said = UTTERANCES[:turns]
    clips = [maker.synthesize(text, SpeechStyle(rate=165)) for text in said]
    device = VirtualDevice(clips, gaps_s=1.0, speed=1.0, tail_s=1.0)
    run = live(llm, voice, device, max_tokens=max_tokens)
    heard = [e.text for e in run.of(Heard)]
    pairs = list(zip(said[: len(heard)], heard, strict=False))
    if verbose:
        for ref, hyp in pairs:
            print(f"  said {ref!r}\n  heard {hyp!r}")
    rows: list[list[float]] = []
    for e in run.of(FirstAudio):
        t = e.times
        if t is None:
            continue
        marks = [t.speech_end, t.detected, t.transcribed, t.first_token,
                 t.first_synthesized, t.first_audio]
        if any(m is None for m in marks):
            continue
        rows.append([(b - a) * 1000 for a, b in zip(marks, marks[1:], strict=False)]
                    + [(marks[-1] - marks[0]) * 1000])
    return Latency(engine, rows, corpus_wer(pairs) if pairs else float("nan"), run)


# -- false cut-offs ------------------------------------------------------------------


@dataclass
class Cutoffs:
    cut: dict[int, list[bool]]  # pause ms -> per sentence: ended before its last speech
    unheard: int  # sentences the loop reported no turn for
    run: Run

    @property
    def total(self) -> tuple[int, int]:
        flags = [c for cs in self.cut.values() for c in cs]
        return sum(flags), len(flags)


def _inside(t: float, span: tuple[float, float], before: float = 0.5) -> bool:
    return span[0] - before <= t < span[1]


def cutoff_pass(llm: Any, voice: Voice, *, sentences: Sequence[str], max_tokens: int,
                engine: str = "piper") -> Cutoffs:
    """Each sentence said with a mid-sentence pause of each length in PAUSES_MS, one turn
    each. A cut-off: a turn reported that ended more than 0.25 s before the sentence's
    last speech (as bench/turn_taking.py counts them), or two turns out of one sentence."""
    plan = [(ms, paused(spoken(s, engine), ms)) for s in sentences for ms in PAUSES_MS]
    clips = [Audio(x, MIC_RATE) for _, x in plan]
    device = VirtualDevice(clips, gaps_s=1.0, speed=1.0, tail_s=1.0, reply_timeout_s=8.0)
    run = live(llm, voice, device, max_tokens=max_tokens)
    turns = [(e.started, e.ended) for e in run.of(Heard)]
    turns += [(e.started, None) for e in run.of(Ignored)]
    out = Cutoffs({ms: [] for ms in PAUSES_MS}, 0, run)
    for (ms, _), span in zip(plan, device.placed, strict=True):
        mine = [end for start, end in turns if _inside(start, span)]
        out.unheard += not mine
        early = any(end is not None and end < span[1] - 0.25 for end in mine)
        out.cut[ms].append(early or len(mine) > 1)
    return out


# -- barge-in --------------------------------------------------------------------


@dataclass
class BargeIns:
    after_s: float
    run: Run
    ms: list[float] = field(default_factory=list)  # user's first sound -> playback stopped
    late: int = 0  # she had finished before the user spoke over her: nothing to stop
    missed: int = 0  # she was speaking and did not stop
    false: int = 0  # barge-ins with only her echo in the microphone
    echo_turns: int = 0  # turns heard with no user speech in them (her echo taken for words)
    heard_out: int = 0  # her replies played to the end with echo and nobody over them
    heard_out_s: float = 0.0  # how long they played, first sound to end (s)
    notices: list[str] = field(default_factory=list)  # the echo guard's (e.g. half-duplex)
    #: Each false barge-in: when, the end of what she had said, what was heard then.
    false_notes: list[str] = field(default_factory=list)


def sound_onset(x: np.ndarray, level: float = 0.02) -> float:
    """Seconds to the clip's first sample louder than ``level``."""
    return float(np.flatnonzero(np.abs(x) > level)[0] / MIC_RATE)


def barge_in_pass(llm: Any, voice: Voice, *, rounds: int, after_s: float, max_tokens: int,
                  echo_gain: float = 0.3, echo_delay_ms: float = 40.0,
                  engine: Engine = "espeak") -> BargeIns:
    """``rounds`` questions, each cut into ``after_s`` after her reply starts, with her
    echo in the microphone (a small room: ``echo_delay_ms``, 30 ms of reflections)."""
    inputs: list[Audio | OverReply] = []
    over: list[np.ndarray] = []
    for q, cut in zip(QUESTIONS[:rounds], INTERRUPTIONS[:rounds], strict=True):
        inputs.append(speech(q, engine).resampled(MIC_RATE))
        said = speech(cut, engine).resampled(MIC_RATE)
        inputs.append(OverReply(after_s, said))
        over.append(said.samples)
    device = VirtualDevice(inputs, gaps_s=1.0, speed=1.0, tail_s=1.0, reply_timeout_s=8.0,
                           echo_gain=echo_gain, echo_delay_ms=echo_delay_ms,
                           echo_decay_ms=30.0, noise=0.0005)
    run = live(llm, voice, device, max_tokens=max_tokens)
    out = BargeIns(after_s, run, notices=[e.text for e in run.of(Notice)])
    spans = device.placed
    done = [(e.time, e.interrupted) for e in run.of(ReplyDone)]
    for k, clip in enumerate(over):
        asked, (start, end) = spans[2 * k][1], spans[2 * k + 1]
        onset = start + sound_onset(clip)
        stops = [t for t in device.stops if onset - 0.05 <= t <= end + 0.5]
        if stops:
            out.ms.append((stops[0] - onset) * 1000)
        elif any(asked <= t <= onset and not cut for t, cut in done):
            out.late += 1  # her reply to the question ended before they spoke
        else:
            out.missed += 1
    users = [(s - 0.1, e + 0.3) for s, e in spans]
    heard = [(e.started, e.text) for e in run.of(Heard)] + [
        (e.started, f"(ignored) {e.text}") for e in run.of(Ignored)]
    for b in run.of(BargeIn):
        if not any(_inside(b.onset, u, 0.0) for u in users):
            then = [text for t, text in heard if abs(t - b.onset) < 0.5]
            out.false_notes.append(f"{b.onset:.1f} s: she had said ...{b.spoken[-40:]!r}; "
                                   f"heard {then}")
    out.false = len(out.false_notes)
    out.echo_turns = sum(not any(_inside(t, u, 0.0) for u in users) for t, _ in heard)
    first = 0.0
    for e in run.events:
        if isinstance(e, FirstAudio):
            first = e.time
        elif isinstance(e, ReplyDone) and not e.interrupted and first < e.time \
                and not any(s < e.time and first < t for s, t in spans):
            out.heard_out += 1
            out.heard_out_s += e.time - first
    return out
