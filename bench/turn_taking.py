"""End of turn: false cut-offs on pauses inside turns, and how soon a finished turn is heard.

Twenty-four sentences, spoken by Piper (a natural voice) and espeak-ng (a
robotic one), trimmed of the synthesizer's own leading and trailing silence.
A mid-sentence pause: the quiet stretch at the word boundary nearest the
sentence's quietest point between 35% and 65% of its length is replaced by
exactly 300, 450 or 600 ms of silence. A between-sentence pause joins two
sentences the same way. Each clip (0.5 s before, 1.2 s after) goes through the
real Silero VAD and the :class:`~companion.voice.endpoint.Endpointer`, as fast
as it runs, with Smart Turn and (as the voice loop does) Whisper's transcript of
the turn so far. A false cut-off is a turn reported before the last sentence
ended; the end-of-turn latency is from the end of the speech to the turn
reported (frame-exact, model time excluded; the model's own time is printed).

    .venv/bin/python bench/turn_taking.py        # before (silence, raw Smart Turn) and plans
    .venv/bin/python bench/turn_taking.py --configs silence:600,model --voices piper

Configs: ``silence:MS``; a plan of companion.voice.turn.TURN_PLANS by name
(``model``, ``fast``: Smart Turn with the transcript's consent); or
``raw:MS@P+MS@P:FALLBACK_MS`` (Smart Turn alone, checks at MS of silence ending
the turn at probability P: ``raw:200@0.5:600`` was the first design), or
``plan:MS@P+MS@P:FALLBACK_MS`` (the same with the transcript's consent, as a
plan has it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from voicedata import speech  # noqa: E402

from companion.voice.audio import MIC_RATE, Audio, Samples  # noqa: E402

SENTENCES = [
    "I was thinking about going to the market tomorrow morning with my sister.",
    "The movie we watched last night was much better than I expected it to be.",
    "My neighbor has a big brown dog that barks at every car going by.",
    "When I finish work today I would like to cook something really simple.",
    "I have been reading a book about the history of the ocean and its creatures.",
    "Could you help me decide what to buy for my mother on her birthday?",
    "Yesterday I walked all the way to the old bridge and back again.",
    "I think I need to call my friend because we have not talked in weeks.",
    "The weather has been so cold that I stayed inside the whole weekend.",
    "Do you know a good way to fall asleep when my mind keeps racing?",
    "My brother is moving to a small town near the mountains next month.",
    "I tried to learn the guitar last year but I gave up after a few weeks.",
    "Hi Samantha, my name is Theo.",
    "My sister lives in Boston and she is a nurse.",
    "I went for a walk by the ocean this morning.",
    "Honestly, I am not sure what I want to do after I graduate next spring.",
    "We could go to the lake on Saturday if the weather stays nice.",
    "I keep forgetting to water the plants on my balcony every evening.",
    "Last summer my family rented a small cabin by a quiet river.",
    "Sometimes I wonder whether I should have studied music instead of law.",
    "The train was late again this morning, so I missed the first meeting.",
    "What do you usually do when you cannot stop worrying about something?",
    "My grandmother taught me how to bake bread when I was a little kid.",
    "I would really like to visit Japan in the spring to see the cherry blossoms.",
]
PAUSES_MS = (300, 450, 600)
_HOP = MIC_RATE // 100  # 10 ms


def _rms(x: Samples) -> np.ndarray:
    n = len(x) // _HOP
    return np.sqrt(np.mean(x[: n * _HOP].reshape(n, _HOP) ** 2, axis=1))


def trimmed(x: Samples) -> Samples:
    """The clip without its leading and trailing silence (below -40 dB of its peak)."""
    e = _rms(x)
    on = np.nonzero(e > 0.01 * e.max())[0]
    return x[on[0] * _HOP : (on[-1] + 1) * _HOP]


def mid_gap(x: Samples) -> tuple[int, int]:
    """The quiet stretch around the quietest 30 ms between 35% and 65% of the clip."""
    e = _rms(x)
    smooth = np.convolve(e, np.ones(3) / 3, mode="same")
    lo, hi = int(len(e) * 0.35), int(len(e) * 0.65)
    i = j = lo + int(np.argmin(smooth[lo:hi]))
    floor = 0.01 * e.max()
    while i > 0 and e[i - 1] < floor:
        i -= 1
    while j < len(e) - 1 and e[j] < floor:
        j += 1
    return i * _HOP, j * _HOP


def spoken(sentence: str, voice: str) -> Samples:
    """``sentence`` said by ``voice`` (16 kHz), without the synthesizer's silence around it."""
    return trimmed(speech(sentence, voice).resampled(MIC_RATE).samples)  # type: ignore[arg-type]


