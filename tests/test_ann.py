"""The usearch ANN (int8 shards, memory-mapped by readers) under the same rules as the hnswlib graph."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from clasp_cli import graph
from clasp_cli.ann_usearch import ShardedUsearch
from clasp_cli.store import Store

DIM = 32


def _unit(rng, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _fill(index: Path, files: int = 30, per_file: int = 10, ann: str = "usearch", seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    made = {}
    with Store.open(index, write=True, model_id="m", dim=DIM) as st:
        st.set_ann_engine(ann)
        for f in range(files):
            v = _unit(rng, per_file)
            st.replace_file(f"/a/{f:03d}.wav", 1, 1.0, f"h{f}", float(per_file), [(i, i + 1) for i in range(per_file)], v)
            made[f"/a/{f:03d}.wav"] = v
    return made


def _stamp(index: Path) -> dict:
    return json.loads((index / "vectors.json").read_text())


def test_usearch_answers_what_hnswlib_answers_with_the_same_scores(tmp_path):
    made = _fill(tmp_path / "u", ann="usearch")
    _fill(tmp_path / "h", ann="hnsw")
    queries = [made["/a/007.wav"][3], made["/a/021.wav"][0], _unit(np.random.default_rng(9), 1)[0]]
    with Store.open(tmp_path / "u") as u, Store.open(tmp_path / "h") as h:
        assert isinstance(u.graph(), ShardedUsearch)
        for q in queries:
            a, b = u.search(q, 5), h.search(q, 5)
            assert [x.passage_id for x in a] == [x.passage_id for x in b]
            # Candidates are rescored from the exact vectors: the score is the cosine hnswlib reports.
            assert np.allclose([x.score for x in a], [x.score for x in b], atol=1e-4)


def test_a_reader_maps_the_shards_instead_of_loading_them(tmp_path):
    _fill(tmp_path / "idx")
    with Store.open(tmp_path / "idx") as st:
        g = st.graph()
        assert g.shards and all(s.view for s in g.shards)
        assert st.search(_unit(np.random.default_rng(1), 1)[0], 3)


def test_the_shards_and_stamp_are_what_the_index_folder_holds(tmp_path):
    _fill(tmp_path / "idx")
    stamp = _stamp(tmp_path / "idx")
    assert stamp["engine"] == "usearch"
    on_disk = sorted(p.name for p in (tmp_path / "idx").glob("*.usearch"))
    assert on_disk == sorted(e["file"] for e in stamp["shards"])  # no stale generation left behind
    assert not (tmp_path / "idx" / "vectors.hnsw").exists()


def test_a_replaced_file_leaves_tombstones_that_searches_skip(tmp_path):
    made = _fill(tmp_path / "idx")
    old = made["/a/004.wav"]
    with Store.open(tmp_path / "idx", write=True) as st:
        gone = {r[0] for r in st.db.execute("SELECT p.id FROM passages p JOIN files f ON p.file_id=f.id WHERE f.path=?",
                                            ("/a/004.wav",))}
        assert st.search(old[0], 1)[0].passage_id in gone
        st.replace_file("/a/004.wav", 2, 2.0, "new", 10.0, [(i, i + 1) for i in range(10)], _unit(np.random.default_rng(5), 10))
    assert set(_stamp(tmp_path / "idx")["deleted"]) == gone  # 10 of 300 dead: kept as tombstones, not compacted
    with Store.open(tmp_path / "idx") as st:
        assert not {h.passage_id for h in st.search(old[0], 20)} & gone
        assert st.check() == []


def test_a_shard_more_than_a_fifth_dead_is_rebuilt_without_its_tombstones(tmp_path):
    _fill(tmp_path / "idx", files=10)
    with Store.open(tmp_path / "idx", write=True) as st:
        st.remove_files([f"/a/{f:03d}.wav" for f in range(3)])  # 30% of the windows
    stamp = _stamp(tmp_path / "idx")
    assert stamp["deleted"] == [] and stamp["shards"][0]["count"] == 70
    with Store.open(tmp_path / "idx") as st:
        assert st.check() == [] and len(st.search(_unit(np.random.default_rng(2), 1)[0], 100)) == 70


def test_a_damaged_shard_is_never_mapped_and_a_writer_rebuilds_it(tmp_path):
    made = _fill(tmp_path / "idx")
    shard = tmp_path / "idx" / _stamp(tmp_path / "idx")["shards"][0]["file"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with Store.open(tmp_path / "idx") as st:
        assert any("damaged" in p for p in st.check())
        assert st.search(made["/a/010.wav"][2], 1)[0].path == "/a/010.wav"  # rebuilt in memory from SQLite
    with Store.open(tmp_path / "idx", write=True) as st:
        st.graph()
    with Store.open(tmp_path / "idx") as st:
        assert st.check() == []


def test_a_save_killed_before_its_stamp_leaves_the_last_generation_usable(tmp_path, monkeypatch):
    _fill(tmp_path / "idx", files=5)
    before = _stamp(tmp_path / "idx")
    real = os.replace

    def killed_at_the_stamp(src, dst):
        if str(dst).endswith("vectors.json"):
            raise KeyboardInterrupt  # the process stops between the new shard file and the stamp
        return real(src, dst)

    monkeypatch.setattr(graph.os, "replace", killed_at_the_stamp)
    with pytest.raises(KeyboardInterrupt):
        with Store.open(tmp_path / "idx", write=True) as st:
            st.replace_file("/a/new.wav", 1, 1.0, "n", 5.0, [(0, 1)], _unit(np.random.default_rng(3), 1))
            st.save_graph()
    monkeypatch.setattr(graph.os, "replace", real)
    assert _stamp(tmp_path / "idx") == before
    with Store.open(tmp_path / "idx") as st:
        st.graph()
        assert st.graph_notes == ["graph behind the database (1 missing, 0 stale)"]  # caught up, not rebuilt
    with Store.open(tmp_path / "idx", write=True) as st:
        st.graph()
    files = {p.name for p in (tmp_path / "idx").glob("*.usearch")}
    assert files == {e["file"] for e in _stamp(tmp_path / "idx")["shards"]}  # the orphan went with the next save


def test_an_index_on_a_read_only_folder_is_searched_from_its_shards(tmp_path):
    made = _fill(tmp_path / "idx")
    ro = tmp_path / "ro"
    shutil.copytree(tmp_path / "idx", ro)
    (ro / "lock").unlink(missing_ok=True)
    for p in ro.iterdir():
        p.chmod(0o444)
    ro.chmod(0o555)
    try:
        with Store.open(ro) as st:
            assert st.search(made["/a/001.wav"][1], 1)[0].path == "/a/001.wav"
    finally:
        ro.chmod(0o755)


def test_changing_the_engine_rebuilds_the_graph_and_removes_the_other_files(tmp_path):
    made = _fill(tmp_path / "idx", ann="hnsw")
    with Store.open(tmp_path / "idx", write=True) as st:
        st.set_ann_engine("usearch")
        st.graph()
        assert st.graph_notes == ["graph engine changed (hnsw to usearch)"]
    assert not (tmp_path / "idx" / "vectors.hnsw").exists() and list((tmp_path / "idx").glob("vectors.*.usearch"))
    with Store.open(tmp_path / "idx") as st:
        assert st.search(made["/a/002.wav"][0], 1)[0].path == "/a/002.wav"


def test_auto_switches_to_usearch_at_its_size(tmp_path, monkeypatch):
    monkeypatch.setattr(graph, "USEARCH_FROM", 50)
    _fill(tmp_path / "small", files=4, ann="auto")
    _fill(tmp_path / "large", files=6, ann="auto")
    with Store.open(tmp_path / "small") as s, Store.open(tmp_path / "large") as g:
        assert s.ann_engine() == "hnsw" and g.ann_engine() == "usearch"
        assert isinstance(g.graph(), ShardedUsearch)


def test_the_transcript_graph_uses_the_same_engine(tmp_path):
    _fill(tmp_path / "idx", files=3)
    rng = np.random.default_rng(4)
    with Store.open(tmp_path / "idx", write=True) as st:
        st.replace_file("/a/said.wav", 1, 1.0, "s", 2.0, [(0, 1), (1, 2)], _unit(rng, 2), texts=["hello there", "goodbye"],
                        text_vectors=_unit(rng, 2))
        st.transcript_graph()
    assert json.loads((tmp_path / "idx" / "transcripts.json").read_text())["engine"] == "usearch"
    with Store.open(tmp_path / "idx") as st:
        assert isinstance(st.transcript_graph(), ShardedUsearch)
        assert len(st.transcript_search(_unit(rng, 1)[0], 5)) == 2


def test_a_full_shard_stays_as_written_and_new_windows_open_the_next(tmp_path):
    rng = np.random.default_rng(6)
    g = ShardedUsearch(DIM, shard_size=50)
    v = _unit(rng, 120)
    g.add_items(v, np.arange(1, 121))
    assert [s.count for s in g.shards] == [50, 50, 20]
    labels, dists = g.knn_query(v[77], k=1)
    assert labels[0][0] == 78 and dists[0][0] < 0.05


def test_a_path_filter_is_answered_from_the_files_it_names(tmp_path):
    made = _fill(tmp_path / "idx")
    q = made["/a/012.wav"][4]
    with Store.open(tmp_path / "idx") as st:
        hits = st.search(q, 5, path_glob="/a/01*")
        assert hits[0].path == "/a/012.wav" and hits[0].score > 0.999
        assert {h.path for h in hits} <= {f"/a/01{d}.wav" for d in range(10)}
        assert [h.path for h in st.search(q, 3, path_glob="/a/02*")][0].startswith("/a/02")


def test_auto_does_not_flip_back_just_under_its_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr(graph, "USEARCH_FROM", 50)
    _fill(tmp_path / "idx", files=6, ann="auto")  # 60 windows: usearch
    with Store.open(tmp_path / "idx", write=True) as st:
        st.remove_files(["/a/000.wav", "/a/001.wav"])  # 40: under 50, above 25
    with Store.open(tmp_path / "idx") as st:
        assert st.ann_engine() == "usearch" and st.graph_notes == []


def _fill_read(index: Path, files: int = 12, per_file: int = 8) -> dict[str, np.ndarray]:
    """Like _fill, with a transcript and its text vector for every window (what hybrid search reads)."""
    rng = np.random.default_rng(3)
    made = {}
    with Store.open(index, write=True, model_id="m", dim=DIM) as st:
        st.set_ann_engine("usearch")
        for f in range(files):
            v, t = _unit(rng, per_file), _unit(rng, per_file)
            st.replace_file(f"/a/{f:03d}.wav", 1, 1.0, f"h{f}", float(per_file), [(i, i + 1) for i in range(per_file)], v,
                            texts=[f"line {i} of file {f}" for i in range(per_file)], text_vectors=t)
            made[f"/a/{f:03d}.wav"] = v
    return made


def test_a_reader_kept_open_skips_windows_another_process_pruned(tmp_path):
    made = _fill_read(tmp_path / "idx")
    gone = [f"/a/{f:03d}.wav" for f in range(0, 12, 2)]
    with Store.open(tmp_path / "idx") as reader:
        q = made[gone[1]][2]
        assert reader.search(q, 5)[0].path == gone[1]  # the graph is mapped now, and holds those windows
        assert reader.transcript_search(q, 5)
        with Store.open(tmp_path / "idx", write=True) as writer:  # another process's `clasp index --prune`
            assert writer.remove_files(gone) == len(gone)
            writer.save_graphs()
        for query in [q, made["/a/003.wav"][0], *_unit(np.random.default_rng(5), 20)]:
            hits = reader.search(query, 10)
            assert hits and not {h.path for h in hits} & set(gone)
            assert not {h.path for h in reader.transcript_search(query, 10)} & set(gone)
        assert reader.search(made["/a/003.wav"][0], 1)[0].path == "/a/003.wav"
        assert reader.search(q, 50, path_glob="/a/00[0-3].wav")  # the exact path for a narrow --path too
    with Store.open(tmp_path / "idx", write=True) as st:
        assert st.check() == []


@pytest.mark.parametrize("ann", ["hnsw", "usearch"])
def test_a_reader_kept_open_sees_windows_another_process_added_to_its_scope(tmp_path, ann):
    _fill(tmp_path / "idx", files=6, ann=ann)
    new = _unit(np.random.default_rng(9), 10)
    with Store.open(tmp_path / "idx") as reader:
        assert {h.path for h in reader.search(new[3], 5, path_glob="/a/*")} <= {f"/a/{f:03d}.wav" for f in range(6)}
        with Store.open(tmp_path / "idx", write=True, model_id="m", dim=DIM) as writer:  # another `clasp index`
            writer.replace_file("/a/new.wav", 1, 1.0, "hn", 10.0, [(i, i + 1) for i in range(10)], new)
            writer.save_graphs()
        hit = reader.search(new[3], 5, path_glob="/a/*")[0]  # the scope's remembered vectors were read again
        assert hit.path == "/a/new.wav" and hit.score > 0.999


@pytest.mark.parametrize("ann", ["hnsw", "usearch"])
def test_a_narrow_scope_is_scored_exactly_in_each_space_even_where_some_windows_were_not_read(tmp_path, ann):
    rng = np.random.default_rng(11)
    speech, text, in_scope = {}, {}, set()
    with Store.open(tmp_path / "idx", write=True, model_id="m", dim=DIM) as st:
        st.set_ann_engine(ann)
        for f in range(8):
            v, t = _unit(rng, 10), _unit(rng, 10)
            texts = [f"line {i}" if f % 2 == 0 else "" for i in range(10)]  # odd files: nothing was said
            ids = st.replace_file(f"/a/{f:03d}.wav", 1, 1.0, f"h{f}", 10.0, [(i, i + 1) for i in range(10)], v,
                                  texts=texts, text_vectors=t)
            speech.update(zip(ids, v))
            text.update((i, row) for i, row, said in zip(ids, t, texts) if said)
            in_scope.update(ids if f < 4 else [])
    q = _unit(rng, 1)[0]
    with Store.open(tmp_path / "idx") as st:
        for search, vectors in ((st.search, speech), (st.transcript_search, text)):
            hits = search(q, 7, path_glob="/a/00[0-3].wav")
            truth = sorted((i for i in in_scope if i in vectors), key=lambda i: -float(vectors[i] @ q))[:7]
            assert [h.passage_id for h in hits] == truth
            assert all(abs(h.score - float(vectors[h.passage_id] @ q)) < 2e-3 for h in hits)  # float16 as stored

