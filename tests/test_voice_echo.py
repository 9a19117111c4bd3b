"""Echo handling: the NLMS canceller and WebRTC's AEC3 through the same simulated rooms.

Real speech (Piper for her, espeak-ng for the user, see :mod:`echo_rooms`); the
voice loop's barge-in decisions are replayed on the guard's output. The figures
these thresholds come from are in bench/echo.py's table (README).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from echo_rooms import ROOMS, Room, Row, measure, voices

from companion.errors import AudioError
from companion.voice.audio import Samples
from companion.voice.base import Frame
from companion.voice.canceller import BLOCK
from companion.voice.echo import Aec, EchoGuard
from companion.voice.webrtc_aec import WebRtcCanceller, webrtc_available

needs_webrtc = pytest.mark.skipif(not webrtc_available(), reason="pywebrtc-audio not installed")
R = 16000


def room(name: str) -> Room:
    return next(r for r in ROOMS if r.name.startswith(name))


@pytest.fixture(scope="module")
def speech() -> tuple[Samples, Samples]:
    return voices()


_rows: dict[tuple[str, str], Row] = {}


def row(aec: Aec, name: str, speech: tuple[Samples, Samples]) -> Row:
    if (aec, name) not in _rows:
        _rows[aec, name] = measure(aec, room(name), *speech)
    return _rows[aec, name]


@needs_webrtc
def test_webrtc_canceller_output_lags_by_its_latency_and_takes_whole_blocks() -> None:
    c = WebRtcCanceller(R, block=BLOCK)
    x = np.random.default_rng(3).normal(0.0, 0.05, 40 * BLOCK).astype(np.float32)
    silent = np.zeros(BLOCK, dtype=np.float32)
    out = np.concatenate([c.cancel(x[i:i + BLOCK], silent) for i in range(0, len(x), BLOCK)])
    # With nothing played, AEC3 passes the microphone on (high-passed), late by `latency`.
    tail = slice(len(x) // 2, len(x) - c.latency)
    corr = np.corrcoef(out[tail.start + c.latency:tail.stop + c.latency], x[tail])[0, 1]
    assert corr > 0.95 and 0 < c.latency < 0.03 * R
    with pytest.raises(ValueError, match="blocks of 256"):
        c.cancel(x[:100], x[:100])


def test_without_the_library_auto_keeps_nlms_and_webrtc_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pywebrtc_audio", None)
    assert not webrtc_available()
    with pytest.raises(AudioError, match="pip install"):
        WebRtcCanceller(R, block=BLOCK)
    guard = EchoGuard(R, aec="webrtc")
    assert guard.aec == "nlms"
    assert "pywebrtc-audio is not installed" in guard.notice and "\n" not in guard.notice
    auto = EchoGuard(R)
    assert auto.aec == "nlms" and auto.notice == ""
    with pytest.raises(ValueError, match="unknown echo canceller"):
        EchoGuard(R, aec="speex")  # type: ignore[arg-type]


@needs_webrtc
def test_stream_times_account_for_the_latency() -> None:
    guard = EchoGuard(R, aec="webrtc")
    tone = (0.1 * np.sin(np.arange(512) / 5)).astype(np.float32)
    quiet = np.zeros(512, dtype=np.float32)
    starts = [guard.process(Frame(tone, quiet, i * 512 / R), False)[1] for i in range(4)]
    assert guard.latency > 0
    # Contiguous blocks, the first one's time moved back by the canceller's latency.
    assert starts[1] == pytest.approx(-guard.latency / R)
    assert np.diff(starts[1:]) == pytest.approx(512 / R)


@pytest.mark.parametrize("aec", [pytest.param("webrtc", marks=needs_webrtc), "nlms"])
@pytest.mark.parametrize("name", ["40 ms", "200 ms", "loud echo"])
def test_linear_rooms_cancel_and_let_the_user_barge_in(
    aec: Aec, name: str, speech: tuple[Samples, Samples]
) -> None:
    r = row(aec, name, speech)
    assert r.false == 0
    assert r.erle >= 25.0
    assert r.barge_ms is not None and r.barge_ms <= 300
    assert r.sdr >= 4.0  # the user, as the recognizer gets them, over what is left


@needs_webrtc
def test_webrtc_converges_at_once_and_nlms_is_faster_to_let_the_user_in(
    speech: tuple[Samples, Samples],
) -> None:
    web, nlms = row("webrtc", "40 ms", speech), row("nlms", "40 ms", speech)
    assert web.erle > nlms.erle + 8 and web.erle_first > 25 > 10 > nlms.erle_first
    # AEC3's suppressor holds back the first ~100 ms of the user over her.
    assert nlms.barge_ms is not None and web.barge_ms is not None
    assert nlms.barge_ms <= 200 < web.barge_ms
    assert nlms.echo_dt < web.echo_dt - 10


@pytest.mark.parametrize("aec", [pytest.param("webrtc", marks=needs_webrtc), "nlms"])
def test_headphones_pass_the_user_at_once(aec: Aec, speech: tuple[Samples, Samples]) -> None:
    r = row(aec, "headphones", speech)
    assert r.false == 0 and r.barge_ms is not None and r.barge_ms <= 200 and r.sdr > 30


@needs_webrtc
@pytest.mark.parametrize("name", ["distorting speaker", "drift 100-130"])
def test_where_nlms_gives_up_webrtc_keeps_full_duplex(
    name: str, speech: tuple[Samples, Samples]
) -> None:
    nlms, web = row("nlms", name, speech), row("webrtc", name, speech)
    assert nlms.barge_ms is None  # half-duplex: she cannot be interrupted
    assert web.barge_ms is not None and web.barge_ms <= 350
    assert web.erle > nlms.erle + 5


def test_nlms_hears_a_quiet_user_over_loud_echo(speech: tuple[Samples, Samples]) -> None:
    r = row("nlms", "quiet user", speech)
    assert r.false == 0 and r.barge_ms is not None


@needs_webrtc
def test_auto_switches_to_webrtc_instead_of_half_duplex(speech: tuple[Samples, Samples]) -> None:
    her, _ = speech
    from echo_rooms import NOISE, echo_of, run

    noise = np.random.default_rng(7).normal(0.0, NOISE, len(her)).astype(np.float32)
    hard = room("distorting speaker")
    r = run("auto", her, lambda played: echo_of(played, hard) + noise)
    assert r.guard.aec == "webrtc" and not r.guard.half_duplex and r.starts == []
    assert "switching to WebRTC echo cancellation" in r.guard.notice
    echo = echo_of(her, hard)
    late = slice(len(her) - 4 * R, len(her))
    assert np.sum(echo[late] ** 2) > 1000 * np.sum(r.residual[late] ** 2)  # > 30 dB
    easy = run("auto", her, lambda played: echo_of(played, room("40 ms")) + noise)
    assert easy.guard.aec == "nlms" and easy.guard.notice == ""