def silence(ms: int) -> Samples:
    return np.zeros(MIC_RATE * ms // 1000, np.float32)


def paused(clip: Samples, ms: int) -> Samples:
    """``clip`` with its mid-sentence pause (:func:`mid_gap`) made exactly ``ms`` long."""
    a, b = mid_gap(clip)
    return np.concatenate([clip[:a], silence(ms), clip[b:]])


Case = tuple[str, str, int, Audio, float]  # voice, kind, pause ms, clip, speech end (s)


def cases(voices: list[str]) -> list[Case]:
    lead = silence(500)
    tail = silence(1200)
    out: list[Case] = []
    for voice in voices:
        clips = [spoken(s, voice) for s in SENTENCES]
        for k, clip in enumerate(clips):
            whole = np.concatenate([lead, clip, tail])
            end = (len(whole) - len(tail)) / MIC_RATE
            out.append((voice, "end", 0, Audio(whole, MIC_RATE), end))
            for ms in PAUSES_MS:
                for kind, parts in (("mid", [paused(clip, ms)]),
                                    ("between", [clip, silence(ms), clips[(k + 1) % len(clips)]])):
                    x = np.concatenate([lead, *parts, tail])
                    end = (len(x) - len(tail)) / MIC_RATE
                    out.append((voice, kind, ms, Audio(x, MIC_RATE), end))
    return out


class Cached:
    """A turn model or recognizer whose answers are kept per (clip, samples heard)."""

    def __init__(self, fn: Callable[[Samples], object]) -> None:
        self.fn = fn
        self.clip = 0
        self.memo: dict[tuple[int, int], object] = {}

    def __call__(self, audio: Samples) -> object:
        key = (self.clip, len(audio))
        if key not in self.memo:
            self.memo[key] = self.fn(audio)
        return self.memo[key]


def run(config: str, data: list[Case], model: Cached, text: Cached) -> None:
    from companion.voice.endpoint import Endpointer, TurnVerdict, Utterance
    from companion.voice.turn import TURN_PLANS, TurnModel, WithTranscript
    from companion.voice.vad import SileroVAD

    kind, _, spec = config.partition(":")
    judge: TurnModel | None = None
    if kind == "silence":
        checks: tuple[tuple[float, float], ...] = ()
        fallback = float(spec)
    elif kind in ("raw", "plan"):
        marks, _, fb = spec.rpartition(":")
        checks = tuple((float(m.split("@")[0]), float(m.split("@")[1])) for m in marks.split("+"))
        fallback = float(fb)
        judge = model if kind == "raw" else WithTranscript(model, text)  # type: ignore[arg-type,assignment]
    else:
        plan = TURN_PLANS[kind]
        checks, fallback = plan.checks, plan.fallback_ms
        judge = WithTranscript(model, text)  # type: ignore[arg-type]
    ep = Endpointer(SileroVAD(), turn=judge if checks else None, turn_checks=checks,
                    end_silence_ms=fallback)
    cut: dict[tuple[str, str], list[int]] = {}
    latency: list[float] = []
    model_ms: list[float] = []
    for n, (voice, what, _ms, clip, speech_end) in enumerate(data):
        model.clip = text.clip = n
        ep.reset()
        ends: list[float] = []
        for i in range(0, len(clip.samples), 512):
            for e in ep.push(clip.samples[i : i + 512]):
                if isinstance(e, TurnVerdict):
                    model_ms.append(e.seconds * 1000)
                elif isinstance(e, Utterance):
                    ends.append(e.ended)
                    if e.ended >= speech_end - 0.25:  # the real end: reported now
                        latency.append((i + 512) / MIC_RATE - speech_end)
        early = int(any(e < speech_end - 0.25 for e in ends))
        cut.setdefault((voice, what), []).append(early)
        cut.setdefault(("all", what), []).append(early)
    lat = sorted(latency)
    p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))] if lat else float("nan")
    parts = [f"{v} {w} {sum(c)}/{len(c)}" for (v, w), c in sorted(cut.items())
             if w != "end" and v != "all"]
    mid = cut[("all", "mid")]
    extra = f"; model p50 {statistics.median(model_ms):.0f} ms (cached: ~0)" if model_ms else ""
    rate = f"{sum(mid)}/{len(mid)} ({sum(mid) / len(mid):.1%})"
    print(f"{config:<18} mid-sentence pauses cut {rate}; "
          f"end of turn p50 {statistics.median(lat) * 1000:.0f} ms p95 {p95 * 1000:.0f} ms "
          f"({len(lat)} ends){extra}\n    " + ", ".join(parts), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--configs", default="silence:600,silence:700,raw:200@0.5:600,fast,model")
    ap.add_argument("--voices", default="piper,espeak")
    args = ap.parse_args()
    from companion.voice.stt import FasterWhisperSTT
    from companion.voice.turn import SmartTurn

    data = cases(args.voices.split(","))
    print(f"{len(data)} clips: {len(SENTENCES)} sentences x {args.voices} x pauses {PAUSES_MS} ms "
          "inside a sentence and between two, and each sentence alone")
    smart = SmartTurn()
    stt = FasterWhisperSTT(threads=1)
    model = Cached(smart)
    text = Cached(lambda a: stt.transcribe(Audio(a, MIC_RATE)).text)
    for config in args.configs.split(","):
        run(config.strip(), data, model, text)


if __name__ == "__main__":
    main()
