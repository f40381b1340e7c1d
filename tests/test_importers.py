"""Importing real corpora into manifests: each layout, split mapping, and how bad input is handled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from clasp_cli.data.importers import FORMATS, ImportSummary, import_corpus
from clasp_cli.errors import ManifestError, UsageError
from clasp_cli.manifest import read_manifest

SR = 16_000


def tone(path: Path, fmt: str | None = None) -> Path:
    """0.2 s of a quiet sine: the smallest real audio file the importers have to read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = (0.1 * np.sin(2 * np.pi * 440 * np.arange(int(0.2 * SR)) / SR)).astype(np.float32)
    sf.write(str(path), x, SR, format=fmt)
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def by_id(manifest: Path) -> dict:
    return {u.id: u for u in read_manifest(manifest)}


# ---------------------------------------------------------------- fixtures: tiny corpora on disk


def librispeech(root: Path) -> Path:
    for subset, spk, chap, utts in [
        ("dev-clean", "84", "121123", ["HELLO THERE", "SECOND LINE"]),
        ("test-clean", "61", "70968", ["A TEST"]),
        ("train-clean-100", "19", "198", ["TRAINING TEXT"]),
    ]:
        d = root / "LibriSpeech" / subset / spk / chap
        lines = []
        for i, text in enumerate(utts):
            uid = f"{spk}-{chap}-{i:04d}"
            tone(d / f"{uid}.flac")
            lines.append(f"{uid} {text}")
        write(d / f"{spk}-{chap}.trans.txt", "\n".join(lines) + "\n")
    return root / "LibriSpeech"


def commonvoice(root: Path, tsv: str = "validated.tsv", rows=None) -> Path:
    lang = root / "de"
    rows = rows or [
        ("c1", "common_voice_de_1.mp3", 'Er sagte "hallo".', "de"),
        ("c2", "common_voice_de_2.mp3", "Guten Morgen.", "de"),
    ]
    body = "client_id\tpath\tsentence\tup_votes\tdown_votes\tlocale\n"
    for client, clip, sentence, locale in rows:
        if clip:
            tone(lang / "clips" / clip, fmt="MP3")
        body += f"{client}\t{clip}\t{sentence}\t2\t0\t{locale}\n"
    write(lang / tsv, body)
    return lang


def fleurs(root: Path) -> Path:
    lang = root / "de_de"
    for split, files in [("train", ["10.wav", "11.wav"]), ("dev", ["20.wav"]), ("test", ["30.wav"])]:
        rows = []
        for f in files:
            tone(lang / "audio" / split / f)
            # FLEURS reuses the sentence id (here 1) for every speaker reading it.
            rows.append(f"1\t{f}\tDer Satz, roh.\tder satz roh\td e r\t3200\tFEMALE")
        write(lang / f"{split}.tsv", "\n".join(rows) + "\n")
    return lang


def speechbrown(root: Path, data=None) -> Path:
    if data is None:
        tone(root / "audio" / "a.wav")
        tone(root / "audio" / "b.wav")
        data = [
            {"id": "sb-1", "file_path": "audio/a.wav", "text": "First sentence.", "category": "news"},
            {"id": "sb-2", "file_path": "audio/b.wav", "text": "Second sentence."},
        ]
    return write(root / "global_metadata.json", json.dumps(data))


# ---------------------------------------------------------------- every format


def test_jsonl_keeps_fields_and_resolves_audio_against_its_folder(tmp_path):
    tone(tmp_path / "src" / "wav" / "a.wav")
    src = write(
        tmp_path / "src" / "in.jsonl",
        json.dumps({"id": "a", "audio": "wav/a.wav", "text": "hi", "lang": "de", "voice": "v1",
                    "domain": "d", "split": "test", "translations": {"en": "hi"}}) + "\n",
    )
    s = import_corpus("jsonl", src, tmp_path / "out" / "m.jsonl")
    u = by_id(s.out)["a"]
    assert (u.lang, u.voice, u.domain, u.split, u.translations) == ("de", "v1", "d", "test", {"en": "hi"})
    assert u.audio_path(s.out.parent).resolve() == (tmp_path / "src" / "wav" / "a.wav").resolve()
    assert u.duration == pytest.approx(0.2)


