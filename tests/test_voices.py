"""The offline voice registry and the engines behind it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from clasp_cli.audio import load_audio
from clasp_cli.data.voices import (
    ENGINES,
    OPT_IN_ENGINES,
    SynthesisError,
    Voice,
    VoiceUnavailableError,
    all_voices,
    available_voices,
    get_voice,
    resolve_voices,
    voice_table,
)
from clasp_cli.errors import ClaspError, UsageError

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")

TEXT = "The committee agreed to postpone the vote until Friday."


def test_voice_table_reports_every_voice_with_its_availability():
    rows = voice_table()
    assert len(rows) == len(all_voices()) >= 20
    assert {r["engine"] for r in rows} == set(ENGINES)
    assert len({r["id"] for r in rows}) == len(rows)  # ids are unique
    for r in rows:
        assert isinstance(r["available"], bool)
        assert r["available"] == (r["reason"] == "")
    listed = {r["id"] for r in rows if r["available"]}
    assert listed == {v.id for v in available_voices()}


@needs_espeak
def test_espeak_voices_are_available_when_espeak_ng_is_installed():
    ids = {v.id for v in available_voices(engine="espeak-ng")}
    assert {"espeak:en-us", "espeak:en-us+f2", "espeak:de", "espeak:fr-fr", "espeak:es"} <= ids
    assert len(available_voices(lang="en", engine="espeak-ng")) >= 8


def test_voice_whose_program_is_missing_is_unavailable_with_a_hint():
    v = Voice("test:missing", "espeak-ng", "en", "en-us", binary="/nonexistent/espeak-ng")
    assert not v.available()
    assert "not found" in v.why_unavailable()
    with pytest.raises(VoiceUnavailableError):
        v.render(TEXT)


@needs_espeak
def test_espeak_synthesizes_a_decodable_16k_mono_wav(tmp_path):
    out = tmp_path / "x.wav"
    duration = get_voice("espeak:en-us+f2").synthesize(TEXT, out, rate=1.1, pitch=1.05)
    info = sf.info(str(out))
    assert (info.samplerate, info.channels) == (16000, 1)
    assert info.frames > 16000  # more than a second of speech
    assert abs(info.duration - duration) < 1e-3
    audio = load_audio(out)
    assert audio.dtype == np.float32 and np.abs(audio).max() > 0.05


def test_crashing_engine_raises_a_typed_error_with_a_short_reason():
    v = Voice("test:false", "espeak-ng", "en", "en-us", binary="false")
    with pytest.raises(SynthesisError) as e:
        v.render(TEXT)
    assert isinstance(e.value, ClaspError)
    assert e.value.kind == "failed"
    assert "exited with status 1" in str(e.value) and "test:false" in str(e.value)


def test_engine_that_writes_nothing_raises_no_audio():
    v = Voice("test:true", "espeak-ng", "en", "en-us", binary="true")
    with pytest.raises(SynthesisError) as e:
        v.render(TEXT)
    assert e.value.kind == "no audio"


def test_hanging_engine_is_killed_after_its_timeout(tmp_path):
    script = tmp_path / "hang.sh"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    v = Voice("test:hang", "espeak-ng", "en", "en-us", binary=str(script), timeout=0.5)
    with pytest.raises(SynthesisError) as e:
        v.render(TEXT)
    assert e.value.kind == "timeout"  # left alone, the engine would have ended by itself with no audio


def test_empty_text_is_a_synthesis_error():
    with pytest.raises(SynthesisError) as e:
        get_voice("espeak:en-us").render("   ")
    assert e.value.kind == "empty text"


@needs_espeak
def test_rate_changes_the_duration():
    v = get_voice("espeak:en-us")
    slow, fast = v.render(TEXT, rate=0.8), v.render(TEXT, rate=1.25)
    assert fast.size < 0.8 * slow.size


@needs_flite
def test_pitch_by_resampling_keeps_the_tempo():
    v = get_voice("flite:slt")
    base, high = v.render(TEXT, pitch=1.0), v.render(TEXT, pitch=1.08)
    assert abs(high.size / base.size - 1) < 0.06


def test_unknown_voice_id_is_a_usage_error_with_suggestions():
    with pytest.raises(UsageError, match="did you mean"):
        get_voice("espeak:en-us+f22")


@needs_espeak
def test_resolve_voices_takes_engine_names_and_ids():
    picked = resolve_voices("espeak-ng,espeak:en-us")
    assert picked and all(v.engine == "espeak-ng" for v in picked)
    assert len(picked) == len({v.id for v in picked})  # no duplicates
    assert resolve_voices("all") == [v for v in available_voices() if v.engine not in OPT_IN_ENGINES]


def test_all_leaves_kokoro_out_and_kokoro_by_name_selects_its_voices(monkeypatch):
    # As if every engine were installed: "all" must still mean the classic engines, so a corpus
    # built before Kokoro was installed comes out the same after.
    monkeypatch.setattr(Voice, "why_unavailable", lambda self: None)
    every = resolve_voices("all")
    assert every and not any(v.engine == "kokoro" for v in every)
    kokoro = resolve_voices("kokoro")
    assert len(kokoro) >= 30 and all(v.engine == "kokoro" for v in kokoro)
    assert {v.lang for v in kokoro} == {"en", "es", "fr", "it", "pt", "ja"}
    assert len({v.speaker_id for v in kokoro}) == len(kokoro)  # each voice its own speaker, held out alone


def test_kokoro_voice_without_its_tensor_is_unavailable_with_the_install_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("CLASP_KOKORO_VOICES", str(tmp_path))
    v = get_voice("kokoro:af_heart")
    why = v.why_unavailable()
    assert why and "clasp[kokoro]" in why
    with pytest.raises(VoiceUnavailableError):
        v.render(TEXT)


def test_kokoro_speaks_16k_audio_below_full_scale():
    v = get_voice("kokoro:bf_emma")
    if v.why_unavailable():
        pytest.skip(v.why_unavailable())
    audio = v.render(TEXT)
    assert 2.0 < audio.size / 16000 < 8.0
    assert float(np.max(np.abs(audio))) <= 0.96


@needs_espeak
def test_mandarin_is_spoken_from_pinyin():
    pytest.importorskip("pypinyin")
    audio = get_voice("espeak:cmn-latn-pinyin").render("今天天气很好。")
    assert 0.5 < audio.size / 16000 < 4  # six syllables, not "Chinese letter" six times
