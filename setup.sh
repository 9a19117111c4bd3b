#!/usr/bin/env bash
# Set up companion on this machine: a virtual environment in .venv with the
# Python packages (torch pinned to the CPU build), ready to run `companion`.
#
#   ./setup.sh          what the chat and voice need
#   ./setup.sh --dev    and the test tools (pytest, hypothesis, ruff, mypy)
#
# Voice also needs two system libraries, espeak-ng (the pyttsx3 voice) and
# PortAudio (the microphone and speaker); they are installed with apt-get when
# this runs as root (or with passwordless sudo) and are missing.
#
# Safe to run again: it only installs what changed. Model weights are fetched
# by the first `companion chat` (with progress), not here.
set -euo pipefail
cd "$(dirname "$0")"

extras="llm,serve,voice,encrypt"
for arg in "$@"; do
  case "$arg" in
    --dev) extras="llm,serve,voice,encrypt,dev" ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '[setup] %s\n' "$*" >&2; }

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  say "companion needs Python 3.11 or newer (found: $("$python" --version 2>&1 || echo none))."
  say "Set PYTHON=/path/to/python3.11 and run again."
  exit 1
fi

# System libraries for voice (skipped when present, or when apt cannot be used).
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng libespeak-ng1)
ldconfig -p 2>/dev/null | grep -q libportaudio.so || missing+=(libportaudio2)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$sudo" ] || sudo -n true 2>/dev/null; }; then
    say "installing ${missing[*]} for voice (apt-get)"
    $sudo apt-get update -qq >/dev/null || say "apt-get update failed; trying the install anyway"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
      || say "could not install ${missing[*]}: voice will use Piper only, or say what is missing"
  else
    say "voice wants ${missing[*]}: install them with your package manager (text chat works without)"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  say "creating the virtual environment in .venv"
  "$python" -m venv .venv
fi

# Skip the pip work when nothing it depends on changed since the last run.
stamp=".venv/.setup-$(cat pyproject.toml setup.sh | sha256sum | cut -c1-16)-${extras//,/-}"
if [ -f "$stamp" ]; then
  say "up to date"
  exit 0
fi

# torch first, pinned: `torch==2.13.0` is the CPU build on this project's
# machines, and an existing 2.13.0 build (a CUDA one, say) satisfies the pin.
# An open range would pull gigabytes of CUDA packages instead.
say "installing torch 2.13.0 (CPU build unless a GPU build is already installed)"
.venv/bin/python -m pip install --disable-pip-version-check "torch==2.13.0"
say "installing companion and its dependencies ($extras)"
.venv/bin/python -m pip install --disable-pip-version-check -e ".[$extras]"
# Smart Turn v3.2, the end-of-turn model of `companion voice`: its CPU ONNX file
# (8 MB, BSD-2) ships inside the pipecat-ai wheel; only that file is taken (its
# SHA-256 checked), none of pipecat's dependencies. Without it, voice ends a
# turn on silence alone.
turn_dir="$(mktemp -d)"
if .venv/bin/python -m pip download --disable-pip-version-check --no-deps -q \
     "pipecat-ai==1.14.0" -d "$turn_dir" \
   && .venv/bin/python -m companion.voice.turn install "$turn_dir"/pipecat_ai-1.14.0-*.whl; then
  say "installed the Smart Turn end-of-turn model"
else
  say "could not install Smart Turn: voice will end turns on silence alone"
fi
rm -rf "$turn_dir"
rm -f .venv/.setup-*
touch "$stamp"
say "done. Start chatting with: .venv/bin/companion chat"
