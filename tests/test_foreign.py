"""Non-English training text: gettext catalogues as parallel sentences, split by meaning."""

from __future__ import annotations

import struct
from pathlib import Path

from clasp_cli.data.foreign import fortune_sentences, gettext_pairs, is_test
from clasp_cli.data.sentences import Sentence


def write_mo(path: Path, messages: dict[str, str]) -> None:
    """A GNU .mo catalogue (the binary format msgfmt writes), with the header entry gettext expects."""
    messages = {"": "Content-Type: text/plain; charset=UTF-8\n", **messages}
    keys = sorted(messages)
    ids = b"".join(k.encode() + b"\0" for k in keys)
    strs = b"".join(messages[k].encode() + b"\0" for k in keys)
    n = len(keys)
    header = 7 * 4
    id_table, str_table = header, header + n * 8
    data = str_table + n * 8
    offsets, pos = [], data
    for k in keys:
        offsets.append((len(k.encode()), pos))
        pos += len(k.encode()) + 1
    str_offsets = []
    for k in keys:
        str_offsets.append((len(messages[k].encode()), pos))
        pos += len(messages[k].encode()) + 1
    out = struct.pack("<7I", 0x950412DE, 0, n, id_table, str_table, 0, 0)
    out += b"".join(struct.pack("<2I", *o) for o in offsets)
    out += b"".join(struct.pack("<2I", *o) for o in str_offsets)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out + ids + strs)


def test_gettext_messages_become_native_sentences_with_their_english_original(tmp_path):
    write_mo(tmp_path / "de" / "LC_MESSAGES" / "demo.mo", {
        "The file could not be opened.": "Die Datei konnte nicht geöffnet werden.",
        "Cannot open %s for writing.": "Kann %s nicht zum Schreiben öffnen.",  # a format string is not speech
        "Quit": "Beenden",  # too short
    })
    pairs = gettext_pairs("de", locale_dir=tmp_path)
    assert [(s.text, s.translations, s.lang) for s in pairs] == [
        ("Die Datei konnte nicht geöffnet werden.", {"en": "The file could not be opened."}, "de")
    ]


def test_portuguese_reads_both_european_and_brazilian_catalogues(tmp_path):
    write_mo(tmp_path / "pt" / "LC_MESSAGES" / "a.mo", {"The disk is almost full now.": "O disco está quase cheio agora."})
    write_mo(tmp_path / "pt_BR" / "LC_MESSAGES" / "b.mo", {"The network is not reachable now.": "A rede não está acessível agora."})
    assert len(gettext_pairs("pt", locale_dir=tmp_path)) == 2


def test_a_damaged_catalogue_is_skipped(tmp_path):
    bad = tmp_path / "fr" / "LC_MESSAGES" / "bad.mo"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a catalogue at all")
    assert gettext_pairs("fr", locale_dir=tmp_path) == []


def test_translations_of_one_message_land_on_the_same_side_of_the_split():
    for i in range(200):
        en = f"Message number {i} could not be delivered."
        de = Sentence(f"Nachricht {i} konnte nicht zugestellt werden.", "x", lang="de", translations={"en": en})
        fr = Sentence(f"Le message {i} n'a pas pu être livré.", "x", lang="fr", translations={"en": en})
        assert is_test(de) == is_test(fr)
    assert 0 < sum(is_test(Sentence(f"Satz {i} ist hier.", "x", lang="de")) for i in range(1000)) < 200


def test_fortunes_in_cyrillic_are_split_into_sentences(tmp_path):
    (tmp_path / "ru").mkdir()
    (tmp_path / "ru" / "wisdom").write_text(
        "В жизни надо либо копить деньги, либо их тратить. Третьего не дано никому.\n%\nКороткая.\n", encoding="utf-8"
    )
    texts = [s.text for s in fortune_sentences("ru", fortune_dir=tmp_path)]
    assert texts == ["В жизни надо либо копить деньги, либо их тратить.", "Третьего не дано никому."]


def test_japanese_messages_are_measured_in_characters_and_keep_their_own_full_stop(tmp_path):
    write_mo(tmp_path / "ja" / "LC_MESSAGES" / "demo.mo", {
        "Compare two files byte by byte.": "2つのファイルをバイトごとに比較します。",
        "The file could not be opened.": "ファイルを開けませんでした",  # no full stop: one is added
        "Use the option for verbose output.": "Use the verbose option for this.",  # untranslated Latin text
        "Quit now.": "終了。",  # too short to be a sentence
    })
    got = {s.translations["en"]: s.text for s in gettext_pairs("ja", tmp_path)}
    assert got == {"Compare two files byte by byte.": "2つのファイルをバイトごとに比較します。",
                   "The file could not be opened.": "ファイルを開けませんでした。"}
