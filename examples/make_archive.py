"""Regenerate examples/archive/: eight short recordings on different topics, in four formats,
spoken by four offline voices (espeak-ng and flite). The texts are the project's own.

    .venv/bin/python examples/make_archive.py        # needs espeak-ng and flite (make demo installs them)
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

HERE = Path(__file__).parent
OUT = HERE / "archive"
RATE = 16_000

# (file name, voice, paragraph). Sentences are separated by pauses, as in real speech.
RECORDINGS = [
    ("radio/weather-forecast.mp3", "espeak:en-us+m3", [
        "Good morning, here is the weather forecast for the weekend.",
        "Saturday starts cloudy, with heavy rain moving in from the coast by the afternoon.",
        "Strong winds are expected along the harbour, so sailors should stay ashore.",
        "On Sunday the sky clears and temperatures climb to twenty two degrees.",
    ]),
    ("meetings/council-budget.wav", "flite:slt", [
        "The city council met on Tuesday evening to vote on next year's budget.",
        "Most of the new money will go to the public library and to repairing school roofs.",
        "Two members argued that the bus network needed more funding instead.",
        "The budget passed by seven votes to four.",
    ]),
    ("radio/football-report.ogg", "espeak:en-gb+f3", [
        "In tonight's football, the home team came back from two goals down.",
        "Their young striker scored twice in the last ten minutes.",
        "The match finished three all after a dramatic penalty was saved.",
        "The coach said he was proud of the players' spirit.",
    ]),
    ("lectures/astronomy.flac", "flite:awb", [
        "Today's lecture is about how stars are born inside clouds of gas and dust.",
        "Gravity pulls the gas together until the core becomes hot enough for fusion.",
        "Our sun formed this way about four and a half billion years ago.",
        "Next week we will talk about black holes.",
    ]),
    ("voice-notes/recipe.mp3", "flite:rms", [
        "Note to self, the tomato soup recipe from grandmother.",
        "Fry two onions slowly in olive oil until they are soft and sweet.",
        "Add a kilo of ripe tomatoes, a little sugar and a handful of fresh basil.",
        "Let it simmer for forty minutes, then blend it smooth.",
    ]),
    ("interviews/doctor-sleep.ogg", "espeak:en-us+f2", [
        "My guest today is a doctor who studies sleep.",
        "She says most adults need between seven and nine hours of sleep every night.",
        "Looking at phone screens late in the evening makes it harder to fall asleep.",
        "A regular bedtime is the simplest habit that helps.",
    ]),
    ("voice-notes/directions.wav", "espeak:en-us+m3", [
        "Directions to the new office.",
        "Leave the train at the central station and take the north exit.",
        "Walk past the bakery and turn left at the second traffic light.",
        "The office is on the third floor above the bank.",
    ]),
    ("meetings/product-launch.flac", "flite:slt", [
        "Let's review the launch plan for the new phone app.",
        "The beta test found a bug that drains the battery when the map is open.",
        "Engineering will fix it before the release date in March.",
        "Marketing wants a short video for the website.",
    ]),
]


def speak(voice: str, text: str) -> np.ndarray:
    engine, name = voice.split(":", 1)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        if engine == "espeak":
            subprocess.run(["espeak-ng", "-v", name, "-s", "160", "-w", str(wav), text], check=True, capture_output=True)
        else:
            subprocess.run(["flite", "-voice", name, "-t", text, "-o", str(wav)], check=True, capture_output=True)
        x, sr = sf.read(wav, dtype="float32")
    return soxr.resample(x, sr, RATE).astype(np.float32)


def main() -> None:
    rng = np.random.default_rng(0)
    index = []
    for name, voice, sentences in RECORDINGS:
        parts = [np.zeros(int(0.5 * RATE), np.float32)]
        for s in sentences:
            parts += [speak(voice, s), np.zeros(int(rng.uniform(0.6, 1.0) * RATE), np.float32)]
        x = np.concatenate(parts)
        x = 0.8 * x / max(1e-6, np.abs(x).max())
        path = OUT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS"), ".mp3": ("MP3", "MPEG_LAYER_III")}[path.suffix]
        sf.write(path, x, RATE, format=fmt[0], subtype=fmt[1])
        index.append({"path": name, "voice": voice, "seconds": round(x.size / RATE, 1), "text": " ".join(sentences)})
    (HERE / "archive.json").write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"{len(index)} recordings, {sum(r['seconds'] for r in index):.0f} s of audio, {total / 2**20:.2f} MB")


if __name__ == "__main__":
    main()
