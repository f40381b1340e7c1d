"""The archive benchmark runs CLASP through the real index (two segmentations) and ASR on the same windows."""

from __future__ import annotations

import json

from clasp_cli.archive_bench import ArchiveBenchConfig, run_archive_benchmark


def test_archive_benchmark_reports_each_system_per_query_language(tmp_path, say):
    texts = ["The river is cold today.", "We walked along the shore at night.", "Then it began to rain very hard.",
             "The bus was late again this morning."]
    rows = []
    for i, text in enumerate(texts):
        say(text, tmp_path / f"u{i}.wav")
        rows.append({"id": f"u{i}", "audio": f"u{i}.wav", "text": text, "voice": "en", "translations": {"de": f"Satz {i}."}})
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_archive_benchmark(ArchiveBenchConfig(manifest=tmp_path / "test.jsonl", out=tmp_path / "work", per_program=2))
    assert (result["programs"], result["queries"]) == (2, 8)
    systems = [r["system"] for r in result["rows"]]
    assert systems[:2] == ["CLASP (windows)", "CLASP (passages)"] and systems[2].startswith("ASR (whisper-tiny.en")
    for row in result["rows"]:
        assert set(row["scores"]) == {"all", "en", "de"} and row["scores"]["en"]["n"] == 4
    assert result["rows"][2]["scores"]["en"]["hits@1"] >= 0.75  # espeak English is easy to transcribe
    assert result["rows"][0]["index_mb"] > 0 and result["rows"][0]["query_ms_p50"] > 0
