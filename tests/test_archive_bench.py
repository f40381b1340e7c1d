"""The archive benchmark runs CLASP through the real index (two segmentations) and ASR on the same windows."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from clasp_cli.archive_bench import ArchiveBenchConfig, run_archive_benchmark
from clasp_cli.cli import app


@pytest.fixture(scope="module")
def manifest(tmp_path_factory, say):
    d = tmp_path_factory.mktemp("utterances")
    texts = ["The river is cold today.", "We walked along the shore at night.", "Then it began to rain very hard.",
             "The bus was late again this morning."]
    rows = []
    for i, text in enumerate(texts):
        say(text, d / f"u{i}.wav")
        rows.append({"id": f"u{i}", "audio": f"u{i}.wav", "text": text, "voice": "en", "translations": {"de": f"Satz {i}."}})
    (d / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d / "test.jsonl"


def test_archive_benchmark_reports_each_system_per_query_language(tmp_path, manifest):
    result = run_archive_benchmark(ArchiveBenchConfig(manifest=manifest, out=tmp_path / "work", per_program=2,
                                                        model="clasp-tiny"))
    assert (result["programs"], result["queries"]) == (2, 8)
    systems = [r["system"] for r in result["rows"]]
    assert systems[:5] == ["CLASP (windows)", "CLASP (passages)", "CLASP (windows) --rerank 20",
                           "CLASP keyword (windows, after --transcribe fill-in)",
                           "fused: CLASP + transcripts (windows, --transcribe, one encoder pass)"]
    assert systems[5].startswith("ASR (whisper-tiny.en")
    for row in result["rows"]:
        assert set(row["scores"]) == {"all", "en", "de"} and row["scores"]["en"]["n"] == 4
    asr = result["rows"][5]
    assert asr["scores"]["en"]["hits@1"] >= 0.75  # espeak English is easy to transcribe
    assert result["rows"][0]["index_mb"] > 0 and result["rows"][0]["query_ms_p50"] > 0
    rerank = result["rows"][2]
    assert rerank["first_query_ms_p50"] > 0 and rerank["cached_query_ms_p50"] > 0
    assert rerank["cold_queries"] >= 1 and rerank["cold_query_ms_p50"] > rerank["cached_query_ms_p50"]
    keyword = result["rows"][3]
    # Words, not meaning: a German query never matches English words. (Whether an English one does
    # depends on every word of an espeak sentence surviving whisper-tiny.en: not asserted here.)
    assert keyword["scores"]["de"]["hits@1"] == 0 and keyword["scores"]["de"]["mrr"] == 0
    fused = result["rows"][4]
    assert fused["index_x_realtime"] > 0 and fused["scores"]["en"]["hits@1"] >= asr["scores"]["en"]["hits@1"] - 0.25


def test_clasp_benchmark_archive_prints_a_table_of_every_system(tmp_path, manifest):
    # The default model (clasp-base): its ASR baseline is the multilingual whisper-base, and a bare
    # --rerank reads the 10 windows its config names.
    r = CliRunner().invoke(app, ["benchmark", "--archive", "-m", str(manifest), "--out", str(tmp_path / "work"),
                                 "--device", "cpu"], terminal_width=200)
    assert r.exit_code == 0, r.output
    for system in ("CLASP (windows)", "CLASP (passages)", "--rerank 10", "CLASP keyword", "fused: CLASP", "ASR (whisper-base"):
        assert system in r.stdout


def test_an_unknown_asr_reader_is_refused_before_any_work(tmp_path, manifest):
    from clasp_cli.errors import UsageError

    with pytest.raises(UsageError, match="--asr-reader"):
        run_archive_benchmark(ArchiveBenchConfig(manifest=manifest, out=tmp_path / "work", asr_reader="slow"))
    assert not (tmp_path / "work").exists()


def test_a_rerun_with_reuse_keeps_the_indexes_and_transcripts_and_scores_the_same(tmp_path, manifest):
    cfg = ArchiveBenchConfig(manifest=manifest, out=tmp_path / "work", per_program=2, model="clasp-tiny",
                             rows=("fused", "asr"), reuse=True)
    first = run_archive_benchmark(cfg)
    assert [r["system"][:5] for r in first["rows"]] == ["fused", "ASR ("]
    db = tmp_path / "work" / "index-fused" / "index.sqlite"
    built_at = db.stat().st_mtime_ns
    again = run_archive_benchmark(cfg)
    assert db.stat().st_mtime_ns == built_at  # not indexed again
    for a, b in zip(first["rows"], again["rows"]):
        assert b["reused"] is True and "reused" not in a
        assert b["scores"] == a["scores"] and b["index_s"] == a["index_s"]


def test_an_unknown_row_is_refused_with_the_choices(tmp_path, manifest):
    r = CliRunner().invoke(app, ["benchmark", "--archive", "-m", str(manifest), "--out", str(tmp_path / "work"),
                                 "--rows", "fused,bm25"])
    assert r.exit_code == 2 and "clasp, rerank, keyword, fused, asr" in r.output
