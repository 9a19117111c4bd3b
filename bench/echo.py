"""Echo handling compared: WebRTC's AEC3 against the built-in NLMS canceller.

Both run inside :class:`~companion.voice.echo.EchoGuard` (canceller, then the
double-talk gate) on the same simulated rooms, with real speech: her voice is
Piper reading a reply (about 14 s), the user is espeak-ng (another voice),
both cached by tests/voicedata.py. Each room is heard twice: her echo alone,
and with the user talking over her 6 s in (converged), or 1 s in (early barge-in).

The voice loop's decisions are replayed on the guard's output: the
:class:`~companion.voice.endpoint.Endpointer` with Silero VAD (as ``companion
voice`` runs it); a speech start while she plays is a barge-in.

Columns:

- ERLE: echo return loss enhancement in steady echo (her alone, after 3 s), dB,
  measured on the canceller's output before the gate (higher is better);
  ERLE 1st s: the same over her first second (before it converged).
- echo in DT: what is left of her echo during double talk, relative to the echo
  (dB, lower is better): the canceller's output minus its best fit to the user.
- user SDR: the user's speech in what the listener gets, against the clean
  user (signal-to-distortion ratio, dB, higher is better); WER: Whisper tiny.en
  on it (the clean clip: ``--wer``'s first line).
- false: barge-ins with only her echo in the microphone (must be 0);
  barge-in: ms from the user's first sound to the decision.
- CPU: milliseconds of one core per second of audio, echo handling only.

    flock /tmp/cpu.lock .venv/bin/python bench/echo.py            # the table
    .venv/bin/python bench/echo.py --aec webrtc --rooms 100ms --no-wer
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from echo_rooms import ROOMS, USER, R, measure, voices  # noqa: E402

from companion.voice.audio import Audio, Samples  # noqa: E402
from companion.voice.echo import Aec  # noqa: E402


def _fmt(x: float | None, spec: str = ".0f") -> str:
    if x is None or np.isnan(x):
        return "—"
    return format(x, spec) if np.isfinite(x) else ("∞" if x > 0 else "-∞")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--aec", default="auto,webrtc,nlms",
                        help="cancellers, comma-separated: auto, webrtc, webrtc+ns, nlms")
    parser.add_argument("--rooms", default="", help="names (substrings) of the rooms to run")
    parser.add_argument("--no-wer", action="store_true", help="skip Whisper on the double talk")
    args = parser.parse_args()
    her, user = voices()
    wer_of = None
    if not args.no_wer:
        from companion.voice.stt import load_stt
        from companion.voice.wer import wer

        stt = load_stt("faster-whisper")

        def wer_of(x: Samples) -> float:
            return wer(USER, stt.transcribe(Audio(x.astype(np.float32), R)).text)

        print(f"clean user clip: WER {wer_of(user):.2f}")
    rooms = [r for r in ROOMS if not args.rooms or any(s in r.name for s in args.rooms.split(","))]
    print("| room | canceller | ERLE dB | ERLE 1st s | echo in DT dB | user SDR dB | WER "
          "| false barge-ins | barge-in ms | CPU ms/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for room in rooms:
        for name in args.aec.split(","):
            aec: Aec = "auto" if name == "auto" else "nlms" if name == "nlms" else "webrtc"
            row = measure(aec, room, her, user, wer_of=wer_of, ns=name.endswith("+ns"))
            cells = [room.name, name, _fmt(row.erle, ".1f"), _fmt(row.erle_first, ".1f"),
                     _fmt(row.echo_dt, ".1f"), _fmt(row.sdr, ".1f"), _fmt(row.wer, ".2f"),
                     str(row.false), _fmt(row.barge_ms), f"{row.cpu_ms:.1f}"]
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
