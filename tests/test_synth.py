"""Building a synthetic corpus: split rules, resumption, bad input, and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from typer.testing import CliRunner

from clasp_cli.cli import app
from clasp_cli.data.augment import AugmentConfig
from clasp_cli.data.sentences import Sentence
from clasp_cli.data.synth import SynthConfig, build_synthetic_corpus, plan_corpus
from clasp_cli.data.voices import Voice, available_voices, get_voice
from clasp_cli.manifest import read_manifest

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")

# Five espeak-ng voices: quick to run, enough for two held out and three to train on.
VOICES = ["espeak:en-us", "espeak:en-us+f2", "espeak:en+m7", "espeak:en-029+m4", "espeak:en-gb-x-gbclan+f1"]
LIGHT = AugmentConfig(noise_prob=0.5, reverb_prob=0.3, codec_prob=0.0)  # codec is tested in test_augment

NOUNS = ["river", "garden", "market", "library", "harbour", "bridge", "station", "forest", "kitchen", "museum"]


def sentences(n: int, start: int = 0) -> list[Sentence]:
    return [
        Sentence(f"We met near the {NOUNS[i % 10]} on day {i} of the long summer.", "misc",
                 translations={"de": f"Tag {i}"})
        for i in range(start, start + n)
    ]


def config(tmp_path: Path, **kw) -> SynthConfig:
    base = dict(out=tmp_path / "corpus", sentences=sentences(24), multilingual={}, voices=VOICES, jobs=1,
                seed=3, augment=LIGHT)
    base.update(kw)
    return SynthConfig(**base)


def load(out: Path, name: str):
    return read_manifest(out / f"{name}.jsonl")


def test_test_sentences_and_test_voices_never_occur_in_train_or_val(tmp_path):
    ml = {
        "de": [Sentence("Das Wetter ist heute schön.", "misc", "de", {"en": "The weather is nice today."})],
        "fr": [Sentence("Il fait beau aujourd'hui.", "misc", "fr", {"en": "The weather is nice today."})],
    }
    cfg = config(tmp_path, n_utterances=20, test_fraction=0.2, val_fraction=0.1, multilingual=ml,
                 voices=VOICES + ["espeak:de", "espeak:fr-fr"])
    summary = build_synthetic_corpus(cfg)
    out = cfg.out
    train, val, test = load(out, "train"), load(out, "val"), load(out, "test")
    assert (len(train), len(val), len(test)) == (14, 2, 4)
    assert summary.by_split == {"train": 14, "val": 2, "test": 4, "test_multilingual": 2}

    train_voices = {u.voice for u in train + val}
    test_voices = {u.voice for u in test}
    assert test_voices and not (test_voices & train_voices)
    assert set(summary.test_voices) == test_voices == {"espeak:en-029+m4", "espeak:en-gb-x-gbclan+f1"}
    texts = lambda us: {u.text for u in us}  # noqa: E731
    assert not (texts(test) & texts(train + val))
    assert not (texts(val) & texts(train))
    assert {u.split for u in train} == {"train"} and {u.split for u in test} == {"test"}
    assert all(u.translations.get("de") for u in train + val + test)

    ml_utts = load(out, "test_multilingual")
    assert {u.lang for u in ml_utts} == {"de", "fr"}
    assert all(u.translations["en"] == "The weather is nice today." for u in ml_utts)
    assert not ({u.voice for u in ml_utts} & train_voices)

    everything = load(out, "all")
    assert [u.id for u in everything] == [u.id for u in train + val + test]
    for u in everything[:3] + ml_utts:
        info = sf.info(str(u.audio_path(out)))
        assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
        assert abs(info.duration - u.duration) < 0.01


def test_given_test_sentences_are_used_for_test_only(tmp_path):
    held = sentences(3, start=100)
    cfg = config(tmp_path, test_sentences=held + sentences(2), n_utterances=12)
    build_synthetic_corpus(cfg)
    test = load(cfg.out, "test")
    pool = {s.text for s in held + sentences(2)}
    assert test and {u.text for u in test} <= pool
    assert not ({u.text for u in load(cfg.out, "train") + load(cfg.out, "val")} & pool)


def test_a_small_given_test_set_is_topped_up_from_the_pool(tmp_path):
    # The 200 translated sentences alone are too few candidates; the pool fills the split.
    held = sentences(2, start=100)
    plan = plan_corpus(config(tmp_path, test_sentences=held, n_utterances=20, test_fraction=0.3))
    test = [it for it in plan.items if it.group == "test"]
    assert len(test) == 6
    assert {s.text for s in held} <= {it.text for it in test}
    train_val = {it.text for it in plan.items if it.split != "test"}
    assert not (train_val & {it.text for it in test})


def test_default_held_out_voices_cover_each_engine_and_whole_speakers(tmp_path):
    voices = [v for v in available_voices(lang="en")]
    if len({v.engine for v in voices}) < 2:
        pytest.skip("needs a second engine (flite or festival)")
    plan = plan_corpus(config(tmp_path, voices=[v.id for v in voices], n_utterances=50))
    held = {v.id for v in plan.test_voices}
    assert len(held) >= 2
    for engine in {v.engine for v in voices}:
        speakers = {v.speaker_id for v in voices if v.engine == engine}
        if len(speakers) >= 2:
            assert any(v.engine == engine for v in plan.test_voices), engine
    held_speakers = {v.speaker_id for v in plan.test_voices}
    assert not any(v.speaker_id in held_speakers for v in plan.train_voices)
    assert all(it.voice.id in held for it in plan.items if it.split == "test")
    assert not any(it.voice.id in held for it in plan.items if it.split != "test")


def test_same_seed_same_plan_other_seed_other_plan(tmp_path):
    a = plan_corpus(config(tmp_path, n_utterances=15)).items
    b = plan_corpus(config(tmp_path, n_utterances=15)).items
    c = plan_corpus(config(tmp_path, n_utterances=15, seed=4)).items
    assert a == b
    assert [(i.text, i.voice.id, i.rate) for i in a] != [(i.text, i.voice.id, i.rate) for i in c]


def test_excluded_texts_never_reach_train_or_val(tmp_path):
    held = {" ".join(s.text.casefold().split()) for s in sentences(24)[:6]}
    plan = plan_corpus(config(tmp_path, n_utterances=20, exclude=frozenset(held)))
    spoken = {" ".join(i.text.casefold().split()) for i in plan.items if i.split in ("train", "val")}
    assert spoken and not spoken & held
    assert plan.skipped["held out (--exclude)"] > 0


def test_a_corpus_built_in_chunks_ends_as_the_whole_build_and_keeps_each_chunks_audio(tmp_path):
    first = build_synthetic_corpus(config(tmp_path, n_utterances=12, chunk=(1, 2)))
    assert 0 < first.written < 12 and first.resumed == 0
    assert len(load(tmp_path / "corpus", "train")) == first.by_split["train"]  # a chunk's manifests are usable
    last = build_synthetic_corpus(config(tmp_path, n_utterances=12, chunk=(2, 2)))
    assert last.resumed == first.written and last.written == 12
    meta = [json.loads(x) for x in (tmp_path / "corpus" / "meta.jsonl").read_text().splitlines()]
    assert len(meta) == 12
    build_synthetic_corpus(config(tmp_path, n_utterances=12, splits=("train",)))
    assert len((tmp_path / "corpus" / "meta.jsonl").read_text().splitlines()) == 12  # val and test rows kept
    whole = plan_corpus(config(tmp_path, n_utterances=12))
    assert {u.audio for g in ("train", "val", "test") for u in load(tmp_path / "corpus", g)} == {i.audio for i in whole.items}


def test_rerun_repairs_deleted_corrupt_and_half_written_audio(tmp_path):
    cfg = config(tmp_path, n_utterances=10)
    first = build_synthetic_corpus(cfg)
    assert first.synthesized == 10 and first.resumed == 0
    out = cfg.out
    utts = load(out, "train")
    deleted, corrupt = utts[0].audio_path(out), utts[1].audio_path(out)
    deleted.unlink()
    corrupt.write_bytes(corrupt.read_bytes()[: corrupt.stat().st_size // 3])  # half-written
    stray = corrupt.with_name(f".{corrupt.name}.12345.tmp")
    stray.write_bytes(b"partial")
    before = {n: (out / f"{n}.jsonl").read_text() for n in ("train", "val", "test", "all")}

    second = build_synthetic_corpus(cfg)
    assert (second.synthesized, second.resumed, second.written) == (2, 8, 10)
    assert not stray.exists()
    ids = [u.id for u in load(out, "all")]
    assert len(ids) == len(set(ids)) == 10
    files = sorted(p for p in (out / "audio").rglob("*") if p.is_file())
    assert len(files) == 10  # nothing duplicated, no temp files left
    for p in files:
        assert sf.read(str(p))[0].size > 0
    for n, text in before.items():  # same utterances; espeak-ng is deterministic, so same durations
        assert (out / f"{n}.jsonl").read_text() == text


def test_bad_input_is_skipped_and_counted(tmp_path):
    crashy = tmp_path / "crashy-espeak.sh"
    crashy.write_text(
        "#!/bin/sh\n"
        "# espeak-ng that crashes on any text containing CRASH\n"
        'prev=""\n'
        'for a in "$@"; do\n'
        '  if [ "$prev" = "-f" ] && grep -q CRASH "$a"; then echo "boom" >&2; exit 3; fi\n'
        '  prev="$a"\n'
        "done\n"
        'exec espeak-ng "$@"\n'
    )
    crashy.chmod(0o755)
    crash_voice = Voice("test:crashy", "espeak-ng", "en", "en-us+f2", binary=str(crashy))
    good = sentences(6)
    bad = [
        Sentence("", "misc"),
        Sentence("   ", "misc"),
        Sentence("Ceci est une langue que personne ne parle ici.", "misc", lang="xx"),
        Sentence("This sentence will CRASH the engine every time.", "misc"),
    ]
    cfg = config(tmp_path, sentences=good + bad, test_sentences=sentences(2, start=50), val_fraction=0.0,
                 voices=["espeak:en-us", crash_voice], test_voices=["espeak:en-us"])
    summary = build_synthetic_corpus(cfg)
    assert summary.skipped == {"empty text": 2, "no voice for language xx": 1, "engine failed (espeak-ng)": 1}
    assert summary.by_split == {"train": 6, "val": 0, "test": 2}
    assert any("CRASH" not in e and "boom" in e for e in summary.errors)
    assert "CRASH" not in (cfg.out / "train.jsonl").read_text()


def test_parallel_build_matches_the_serial_one(tmp_path):
    serial = config(tmp_path / "a", n_utterances=8)
    parallel = config(tmp_path / "b", n_utterances=8, jobs=2)
    build_synthetic_corpus(serial)
    build_synthetic_corpus(parallel)
    for name in ("train", "val", "test"):
        assert (serial.out / f"{name}.jsonl").read_text() == (parallel.out / f"{name}.jsonl").read_text()


# -- CLI ------------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_synth_help_shows_options_and_examples():
    r = runner.invoke(app, ["dataset", "synth", "--help"], env={"COLUMNS": "120"})
    assert r.exit_code == 0
    for word in ("--out", "--voices", "--snr", "--noise", "--list-voices", "Examples"):
        assert word in r.output


def test_cli_list_voices_json():
    r = runner.invoke(app, ["dataset", "synth", "--list-voices", "--json"])
    assert r.exit_code == 0
    rows = json.loads(r.stdout)
    assert any(row["id"] == "espeak:en-us" and row["available"] for row in rows)


def test_cli_without_out_is_a_one_line_usage_error():
    r = runner.invoke(app, ["dataset", "synth"])
    assert r.exit_code == 2
    assert "--out is required" in r.output and "Traceback" not in r.output


def test_cli_tiny_build(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("\n\n".join(s.text for s in sentences(20)), encoding="utf-8")
    out = tmp_path / "tiny"
    r = runner.invoke(app, ["dataset", "synth", "--out", str(out), "--n", "12", "--text", str(text),
                            "--voices", ",".join(VOICES), "--jobs", "1", "--codec", "0", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["written"] == 12 and sum(summary["by_split"].values()) == 12
    assert len(read_manifest(out / "all.jsonl")) == 12
    assert not (out / "test_multilingual.jsonl").exists()
    assert get_voice(summary["voices"][0]).engine == "espeak-ng"


def test_cli_exclude_reads_manifests_and_text_and_a_bad_chunk_is_a_usage_error(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("\n\n".join(s.text for s in sentences(20)), encoding="utf-8")
    held = tmp_path / "held.jsonl"
    held.write_text(json.dumps({"text": sentences(20)[0].text, "translations": {"de": "x"}}) + "\n", encoding="utf-8")
    out = tmp_path / "tiny"
    r = runner.invoke(app, ["dataset", "synth", "--out", str(out), "--n", "10", "--text", str(text), "--voices", ",".join(VOICES),
                            "--jobs", "1", "--codec", "0", "--exclude", str(held), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["skipped"]["held out (--exclude)"] == 1
    bad = runner.invoke(app, ["dataset", "synth", "--out", str(out), "--text", str(text), "--chunk", "3/2"])
    assert bad.exit_code == 2 and "--chunk" in bad.output
    missing = runner.invoke(app, ["dataset", "synth", "--out", str(out), "--text", str(text), "--exclude", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "nope.jsonl" in missing.output


def test_babble_noise_comes_from_a_bank_of_training_voices(tmp_path):
    cfg = config(tmp_path, n_utterances=6, augment=AugmentConfig(noise="babble", noise_prob=1.0, snr_db=(10, 10),
                                                                   reverb_prob=0.0, codec_prob=0.0))
    build_synthetic_corpus(cfg)
    bank = sorted((cfg.out / "noise").glob("babble-*.flac"))
    assert len(bank) >= 4
    meta = [json.loads(line) for line in (cfg.out / "meta.jsonl").read_text().splitlines()]
    assert len(meta) == 6 and all(m["augment"] == "babble noise 10.0 dB" for m in meta)


def test_opus_format_writes_small_ogg_files_that_decode_at_16k(tmp_path):
    cfg = config(tmp_path, n_utterances=4, audio_format="opus")
    summary = build_synthetic_corpus(cfg)
    assert summary.audio_format == "opus" and summary.written == 4
    for u in load(cfg.out, "all"):
        assert u.audio.endswith(".ogg")
        info = sf.info(str(u.audio_path(cfg.out)))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "OPUS")
    assert build_synthetic_corpus(cfg).resumed == 4  # and a rerun finds them whole
