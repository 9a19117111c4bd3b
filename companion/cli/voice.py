"""``companion voice``: talk aloud. And ``companion chat --speak``: replies read aloud.

``companion voice`` runs :class:`~companion.voice.loop.VoiceLoop` on the sound
card, or, with ``--input-wav``, on a virtual device fed from WAV files (same
code path), printing the conversation as it goes. With ``--output-dir`` the
microphone and speaker tracks and a ``transcript.jsonl`` of the loop's events
are written there. Without an audio device it says so in one line (exit 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import queue
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from companion.cli.options import config_from_args
from companion.config import Config
from companion.errors import AudioError, CompanionError, StoreLockedError

if TYPE_CHECKING:
    from companion.agenda.model import Notice
    from companion.dialog import Companion
    from companion.reply import Finished, Reply
    from companion.types import Turn
    from companion.voice.base import AudioDevice
    from companion.voice.loop import Event
    from companion.voice.speaker import Speaker, Speech


def add_voice_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    voice = sub.add_parser("voice", help="talk aloud (microphone and speaker, or WAV files)")
    add_common(voice)
    voice.add_argument("--input-wav", nargs="+", metavar="FILE", dest="input_wav",
                       help="WAV files to use as the microphone, one utterance each "
                            "(no sound card needed)")
    voice.add_argument("--output-dir", metavar="DIR", dest="output_dir",
                       help="write mic.wav, speaker.wav (with --input-wav) and transcript.jsonl")
    voice.add_argument("--save-audio", metavar="DIR", dest="save_audio",
                       help="write each reply as a WAV file")
    voice.add_argument("--tts", choices=("auto", "piper", "pyttsx3", "null"),
                       help="speech engine (default: the config's tts)")
    voice.add_argument("--push-to-talk", action="store_true", dest="push_to_talk",
                       help="press Enter to talk and Enter again to stop (no voice detection)")
    voice.add_argument("--end-of-turn", choices=("model", "fast", "silence"), default="model",
                       dest="end_of_turn",
                       help="model: Smart Turn and the transcript end a turn at 600 ms of "
                            "silence, 800 ms when in doubt (silence 600 ms when the model is "
                            "not installed); fast: also asked at 200 ms; silence: 600 ms")
    voice.add_argument("--half-duplex", action="store_true", dest="half_duplex",
                       help="ignore the microphone while she speaks (no barge-in)")
    voice.add_argument("--no-greeting", action="store_true", help="do not open with a greeting")
    voice.add_argument("--speed", type=float, default=1.0,
                       help="with --input-wav: run this many times faster than real time")
    voice.add_argument("--temperature", type=float)
    voice.add_argument("--max-tokens", type=int, dest="max_tokens")
    voice.add_argument("--seed", type=int)
    voice.add_argument("--threads", type=int,
                       help="CPU threads for generation (default: all for reading the prompt, "
                            "one for writing the reply while speech is synthesized)")


#: Threads for speech recognition: one. Recognition starts at the first 64 ms of
#: silence on a window fitted to the speech (0.1-0.2 s) and is done before the
#: turn is; the other core reads the prompt meanwhile (speculation).
STT_THREADS = 1


def voice_config(config: Config) -> Config:
    """llama.cpp generates on one thread unless the user chose: its two threads
    sharing a core with recognition and synthesis make every token slower
    (bench/generation.py --baseline --busy 1). The torch backend keeps its
    threads for the prefill (recognition is over by then) and decodes on one
    thread while synthesis runs: see :func:`voice_decoding`."""
    if config.threads is None and config.model.startswith("llamacpp:"):
        return config.with_overrides(threads=1)
    return config


def voice_decoding(llm: object, config: Config) -> None:
    """Decode token by token on one thread while speech is synthesized beside it."""
    if config.threads is None and hasattr(llm, "decode_threads"):
        llm.decode_threads = 1


def run_voice(args: argparse.Namespace) -> int:
    from companion.dialog import Companion
    from companion.voice.loop import VoiceLoop
    from companion.voice.stt import load_stt
    from companion.voice.talk import EnterToTalk, ScheduledTalk, TalkKey
    from companion.voice.tts import load_tts
    from companion.voice.turn import load_turn_model
    from companion.voice.vad import load_vad

    config = voice_config(config_from_args(args))
    if args.speed <= 0:
        raise AudioError("--speed must be more than 0")
    device = _open_device(args)
    out_dir = Path(args.output_dir) if args.output_dir else None
    log: TextIO | None = None
    try:
        tts = load_tts(args.tts or config.tts)
        stt = load_stt(config.stt, threads=STT_THREADS)
        vad = load_vad()
        turn = None
        if args.end_of_turn != "silence" and not args.push_to_talk:
            turn, why = load_turn_model()
            if why:
                print(f"({why})", file=sys.stderr, flush=True)

        def progress(message: str) -> None:
            print(message, file=sys.stderr, flush=True)

        companion = Companion.open(config=config, progress=progress)
        voice_decoding(companion.llm, config)
        try:
            talk: TalkKey | None = None
            if args.push_to_talk and args.input_wav:
                placed = device.placed  # type: ignore[attr-defined]
                talk = ScheduledTalk(lambda: placed, before=0.1, after=0.4)
            elif args.push_to_talk:
                print("(push-to-talk: press Enter to talk, Enter again to stop)", file=sys.stderr)
                talk = EnterToTalk()
            if out_dir is not None:
                out_dir.mkdir(parents=True, exist_ok=True)
                log = (out_dir / "transcript.jsonl").open("w", encoding="utf-8")
            show = _printer(companion, sys.stdout, sys.stderr, log)
            loop = VoiceLoop(companion, device, stt, tts, vad, push_to_talk=talk,
                             half_duplex=args.half_duplex, on_event=show,
                             save_dir=args.save_audio, between_turns=agenda_voice(companion),
                             turn=turn, end_of_turn=args.end_of_turn)
            if not args.input_wav and not args.push_to_talk:
                print("(listening: speak when you like; Ctrl-C to stop)", file=sys.stderr)
            try:
                loop.run(greet=not args.no_greeting)
            except KeyboardInterrupt:  # what she had said is stored by run()
                print(file=sys.stderr)
            return 0
        finally:
            try:
                companion.close()
            except CompanionError as exc:
                print(f"companion: warning: {exc}", file=sys.stderr)
    except OSError as exc:
        raise AudioError(f"cannot write to {out_dir}: {exc}") from exc
    finally:
        device.close()
        if log is not None:
            log.close()


def agenda_voice(
    companion: Companion, *, interval: float = 0.5, clock: Callable[[], float] = time.monotonic,
) -> Callable[[], Reply[Turn | None] | None]:
    """The agenda's notices as replies she speaks between turns (and the loop
    prints): the session's briefing first, then what is due, asked every
    ``interval`` seconds. A notice is stored as her turn once it was said."""
    from companion.reply import Reply

    poller = companion.poller()
    queued: list[Notice] = []
    opened = False
    asked = -math.inf  # when last asked

    def next_notice() -> Reply[Turn | None] | None:
        nonlocal opened, asked
        now = clock()
        if not queued and now - asked >= interval:
            asked = now
            try:
                if not opened:
                    opened = True
                    queued.extend(poller.opening())
                queued.extend(poller.due_notices())
            except StoreLockedError:
                pass  # another process is writing: asked again in a moment
            except CompanionError as exc:
                asked = math.inf  # said once, not every half second
                print(f"(the agenda could not be checked: {exc})", file=sys.stderr, flush=True)
        if not queued:
            return None
        notice = queued.pop(0)

        def said(_done: Finished) -> Turn | None:
            turns = poller.delivered([notice])
            return turns[0] if turns else None

        return Reply(iter([notice.text]), said)

    return next_notice


def _open_device(args: argparse.Namespace) -> AudioDevice:
    from companion.voice.audio import Audio, read_wav
    from companion.voice.devices import VirtualDevice
    from companion.voice.soundcard import open_microphone

    if not args.input_wav:
        return open_microphone()
    clips = [read_wav(path) for path in args.input_wav]
    if not args.no_greeting:
        # The device lets each clip after the first wait for her answer to the one
        # before: a moment of silence first makes the first utterance wait for the greeting.
        clips.insert(0, Audio.silence(0.05))
    return VirtualDevice(clips, output_dir=args.output_dir, speed=args.speed)


def _printer(
    companion: Companion, out: TextIO, err: TextIO, log: TextIO | None
) -> Callable[[Event], None]:
    from companion.voice.loop import Heard, Notice, ReplyDone

    def show(event: Event) -> None:
        if isinstance(event, Heard):
            print(f"you: {event.text}", file=out, flush=True)
        elif isinstance(event, ReplyDone) and event.text:
            mark = " [interrupted]" if event.interrupted else ""
            print(f"{companion.persona.name}: {event.text}{mark}", file=out, flush=True)
        elif isinstance(event, Notice):
            print(f"({event.text})", file=err, flush=True)
        if log is not None:
            log.write(json.dumps(event_record(event)) + "\n")
            log.flush()

    return show


def event_record(event: Event) -> dict[str, Any]:
    """An event as a JSON-ready dict: ``{"event": "heard", ...its fields}``."""
    name = "".join("_" + c.lower() if c.isupper() else c for c in type(event).__name__)
    record: dict[str, Any] = {"event": name.lstrip("_")}
    record.update(dataclasses.asdict(event))
    return record


# -- companion chat --speak ------------------------------------------------------


def open_chat_voice(config: Config, save_audio: str | None, err: TextIO) -> Speaker | None:
    """The speaker for ``chat --speak``; with no sound card or speech engine, one
    notice and None (or, with ``save_audio``, a speaker that only writes WAVs)."""
    from companion.voice.speaker import NoSpeaker, Speaker
    from companion.voice.tts import load_tts

    try:
        tts = load_tts(config.tts)
    except AudioError as exc:
        print(f"(not speaking: {exc})", file=err)
        return None
    device: AudioDevice
    try:
        from companion.voice.soundcard import open_microphone

        device = open_microphone()
    except AudioError as exc:
        reason = str(exc).split(";")[0]
        if save_audio is None:
            print(f"(not speaking: {reason})", file=err)
            return None
        print(f"(not speaking aloud: {reason}; replies are saved in {save_audio})", file=err)
        device = NoSpeaker()
    return Speaker(device, tts, save_dir=save_audio)


class SpokenReply:
    """A reply read aloud while the chat prints it (``chat --speak``).

    The text flows one way: the chat pulls the reply on its own thread, prints
    each piece and hands it on with :meth:`say`; the speaker's threads only cut
    it into sentences and speak them, in the persona's voice and mood.
    """

    def __init__(self, speaker: Speaker, companion: Companion) -> None:
        from companion.voice.style import speech_style

        self._chunks: queue.Queue[str | None] = queue.Queue()
        style = speech_style(companion.persona, companion.state)
        self.speech: Speech = speaker.start(self._handed(), style)

    def _handed(self) -> Iterator[str]:
        while (chunk := self._chunks.get()) is not None:
            yield chunk

    def say(self, chunk: str) -> None:
        """Speak ``chunk`` after what was handed on before (returns at once)."""
        self._chunks.put(chunk)

    def end(self) -> None:
        """The text is complete: the rest is spoken while the chat goes on. Raises
        what went wrong in synthesis, if anything did."""
        self._chunks.put(None)
        while not self.speech.wait_text(0.1):  # short waits: Ctrl-C stays responsive
            pass
        if self.speech.error is not None:
            raise self.speech.error

    def stop(self) -> None:
        """Fall silent now (Ctrl-C during the reply)."""
        self._chunks.put(None)
        self.speech.stop()