def test_csv_accepts_alternative_column_names_and_optional_fields(tmp_path):
    tone(tmp_path / "clips" / "x.wav")
    tone(tmp_path / "clips" / "y.wav")
    src = write(tmp_path / "list.csv", "path,sentence,voice,split\nclips/x.wav,one,anna,dev\nclips/y.wav,two,,train\n")
    s = import_corpus("csv", src, tmp_path / "m.jsonl")
    items = by_id(s.out)
    assert set(items) == {"clips/x", "clips/y"}  # no id column: the path without extension
    assert (items["clips/x"].text, items["clips/x"].voice, items["clips/x"].split) == ("one", "anna", "val")
    assert items["clips/y"].split == "train"


def test_librispeech_maps_speaker_domain_and_split_from_subset(tmp_path):
    s = import_corpus("librispeech", librispeech(tmp_path), tmp_path / "m.jsonl")
    items = by_id(s.out)
    assert s.written == 4 and s.skipped == []
    u = items["84-121123-0000"]
    assert (u.text, u.voice, u.domain, u.lang, u.split) == ("HELLO THERE", "84", "audiobook", "en", "val")
    assert items["61-70968-0000"].split == "test"
    assert items["19-198-0000"].split == "train"


def test_librispeech_accepts_a_single_subset_folder(tmp_path):
    root = librispeech(tmp_path)
    s = import_corpus("librispeech", root / "test-clean", tmp_path / "m.jsonl")
    assert list(by_id(s.out)) == ["61-70968-0000"]


def test_commonvoice_reads_validated_tsv_with_quotes_and_mp3_clips(tmp_path):
    s = import_corpus("commonvoice", commonvoice(tmp_path), tmp_path / "m.jsonl")
    items = by_id(s.out)
    u = items["common_voice_de_1"]
    assert (u.text, u.voice, u.lang, u.split) == ('Er sagte "hallo".', "c1", "de", "")
    assert u.duration > 0


def test_commonvoice_split_comes_from_the_tsv_name_and_lang_falls_back_to_folder(tmp_path):
    lang = commonvoice(tmp_path, tsv="dev.tsv", rows=[("c1", "common_voice_de_9.mp3", "Hallo.", "")])
    s = import_corpus("commonvoice", lang / "dev.tsv", tmp_path / "m.jsonl")
    u = by_id(s.out)["common_voice_de_9"]
    assert (u.split, u.lang) == ("val", "de")


def test_fleurs_reads_every_split_with_unique_ids(tmp_path):
    s = import_corpus("fleurs", fleurs(tmp_path), tmp_path / "m.jsonl")
    items = by_id(s.out)
    assert set(items) == {"train-10", "train-11", "val-20", "test-30"}
    assert s.skipped == []
    u = items["val-20"]
    assert (u.text, u.lang, u.split) == ("Der Satz, roh.", "de", "val")


def test_fleurs_accepts_a_single_tsv(tmp_path):
    lang = fleurs(tmp_path)
    s = import_corpus("fleurs", lang / "test.tsv", tmp_path / "m.jsonl")
    assert list(by_id(s.out)) == ["test-30"]


def test_speechbrown_sets_synthetic_voice_engine_and_category(tmp_path):
    s = import_corpus("speechbrown", speechbrown(tmp_path), tmp_path / "m.jsonl")
    items = by_id(s.out)
    u = items["sb-1"]
    assert (u.voice, u.engine, u.domain) == ("speechbrown-tacotron2", "tacotron2", "news")
    assert items["sb-2"].domain == ""


