"""`clasp search --format` for pipelines, and `clasp export` of what was said as subtitles."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from clasp_cli.cli import app
from clasp_cli.export import Cue, cues, subtitles, timestamp

runner = CliRunner()
EXAMPLES = Path(__file__).parents[1] / "examples" / "archive"
QUERY = "which way to the station"


def search(index, *args: str):
    return runner.invoke(app, ["search", QUERY, "--index", str(index), "--device", "cpu", "-k", "3", *args])


def test_tsv_has_path_start_end_score_text_speaker_per_result_and_no_header(examples_transcribed):
    want = json.loads(search(examples_transcribed, "--json").stdout)["results"]
    r = search(examples_transcribed, "--format", "tsv")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert len(lines) == len(want)
    for line, hit in zip(lines, want):
        path, start, end, score, text, speaker = line.split("\t")
        assert (path, float(start), float(end)) == (hit["path"], round(hit["start"], 2), round(hit["end"], 2))
        assert abs(float(score) - hit["score"]) < 1e-4 and text == " ".join(hit.get("text", "").split())
        assert speaker == (hit["speaker"]["name"] or f"Speaker {hit['speaker']['id']}" if "speaker" in hit else "")


def test_jsonl_is_one_result_a_line_with_the_query(examples_transcribed):
    want = json.loads(search(examples_transcribed, "--json").stdout)["results"]
    got = [json.loads(line) for line in search(examples_transcribed, "--format", "jsonl").stdout.splitlines()]
    assert got == [{"query": QUERY, **hit} for hit in want]


def test_format_json_is_exactly_dash_dash_json(examples_transcribed):
    assert search(examples_transcribed, "--format", "json").stdout == search(examples_transcribed, "--json").stdout


def test_an_unknown_format_or_two_formats_are_one_line_usage_errors(examples_transcribed):
    for args in (["--format", "xml"], ["--format", "tsv", "--json"]):
        r = search(examples_transcribed, *args)
        assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output


def test_no_match_in_tsv_exits_1_with_empty_stdout(examples_transcribed):
    r = runner.invoke(app, ["search", "🙂🙂🙂", "--index", str(examples_transcribed), "--device", "cpu", "--min-score", "0.99",
                            "--format", "tsv"])
    assert r.exit_code == 1 and r.stdout == ""


def test_timestamps_in_both_formats():
    assert timestamp(3723.4567, "srt") == "01:02:03,457"
    assert timestamp(0.0, "vtt") == "00:00:00.000"


def test_overlapping_windows_become_cues_that_end_where_the_next_begins():
    got = cues([(0.0, 5.0, "one  two"), (3.5, 8.0, "three"), (9.0, 10.0, "   ")])
    assert got == [Cue(0.0, 3.5, "one two"), Cue(3.5, 8.0, "three")]


def test_subtitle_text_cannot_forge_a_cue():
    text = subtitles([Cue(0, 1, "a --> b")], "vtt")
    assert text.startswith("WEBVTT\n\n") and text.count("-->") == 1


def test_export_writes_one_srt_per_transcribed_recording_with_its_transcripts(examples_transcribed, tmp_path):
    out = tmp_path / "subs"
    r = runner.invoke(app, ["export", "--index", str(examples_transcribed), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    done = json.loads(r.stdout)
    files = sorted(out.rglob("*.srt"))
    recordings = [p for p in EXAMPLES.rglob("*") if p.suffix in (".wav", ".mp3", ".ogg", ".flac", ".m4a", ".opus")]
    assert len(files) == len(done) == len(recordings)
    directions = next(f for f in files if f.name == "directions.wav.srt").read_text(encoding="utf-8")
    assert re.match(r"1\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\n\S", directions)
    assert "bakery" in directions.lower()


def test_export_to_stdout_needs_one_recording(examples_transcribed):
    r = runner.invoke(app, ["export", "--index", str(examples_transcribed), "--out", "-", "--format", "vtt", "--path", "directions"])
    assert r.exit_code == 0 and r.stdout.startswith("WEBVTT\n\n00:00:")
    r = runner.invoke(app, ["export", "--index", str(examples_transcribed), "--out", "-"])
    assert r.exit_code == 2 and "narrow it with --path" in r.output


def test_export_of_an_index_without_transcripts_says_how_to_get_them(tmp_path, shipped_model, say):
    from clasp_cli.indexer import index_paths

    say("The meeting starts at nine tomorrow morning.", tmp_path / "a" / "note.wav")
    index_paths([tmp_path / "a"], tmp_path / "idx", model=shipped_model, transcribe=False)
    r = runner.invoke(app, ["export", "--index", str(tmp_path / "idx"), "--out", str(tmp_path / "subs")])
    assert r.exit_code == 2 and "clasp index --transcribe" in r.output


def test_export_into_a_folder_it_cannot_write_is_one_line(examples_transcribed, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = runner.invoke(app, ["export", "--index", str(examples_transcribed), "--out", str(blocker / "subs")])
    assert r.exit_code == 2 and "cannot write the subtitles" in r.output and len(r.output.strip().splitlines()) == 1


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    def seconds(stamp: str) -> float:
        h, m, rest = stamp.split(":")
        s, ms = rest.split(",")
        return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000

    cues = []
    for n, block in enumerate(text.strip().split("\n\n"), 1):
        number, timing, words = block.split("\n")
        assert int(number) == n
        a, b = timing.split(" --> ")
        cues.append((seconds(a), seconds(b), words))
    return cues


def test_exported_srt_parses_back_with_monotone_times_and_the_indexed_words(examples_transcribed, tmp_path):
    from clasp_cli.store import Store

    runner.invoke(app, ["export", "--index", str(examples_transcribed), "--out", str(tmp_path / "s")])
    with Store.open(examples_transcribed) as store:
        spoken = {f.path: store.spoken(f.id) for f in store.files()}
    for path, windows in spoken.items():
        srt = next((tmp_path / "s").rglob(Path(path).name + ".srt")).read_text(encoding="utf-8")
        got = parse_srt(srt)
        # Each cue leads with its speaker, "[Speaker 3] ", where the window's voice is known.
        assert [re.sub(r"^\[[^\]]+\] ", "", w) for _, _, w in got] == [" ".join(t.split()) for _, _, t in windows if t.strip()]
        assert all(a < b for a, b, _ in got) and all(b1 <= a2 for (_, b1, _), (a2, _, _) in zip(got, got[1:]))


def test_export_skips_a_recording_whose_subtitle_name_is_a_folder_and_writes_the_rest(tmp_path, shipped_model):
    import shutil

    from clasp_cli.indexer import index_paths

    rec = tmp_path / "rec"
    shutil.copytree(EXAMPLES / "voice-notes", rec / "notes")
    shutil.copy(EXAMPLES / "radio" / "weather-forecast.mp3", rec / "a.wav.mp3")
    (rec / "a.wav.mp3.srt").mkdir()  # its recording's subtitles go where a.wav.mp3's would
    shutil.copy(EXAMPLES / "voice-notes" / "directions.wav", rec / "a.wav.mp3.srt" / "inside.wav")
    index_paths([rec], tmp_path / "idx", model=shipped_model, transcribe=True)
    r = runner.invoke(app, ["export", "--index", str(tmp_path / "idx"), "--out", str(tmp_path / "ex")])
    assert r.exit_code == 9, r.output
    skipped = [line for line in r.output.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 1 and "a.wav.mp3.srt" in skipped[0]
    written = sorted(str(p.relative_to(tmp_path / "ex")) for p in (tmp_path / "ex").rglob("*.srt") if p.is_file())
    assert len(written) == 3 and {"notes/directions.wav.srt", "notes/recipe.mp3.srt"} <= set(written)


def test_export_out_naming_a_file_is_a_usage_error(examples_transcribed, tmp_path):
    (tmp_path / "exfile").write_text("x")
    r = runner.invoke(app, ["export", "--index", str(examples_transcribed), "--out", str(tmp_path / "exfile")])
    assert r.exit_code == 2 and "--out must be a folder" in r.output and len(r.output.strip().splitlines()) == 1
    assert (tmp_path / "exfile").read_text() == "x"
