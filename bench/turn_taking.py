"""End of turn: false cut-offs on pauses inside turns, and how soon a finished turn is heard.

Each sentence is synthesized whole by Piper (so its intonation runs on through
the pause) and a silence of 300-600 ms is inserted at its quietest point
between 35% and 65% of its length (a word boundary): a mid-sentence pause. Two
sentences joined by such a silence make a between-sentence pause. Each clip
(with 0.5 s before and 2 s after) goes through the real Silero VAD and the
:class:`~companion.voice.endpoint.Endpointer`, as fast as it runs; a false
cut-off is a turn reported before the last sentence ended. The end-of-turn
latency is the time from the end of the speech to the turn reported.

    .venv/bin/python bench/turn_taking.py                 # silence 600 ms vs Smart Turn
    .venv/bin/python bench/turn_taking.py --configs silence:600,turn:200:600,turn+text:200:600
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from voicedata import speech  # noqa: E402

from companion.voice.audio import MIC_RATE, Audio  # noqa: E402

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
]
PAUSES_MS = (300, 400, 500, 600)


def mid_gap(samples: np.ndarray) -> int:
    """The quietest 30 ms between 35% and 65% of the clip (a word boundary, mostly)."""
    hop = MIC_RATE // 100
    energy = np.array([float(np.mean(samples[i : i + 3 * hop] ** 2))
                       for i in range(0, len(samples) - 3 * hop, hop)])
    lo, hi = int(len(energy) * 0.35), int(len(energy) * 0.65)
    return (lo + int(np.argmin(energy[lo:hi]))) * hop + hop


def cases() -> list[tuple[str, Audio, float]]:
    """(kind, clip, when the speech ends in the clip)."""
    lead, tail = np.zeros(MIC_RATE // 2, np.float32), np.zeros(2 * MIC_RATE, np.float32)
    out = []
    clips = [speech(s).resampled(MIC_RATE).samples for s in SENTENCES]
    for k, clip in enumerate(clips):
        cut = mid_gap(clip)
        for ms in PAUSES_MS:
            gap = np.zeros(MIC_RATE * ms // 1000, np.float32)
            mid = np.concatenate([lead, clip[:cut], gap, clip[cut:], tail])
            out.append((f"mid {ms}", Audio(mid, MIC_RATE), (len(mid) - len(tail)) / MIC_RATE))
            nxt = clips[(k + 1) % len(clips)]
            two = np.concatenate([lead, clip, gap, nxt, tail])
            out.append((f"between {ms}", Audio(two, MIC_RATE), (len(two) - len(tail)) / MIC_RATE))
    return out


def run(config: str, data: list[tuple[str, Audio, float]]) -> None:
    from companion.voice.endpoint import Endpointer, TurnVerdict, Utterance
    from companion.voice.turn import SmartTurn, TurnModel, WithTranscript
    from companion.voice.vad import SileroVAD

    kind, *ms = config.split(":")
    model: TurnModel | None = SmartTurn() if kind.startswith("turn") else None
    if model is not None and kind == "turn+text":
        from companion.voice.stt import FasterWhisperSTT

        stt = FasterWhisperSTT()
        model = WithTranscript(model, lambda a: stt.transcribe(Audio(a, MIC_RATE)).text)
    if model is None:
        ep = Endpointer(SileroVAD(), end_silence_ms=float(ms[0]))
    else:
        ep = Endpointer(SileroVAD(), turn=model, turn_silence_ms=float(ms[0]),
                        end_silence_ms=float(ms[1]))
    cut: dict[str, list[int]] = {}
    latency: list[float] = []
    model_ms: list[float] = []
    for name, clip, speech_end in data:
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
        cut.setdefault(name.split()[0], []).append(int(any(e < speech_end - 0.25 for e in ends)))
    lat = sorted(latency)
    p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))] if lat else float("nan")
    parts = [f"{k} pauses cut {sum(v)}/{len(v)} ({sum(v) / len(v):.0%})" for k, v in cut.items()]
    extra = f", model p50 {statistics.median(model_ms):.0f} ms" if model_ms else ""
    print(f"{config:<18} {'; '.join(parts)}; end of turn p50 "
          f"{statistics.median(lat) * 1000:.0f} ms p95 {p95 * 1000:.0f} ms{extra}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="silence:600,turn:200:600,turn+text:200:600",
                    help="silence:MS (silence only), or turn:SHORT_MS:FALLBACK_MS (Smart Turn) "
                         "or turn+text:... (overruled by a cut-off transcript), comma-separated")
    args = ap.parse_args()
    data = cases()
    print(f"{len(data)} clips: {len(SENTENCES)} Piper sentences x pauses {PAUSES_MS} ms, "
          "inside a sentence and between two")
    for config in args.configs.split(","):
        run(config, data)


if __name__ == "__main__":
    main()