def test_speechbrown_accepts_a_dict_keyed_by_id(tmp_path):
    tone(tmp_path / "a.wav")
    speechbrown(tmp_path, data={"k1": {"file_path": "a.wav", "text": "Words."}})
    s = import_corpus("speechbrown", tmp_path, tmp_path / "m.jsonl")
    assert by_id(s.out)["k1"].text == "Words."


# ---------------------------------------------------------------- the written manifest


def test_audio_paths_are_relative_and_round_trip_to_existing_files(tmp_path):
    s = import_corpus("librispeech", librispeech(tmp_path), tmp_path / "m.jsonl")
    for u in read_manifest(s.out):
        assert not Path(u.audio).is_absolute()
        assert u.audio_path(s.out.parent).is_file()


def test_summary_counts_written_items_and_hours(tmp_path):
    s = import_corpus("fleurs", fleurs(tmp_path), tmp_path / "m.jsonl")
    assert isinstance(s, ImportSummary)
    assert s.written == 4 and s.out == tmp_path / "m.jsonl"
    assert s.hours == pytest.approx(4 * 0.2 / 3600)


def test_without_duration_audio_headers_are_not_read(tmp_path):
    lang = fleurs(tmp_path)
    write(lang / "audio" / "test" / "30.wav", "not audio")  # would fail if decoded
    s = import_corpus("fleurs", lang / "test.tsv", tmp_path / "m.jsonl", with_duration=False)
    assert s.written == 1 and s.hours == 0.0


def test_progress_is_called_with_items_seen_so_far(tmp_path):
    seen: list[int] = []
    import_corpus("fleurs", fleurs(tmp_path), tmp_path / "m.jsonl", progress=seen.append)
    assert seen == [1, 2, 3, 4]


# ---------------------------------------------------------------- bad items are skipped with a reason


def test_missing_audio_is_skipped_with_reason(tmp_path):
    tone(tmp_path / "a.wav")
    src = write(tmp_path / "l.csv", "id,audio,text\na,a.wav,fine\nb,gone.wav,lost\n")
    s = import_corpus("csv", src, tmp_path / "m.jsonl")
    assert s.written == 1
    assert s.skipped == [("b", "audio file not found")]


def test_empty_text_is_skipped(tmp_path):
    tone(tmp_path / "a.wav")
    tone(tmp_path / "b.wav")
    src = write(tmp_path / "l.csv", "id,audio,text\na,a.wav,fine\nb,b.wav,   \n")
    s = import_corpus("csv", src, tmp_path / "m.jsonl")
    assert s.skipped == [("b", "empty text")]


def test_later_duplicate_id_is_skipped(tmp_path):
    tone(tmp_path / "a.wav")
    tone(tmp_path / "b.wav")
    src = write(tmp_path / "l.csv", "id,audio,text\nsame,a.wav,first\nsame,b.wav,second\n")
    s = import_corpus("csv", src, tmp_path / "m.jsonl")
    assert by_id(s.out)["same"].text == "first"
    assert s.skipped == [("same", "duplicate id")]


def test_unreadable_audio_is_skipped_with_the_decoder_reason(tmp_path):
    tone(tmp_path / "a.wav")
    write(tmp_path / "bad.wav", "")
    src = write(tmp_path / "l.csv", "id,audio,text\na,a.wav,fine\nbad,bad.wav,broken\n")
    s = import_corpus("csv", src, tmp_path / "m.jsonl")
    assert s.skipped == [("bad", "empty file (0 bytes)")]


# ---------------------------------------------------------------- errors


def test_unknown_format_lists_the_valid_ones(tmp_path):
    with pytest.raises(UsageError) as e:
        import_corpus("mp4", tmp_path, tmp_path / "m.jsonl")
    assert all(f in str(e.value) for f in FORMATS)


def test_missing_source_raises_manifest_error_naming_it(tmp_path):
    with pytest.raises(ManifestError, match="nowhere.jsonl"):
        import_corpus("jsonl", tmp_path / "nowhere.jsonl", tmp_path / "m.jsonl")


