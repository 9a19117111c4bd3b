"""The virtual device's barge-in input: a clip placed a set time into her reply.

(The rest of the device is tested with the listening side in test_voice_listen.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from companion.voice.audio import MIC_RATE, Audio
from companion.voice.devices import OverReply, VirtualDevice

BLOCK = 512 / MIC_RATE


def tone(seconds: float, freq: float = 440.0) -> Audio:
    t = np.arange(round(seconds * MIC_RATE)) / MIC_RATE
    return Audio((0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), MIC_RATE)


def test_an_over_reply_input_starts_that_long_after_her_reply_begins() -> None:
    dev = VirtualDevice([tone(0.3), OverReply(0.5, tone(0.2, freq=300)), tone(0.2)],
                        gaps_s=0.4, lead_in_s=0.1, tail_s=0.3, speed=float("inf"))
    began = None
    last_played = 0.0
    for f in dev.frames():
        if not dev.plays and f.time >= 0.9:  # she answers the first input late, at ~0.9 s
            dev.play(tone(2.0, freq=880))
        if f.played.any():
            began = f.time if began is None else began
            last_played = f.time
        if len(dev.placed) == 2 and not dev.stops:  # the user cut in: she stops
            dev.stop_playback()
        if dev.stops and len(dev.plays) == 1 and f.time >= dev.placed[1][1] + 0.2:
            dev.play(tone(0.3))  # and answers what they said
    assert began is not None and began == pytest.approx(0.9, abs=2 * BLOCK)
    (_, e1), (s2, e2), (s3, _) = dev.placed
    assert e1 < began
    assert s2 == pytest.approx(began + 0.5, abs=BLOCK)  # over her reply, 0.5 s in
    assert e2 == pytest.approx(s2 + 0.2, abs=1e-6)
    # the next plain input waits for her answer to the one over it, then the gap
    answer_end = last_played + BLOCK
    assert s3 == pytest.approx(answer_end + 0.4, abs=BLOCK)


def test_an_over_reply_input_without_a_reply_starts_after_the_timeout() -> None:
    dev = VirtualDevice([tone(0.3), OverReply(0.5, tone(0.2))], lead_in_s=0.1, tail_s=0.1,
                        reply_timeout_s=1.0, speed=float("inf"))
    list(dev.frames())
    (_, e1), (s2, _) = dev.placed
    assert s2 == pytest.approx(e1 + 1.0 + 0.5, abs=BLOCK)
