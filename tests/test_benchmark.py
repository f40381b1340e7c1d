"""`clasp benchmark`: grouped metrics, cost counting, noise, and one tiny real run of CLASP vs Whisper."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from typer.testing import CliRunner

from clasp_cli.benchmark import (
    BenchmarkResult,
    SystemResult,
    translation_rows,
    ct2_param_count,
    grouped_scores,
    noisy_wave,
    npz_param_count,
    safetensors_param_count,
)
from clasp_cli.cli import app
from clasp_cli.manifest import Utterance
from clasp_cli.metrics import scores_from_ranks

runner = CliRunner()

# (English text, German translation, domain, espeak voice)
SENTENCES = [
    ("Tomorrow will be sunny in the morning with light rain in the evening.", "Morgen wird es vormittags sonnig, am Abend regnet es leicht.", "weather", "en"),
    ("The council approved the budget for the new public library on Tuesday.", "Der Rat hat am Dienstag das Budget für die neue Bibliothek genehmigt.", "news", "en-us"),
    ("The football match ended in a draw after a long period of extra time.", "Das Fußballspiel endete nach langer Verlängerung unentschieden.", "sport", "en"),
    ("Remember to water the tomato plants in the garden every second day.", "Denk daran, die Tomaten im Garten jeden zweiten Tag zu gießen.", "home", "en-us"),
    ("The train to the airport leaves from platform seven at half past nine.", "Der Zug zum Flughafen fährt um halb zehn von Gleis sieben ab.", "travel", "en"),
    ("Our doctor recommends walking for thirty minutes every single day.", "Unser Arzt empfiehlt, jeden Tag dreißig Minuten spazieren zu gehen.", "health", "en-us"),
    ("The museum will open a new exhibition about ancient Egyptian art.", "Das Museum eröffnet eine neue Ausstellung über altägyptische Kunst.", "news", "en"),
    ("Please send me the quarterly sales report before Friday afternoon.", "Bitte schick mir den Quartalsbericht vor Freitagnachmittag.", "work", "en-us"),
]
GERMAN = [
    ("Der Hund schläft den ganzen Nachmittag auf dem Sofa.", "The dog sleeps on the sofa all afternoon."),
    ("Wir fahren im Sommer mit dem Fahrrad an die Ostsee.", "In summer we cycle to the Baltic Sea."),
    ("Das Konzert beginnt heute Abend um acht Uhr.", "The concert starts tonight at eight o'clock."),
]
FIXED_KEYS = ["name", "kind", "hits@1", "hits@5", "hits@10", "mrr", "meanr", "throughput_x_realtime", "params", "disk_mb", "by_query_lang"]


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# -- pieces ------------------------------------------------------------------------------------------


def test_grouped_scores_are_computed_from_full_set_ranks():
    r = np.array([1, 3, 2, 1, 10])
    got = grouped_scores(r, ["a", "a", "b", "", "b"])
    assert set(got) == {"a", "b"}  # the unlabelled query belongs to no group
    assert got["a"]["n"] == 2 and got["a"]["hits@1"] == 0.5
    assert got["a"]["mrr"] == pytest.approx((1 + 1 / 3) / 2) and got["a"]["meanr"] == 2.0
    assert got["b"]["hits@1"] == 0.0 and got["b"]["hits@5"] == 0.5 and got["b"]["hits@10"] == 1.0
    assert got["b"]["mrr"] == pytest.approx((1 / 2 + 1 / 10) / 2) and got["b"]["meanr"] == 6.0


def test_translated_queries_cover_the_utterances_that_have_them():
    us = [Utterance("1", "a.wav", "x", translations={"de": "x", "fr": "y"}), Utterance("2", "b.wav", "z", translations={"de": "w"}),
          Utterance("3", "c.wav", "v", translations={"fr": " "})]
    assert translation_rows(us) == {"de": [0, 1], "fr": [0]}


def test_ct2_param_count_reads_the_variable_table(tmp_path):
    def s(x: str) -> bytes:
        return struct.pack("<H", len(x) + 1) + x.encode() + b"\0"

    def var(name: str, shape: tuple[int, ...], itemsize: int = 4) -> bytes:
        n = int(np.prod(shape)) * itemsize
        return s(name) + struct.pack("<B", len(shape)) + b"".join(struct.pack("<I", d) for d in shape) + struct.pack("<BI", 0, n) + b"\0" * n

    body = struct.pack("<I", 6) + s("WhisperSpec") + struct.pack("<II", 3, 3)
    body += var("encoder/w", (2, 3)) + var("encoder/w_scale", (2,)) + var("decoder/w", (4,)) + struct.pack("<I", 0)
    (tmp_path / "model.bin").write_bytes(body)
    assert ct2_param_count(tmp_path / "model.bin") == 10
    assert ct2_param_count(tmp_path / "model.bin", "encoder/") == 6


def test_safetensors_and_npz_param_counts(tmp_path):
    from safetensors.numpy import save_file

    save_file({"a": np.zeros((3, 4), np.float32), "b": np.zeros(5, np.float32)}, str(tmp_path / "m.safetensors"))
    np.savez(tmp_path / "w.npz", x=np.zeros((2, 5)), y=np.zeros(7))
    assert safetensors_param_count(tmp_path / "m.safetensors") == 17
    assert npz_param_count(tmp_path / "w.npz") == 17


def test_noisy_copies_are_reproducible_and_at_the_asked_snr():
    rng = np.random.default_rng(1)
    pool = {i: rng.standard_normal(8000).astype(np.float32) for i in range(3)}
    x = np.sin(np.arange(16000) / 10).astype(np.float32)
    for kind in ("white", "babble"):
        a = noisy_wave(x, 0, 0, 1, kind, 5.0, 0, pool)
        assert np.array_equal(a, noisy_wave(x, 0, 0, 1, kind, 5.0, 0, pool))
        snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((a - x).astype(np.float64) ** 2))
        assert snr == pytest.approx(5.0, abs=0.05)


def test_tables_show_machine_and_every_system(tmp_path):
    from clasp_cli.cli.benchmark import _print_tables
    from clasp_cli.cli.common import out
    from clasp_cli.report import tables

    def system(label, kind, r):
        r = np.asarray(r)
        cost = {"throughput_x_realtime": 50.0, "params": 1_000_000, "disk_mb": 3.0, "params_source": "test", "params_parts": {},
                "latency_ms_p50": 10.0, "latency_ms_p95": 20.0, "peak_rss_mb": 100.0, "load_s": 1.0, "encode_s": 1.0, "audio_s": 50.0}
        return SystemResult(label.lower(), kind, "m", scores_from_ranks(r).as_dict(), r, cost, label=label)

    res = BenchmarkResult(3, [system("CLASP", "clasp", [1, 2, 3]), system("Whisper ASR", "asr", [1, 1, 1])],
                          {"cpu": "Test CPU 9000", "cores": 2, "ram_gb": 4.0, "device": "cpu", "versions": {"torch": "9.9"}}, [], [], 1.0)
    assert [t.key for t in tables(res)] == ["retrieval", "cost"]
    with out.capture() as cap:
        _print_tables(res)
    text = cap.get()
    assert "Test CPU 9000" in text and "torch 9.9" in text and "Whisper ASR" in text and "0.611" in text  # CLASP MRR


def test_no_usable_audio_is_one_line_error(tmp_path, model_dir):
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"id": "a", "audio": "gone.wav", "text": "hello"}) + "\n")
    r = runner.invoke(app, ["benchmark", "-m", str(m), "--model", str(model_dir), "--device", "cpu"])
    assert r.exit_code == 2 and "usable utterance" in r.output and "Traceback" not in r.output


def test_an_unknown_asr_reader_is_a_usage_error(tmp_path, model_dir):
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"id": "a", "audio": "gone.wav", "text": "hello"}) + "\n")
    r = runner.invoke(app, ["benchmark", "-m", str(m), "--model", str(model_dir), "--device", "cpu", "--asr-reader", "slow"])
    assert r.exit_code == 2 and "--asr-reader" in r.output and "batched" in r.output


@pytest.mark.parametrize("reader", ["chunks", "batched", "faster-whisper"])
def test_every_asr_reader_hears_the_sentence(reader, say, tmp_path, model_dir):
    from clasp_cli.audio import load_audio
    from clasp_cli.benchmark import WhisperASRSystem

    wave = load_audio(say("The committee approved the budget for the new library on Tuesday.", tmp_path / "s.wav"))
    system = WhisperASRSystem("whisper-tiny.en", str(model_dir), "cpu", reader=reader)
    e = system.encode([wave], ["en"])
    assert e.shape == (1, 512) and {"committee", "budget", "tuesday"} <= set(system.last_transcripts[0].lower().replace(".", "").split())


def test_ctc_system_decodes_greedily_into_the_text_space(tmp_path, model_dir):
    """A tiny random wav2vec2 CTC model saved as safetensors: the real Hugging Face loading path, offline."""
    import torch
    from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC,
                              Wav2Vec2Processor)

    from clasp_cli.benchmark import CTCASRSystem

    vocab = {"<pad>": 0, "|": 1, "<unk>": 2, **{c: i + 3 for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ'")}}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    tok = Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|")
    Wav2Vec2Processor(feature_extractor=Wav2Vec2FeatureExtractor(do_normalize=True), tokenizer=tok).save_pretrained(tmp_path)
    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16,) * 7,
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, vocab_size=len(vocab), pad_token_id=0)
    torch.manual_seed(0)
    Wav2Vec2ForCTC(cfg).save_pretrained(tmp_path, safe_serialization=True)

    system = CTCASRSystem(str(tmp_path), str(model_dir), "cpu")
    e = system.encode([np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1, np.zeros(300, np.float32)])
    assert system.kind == "asr" and e.shape == (2, 512) and np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert len(system.last_transcripts) == 2 and all(t == t.lower() for t in system.last_transcripts)
    ctc_part, text_part = system.parts()
    assert ctc_part.params == sum(p.numel() for p in system.ctc.parameters()) and text_part.name == "use-multilingual"


# -- one tiny real run ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory, say, model_dir):
    """8 espeak-ng utterances (+1 missing file) and 3 German ones, benchmarked once through the CLI."""
    d = tmp_path_factory.mktemp("bench")
    rows = []
    for i, (text, de, domain, voice) in enumerate(SENTENCES):
        say(text, d / f"u{i}.wav", voice=voice)
        tr = {"de": de, **({"fr": "seulement quelques-unes"} if i < 3 else {})}  # fr is not on every utterance
        rows.append({"id": f"u{i}", "audio": f"u{i}.wav", "text": text, "voice": voice, "domain": domain, "translations": tr})
    rows.append({"id": "lost", "audio": "lost.wav", "text": "This file was never written."})
    (d / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ml = []
    for i, (text, en) in enumerate(GERMAN):
        say(text, d / f"de{i}.wav", voice="de")
        ml.append({"id": f"de{i}", "audio": f"de{i}.wav", "text": text, "lang": "de", "voice": "de", "translations": {"en": en}})
    (d / "de.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ml))
    r = runner.invoke(app, ["benchmark", "-m", str(d / "test.jsonl"), "--model", str(model_dir), "--device", "cpu",
                            "--multilingual", str(d / "de.jsonl"), "--noise", "--noise-n", "2", "--report", str(d / "report"), "--json"])
    assert r.exit_code == 0, r.output
    return r, json.loads(r.stdout), d / "report"


def test_json_has_the_documented_schema(run):
    _, data, _ = run
    assert list(data) == ["n", "systems"] and data["n"] == 8
    assert [s["kind"] for s in data["systems"]] == ["clasp", "asr", "fused"]  # fused: CLASP + the ASR row's transcripts
    for s in data["systems"]:
        assert list(s)[: len(FIXED_KEYS)] == FIXED_KEYS
        assert isinstance(s["name"], str) and s["name"]
        for k in FIXED_KEYS[2:10]:
            assert _is_number(s[k]), (k, s[k])
        assert isinstance(s["params"], int) and s["params"] > 0 and s["disk_mb"] > 0 and s["throughput_x_realtime"] > 0


def test_asr_on_espeak_speech_beats_chance(run):
    _, data, _ = run
    asr = next(s for s in data["systems"] if s["kind"] == "asr")
    assert asr["hits@1"] >= 0.75  # chance is 1/8
    assert asr["meanr"] < 2.0


def test_translations_become_query_languages(run):
    _, data, _ = run
    for s in data["systems"]:
        # fr exists on a few utterances only: those are scored, each ranking every recording
        assert list(s["by_query_lang"]) == ["de", "fr"]
        assert 0 < s["by_query_lang"]["fr"]["n"] < s["by_query_lang"]["de"]["n"] == data["n"]
        assert all(_is_number(s["by_query_lang"]["de"][k]) for k in ("hits@1", "mrr", "meanr"))


def test_costs_are_measured_per_system(run):
    _, data, _ = run
    clasp, asr, fused = data["systems"]
    for s in data["systems"]:
        assert 0 < s["latency_ms_p50"] <= s["latency_ms_p95"] and s["peak_rss_mb"] > 50
    assert fused["params"] == clasp["params"] + asr["params"]  # both halves counted
    assert fused["throughput_x_realtime"] < min(clasp["throughput_x_realtime"], asr["throughput_x_realtime"])
    assert set(clasp["params_parts"]) == {"whisper-tiny.en encoder", "head", "use-multilingual"}
    assert clasp["params_parts"]["use-multilingual"] == asr["params_parts"]["use-multilingual"]  # the same text encoder
    assert asr["params_parts"]["whisper-tiny.en"] > clasp["params_parts"]["whisper-tiny.en encoder"]


def test_groups_noise_and_multilingual_are_reported(run):
    _, data, _ = run
    for s in data["systems"]:
        assert set(s["by_voice"]) == {"en", "en-us"} and s["by_domain"]["news"]["n"] == 2
        assert s["noise"]["n"] == 2 and [r["snr_db"] for r in s["noise"]["white"]] == [None, 20.0, 10.0, 5.0, 0.0]
        assert set(s["noise"]) == {"n", "seed", "white", "babble"}
        assert s["multilingual"]["n"] == 3 and {"native", "en", "by_lang"} <= set(s["multilingual"])


def test_missing_audio_is_skipped_and_counted(run):
    r, data, _ = run
    assert "skipped 1 utterance" in r.stderr and "lost" in r.stderr and "Traceback" not in r.output


def test_report_writes_markdown_and_plots(run):
    _, _, report = run
    md = (report / "report.md").read_text()
    assert "## Machine" in md and "| CLASP |" in md and "## Noise robustness" in md and "## Non-English audio" in md
    for name in ("hits_at_k", "rank_hist", "speed", "snr", "query_langs"):
        png = report / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"({name}.png)" in md