def test_malformed_jsonl_raises_with_line_number(tmp_path):
    src = write(tmp_path / "in.jsonl", '{"id": "a", "audio": "a.wav", "text": "x"}\n{not json\n')
    with pytest.raises(ManifestError, match=r"in\.jsonl:2"):
        import_corpus("jsonl", src, tmp_path / "m.jsonl")


def test_csv_without_audio_or_text_column_is_malformed(tmp_path):
    src = write(tmp_path / "l.csv", "id,name\n1,x\n")
    with pytest.raises(ManifestError, match="l.csv"):
        import_corpus("csv", src, tmp_path / "m.jsonl")


def test_commonvoice_tsv_without_required_columns_is_malformed(tmp_path):
    write(tmp_path / "de" / "validated.tsv", "path\tsentence\nx.mp3\tHallo\n")
    with pytest.raises(ManifestError, match="client_id"):
        import_corpus("commonvoice", tmp_path / "de", tmp_path / "m.jsonl")


def test_speechbrown_invalid_json_is_malformed(tmp_path):
    write(tmp_path / "global_metadata.json", "[{")
    with pytest.raises(ManifestError, match="global_metadata.json"):
        import_corpus("speechbrown", tmp_path, tmp_path / "m.jsonl")


def test_folder_without_librispeech_transcripts_is_an_error(tmp_path):
    with pytest.raises(ManifestError, match="trans.txt"):
        import_corpus("librispeech", tmp_path, tmp_path / "m.jsonl")


def test_nothing_is_written_when_nothing_is_importable(tmp_path):
    out = tmp_path / "m.jsonl"
    src = write(tmp_path / "l.csv", "id,audio,text\na,gone.wav,lost\n")
    with pytest.raises(ManifestError, match="no importable utterances"):
        import_corpus("csv", src, out)
    assert list(tmp_path.iterdir()) == [src]


def test_a_failed_import_leaves_an_existing_manifest_untouched(tmp_path):
    out = write(tmp_path / "m.jsonl", "previous\n")
    src = write(tmp_path / "in.jsonl", "{broken\n")
    with pytest.raises(ManifestError):
        import_corpus("jsonl", src, out)
    assert out.read_text() == "previous\n"


# ---------------------------------------------------------------- Fish Fillets


def fillets(root: Path, levels: dict[str, list[tuple[str, str, str, str]]]) -> Path:
    """A Fish Fillets tree: per level, lines of (id, font, English, Czech), each with a Czech clip."""
    game = root / "usr/share/games/fillets-ng"
    for level, lines in levels.items():
        cs = "".join(f'dialogId("{i}", "font_{font}", "{en}")\ndialogStr("{cz}")\n\n' for i, font, en, cz in lines)
        de = "".join(f'dialogId("{i}", "font_{font}", "{en}")\ndialogStr("DE {en}")\n\n' for i, font, en, _ in lines)
        write(game / "script" / level / "dialogs_cs.lua", cs)
        write(game / "script" / level / "dialogs_de.lua", de)
        write(game / "script" / level / "dialogs_de_CH.lua", de.replace("DE ", "CH "))
        for i, *_ in lines:
            tone(game / "sound" / level / "cs" / f"{i}.ogg", fmt="OGG")
    return root


def test_fillets_lines_carry_every_translation_their_speaker_and_level(tmp_path):
    src = fillets(tmp_path / "src", {"barrel": [("bar-v-co", "big", "What do we do?", 'Co s \\"tím\\"?'),
                                                ("bar-m-no", "small", "Well.", "No.")]})
    import_corpus("fillets", src, tmp_path / "m.jsonl")
    u = by_id(tmp_path / "m.jsonl")["fillets-barrel-bar-v-co"]
    assert (u.text, u.lang, u.voice, u.episode) == ('Co s "tím"?', "cs", "fillets:big", "barrel")
    assert u.translations == {"en": "What do we do?", "de": "DE What do we do?"}  # de_CH, a regional copy, is not read
    assert [x.id for x in read_manifest(tmp_path / "m.jsonl")] == ["fillets-barrel-bar-v-co", "fillets-barrel-bar-m-no"]


def test_fillets_reserved_levels_are_never_read(tmp_path):
    line = [("x-1", "big", "One.", "Jedna.")]
    src = fillets(tmp_path / "src", {"library": line, "wc": line, "barrel": line})
    import_corpus("fillets", src, tmp_path / "m.jsonl")
    assert {u.episode for u in read_manifest(tmp_path / "m.jsonl")} == {"barrel"}


def test_fillets_splits_by_level_so_no_level_is_in_both(tmp_path):
    levels = {f"level{n:02d}": [(f"l{n}-a", "big", "A line.", "Řádek."), (f"l{n}-b", "small", "B line.", "Jiný.")] for n in range(8)}
    import_corpus("fillets", fillets(tmp_path / "src", levels), tmp_path / "m.jsonl")
    split_of: dict[str, set[str]] = {}
    for u in read_manifest(tmp_path / "m.jsonl"):
        split_of.setdefault(u.episode, set()).add(u.split)
    assert all(len(s) == 1 for s in split_of.values())
    assert sorted(lv for lv, s in split_of.items() if s == {"val"}) == ["level03", "level07"]


# ---------------------------------------------------------------- festvox-ru


def festvox_ru(root: Path, lines: list[tuple[str, str]]) -> Path:
    voice = root / "usr/share/festival/voices/russian/msu_ru_nsh_clunits"
    write(voice / "etc" / "txt.done.data", "".join(f'( {k} "{t}" )\n' for k, t in lines))
    for k, _ in lines:
        tone(voice / "wav" / f"{k}.wav")
    return root


def test_festvox_ru_texts_lose_their_stress_marks_and_commas(tmp_path):
    src = festvox_ru(tmp_path / "src", [("ru_0001", "Со спокойным мужеством, Скайлс, ожидал всего."),
                                        ("ru_0002", "Она завела прядь волнистых вол+ос за ухо.")])
    import_corpus("festvox-ru", src, tmp_path / "m.jsonl")
    got = by_id(tmp_path / "m.jsonl")
    assert got["festvox-ru-ru_0001"].text == "Со спокойным мужеством Скайлс ожидал всего."
    assert got["festvox-ru-ru_0002"].text == "Она завела прядь волнистых волос за ухо."
    assert {(u.lang, u.engine, u.voice) for u in got.values()} == {("ru", "human", "festvox-ru:msu_nsh")}


def test_festvox_ru_keeps_every_tenth_sentence_for_validation_and_groups_episodes(tmp_path):
    src = festvox_ru(tmp_path / "src", [(f"ru_{n:04d}", f"Предложение номер {n}.") for n in range(1, 31)])
    import_corpus("festvox-ru", src, tmp_path / "m.jsonl")
    us = read_manifest(tmp_path / "m.jsonl")
    assert [u.id for u in us if u.split == "val"] == ["festvox-ru-ru_0010", "festvox-ru-ru_0020", "festvox-ru-ru_0030"]
    assert len({u.episode for u in us}) == 2  # 20 sentences to an episode


def test_festvox_ru_without_its_text_file_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="txt.done.data"):
        import_corpus("festvox-ru", tmp_path / "empty", tmp_path / "m.jsonl")


def test_an_import_can_keep_one_split(tmp_path):
    src = festvox_ru(tmp_path / "src", [(f"ru_{n:04d}", f"Предложение номер {n}.") for n in range(1, 21)])
    import_corpus("festvox-ru", src, tmp_path / "val.jsonl", split="val")
    assert [u.id for u in read_manifest(tmp_path / "val.jsonl")] == ["festvox-ru-ru_0010", "festvox-ru-ru_0020"]
