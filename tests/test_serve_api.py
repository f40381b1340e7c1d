"""`clasp serve`'s HTTP API over a real index of examples/: the same JSON as the CLI, audio by passage id only."""

from __future__ import annotations

import http.client
import io
import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import soundfile as sf
from typer.testing import CliRunner

from clasp_cli.cli import app
from clasp_cli.indexer import index_paths
from clasp_cli.store import Store

from conftest import EXAMPLES

QUERIES = [
    "rain at the weekend", "the budget for the library", "how are stars born", "tomato soup recipe",
    "the football match ended in a draw", "how do I get to the station", "sleep and health", "a new product launch",
    "das Wetter am Wochenende", "la recette de la soupe", "el partido de fútbol", "星星是怎么形成的",
]


def cli_json(*args: str) -> dict:
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def get(url: str, **params) -> httpx.Response:
    return httpx.get(url, params=params, timeout=30)


def raw_get(base: str, path: str) -> tuple[int, str]:
    """A request whose path goes out byte for byte (httpx and browsers would normalise the dots away)."""
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read().decode(errors="replace")
    conn.close()
    return r.status, body


def without_audio_url(payload: dict) -> dict:
    return {**payload, "results": [{k: v for k, v in r.items() if k not in ("audio_url", "weak")} for r in payload["results"]]}


@pytest.mark.parametrize("cli_args, params", [
    (["--top-k", "5"], {"top_k": 5}),
    (["--top-k", "3", "--path", "radio"], {"top_k": 3, "path": "radio"}),
    (["--min-score", "0.014"], {"min_score": 0.014}),  # below the two best hits of clasp-base, above the rest
    (["--mode", "vector"], {"mode": "vector"}),
])
def test_search_is_exactly_clasp_search_json_plus_an_audio_url(served, examples_index, cli_args, params):
    query = "rain at the weekend"
    expected = cli_json("search", query, "--index", str(examples_index), "--device", "cpu", *cli_args)
    r = get(served + "api/search", q=query, **params)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    payload = r.json()
    assert set(payload) == {"query", "results"} and payload["results"]
    for hit in payload["results"]:
        assert set(hit) == {"rank", "score", "path", "start", "end", "passage_start", "passage_end", "speaker", "audio_url", "weak"}
        assert hit["audio_url"].startswith(served)
    assert without_audio_url(payload) == expected


def test_reranked_search_is_exactly_clasp_search_json_rerank_plus_an_audio_url(tmp_path, examples_index, start_server):
    index = tmp_path / "index"
    shutil.copytree(examples_index, index)  # reranking caches transcripts in it
    query = "rain at the weekend"
    expected = cli_json("search", query, "--index", str(index), "--device", "cpu", "--rerank", "2")
    with Store.open(index) as st:  # the CLI's rerank read two windows and kept them; the server reuses them
        assert st.db.execute("SELECT COUNT(*) FROM transcripts").fetchone()[0] == 2
    url = start_server(index)
    r = httpx.get(url + "api/search", params={"q": query, "rerank": 2}, headers={"X-Clasp-Request": "1"}, timeout=120)
    assert without_audio_url(r.json()) == expected


def test_weak_marks_the_hits_below_the_modes_auto_threshold(examples_transcribed, start_server):
    query = "how are stars born"
    url = start_server(examples_transcribed)
    every = get(url + "api/search", q=query, top_k=10).json()["results"]
    r = CliRunner().invoke(app, ["search", query, "--index", str(examples_transcribed), "--device", "cpu", "--min-score", "auto", "--json"])
    kept = json.loads(r.stdout)["results"]
    assert kept and len(kept) < len(every)
    assert [h["weak"] for h in every] == [i >= len(kept) for i in range(len(every))]


def test_info_is_exactly_clasp_info_json(served, examples_index):
    expected = cli_json("info", "--index", str(examples_index))
    assert get(served + "api/info").json() == expected


def test_audio_url_is_decodable_audio_as_long_as_the_hit(served):
    # Every passage of the archive: wav, flac, mp3 and ogg recordings.
    hits = get(served + "api/search", q="a recording", top_k=100).json()["results"]
    assert {Path(h["path"]).suffix for h in hits} >= {".wav", ".flac", ".mp3", ".ogg"}
    for hit in hits:
        r = get(hit["audio_url"])
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        samples, rate = sf.read(io.BytesIO(r.content))
        assert abs(len(samples) / rate - (hit["end"] - hit["start"])) <= 0.1, hit


def test_whole_recordings_answer_range_requests(served):
    hit = get(served + "api/search", q="weather forecast", top_k=1).json()["results"][0]
    url = hit["audio_url"].removesuffix("/audio") + "/recording"
    data = Path(hit["path"]).read_bytes()

    full = get(url)
    assert full.status_code == 200 and full.content == data and full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-type"].startswith("audio/")

    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"

    tail = httpx.get(url, headers={"Range": "bytes=-64"})
    assert tail.status_code == 206 and tail.content == data[-64:]

    beyond = httpx.get(url, headers={"Range": f"bytes={len(data) + 10}-"})
    assert beyond.status_code == 416


@pytest.mark.parametrize("path", ["/passages/999999/audio", "/passages/999999/recording", "/passages/-1/audio",
                                  "/passages/abc/audio", f"/passages/{2**70}/audio"])
def test_unknown_passage_ids_are_404(served, path):
    status, body = raw_get(served, path)
    assert status == 404 and "error" in json.loads(body)


@pytest.mark.parametrize("path", [
    "/passages/../../../../../../etc/passwd",
    "/passages/1/../../../../../../etc/passwd",
    "/passages/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd/recording",
    "/static/../../../../../../etc/passwd",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2fcli%2fserve.py",
    "/etc/passwd",
])
def test_paths_in_urls_never_reach_the_file_system(served, path):
    status, body = raw_get(served, path)
    assert status == 404 and "root:" not in body and "import" not in body


def _serve_one_recording(tmp_path, shipped_model, start_server):
    """An index of one copied recording, served: (the archive folder, the server's URL)."""
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copy(EXAMPLES / "radio" / "weather-forecast.mp3", archive)
    index_paths([archive], tmp_path / "index", model=shipped_model)
    return archive, start_server(tmp_path / "index")


def test_a_recording_deleted_since_indexing_is_404(tmp_path, shipped_model, start_server):
    archive, url = _serve_one_recording(tmp_path, shipped_model, start_server)
    hit = get(url + "api/search", q="weather", top_k=1).json()["results"][0]
    assert get(hit["audio_url"]).status_code == 200

    (archive / "weather-forecast.mp3").unlink()
    for audio in (hit["audio_url"], hit["audio_url"].removesuffix("/audio") + "/recording"):
        r = get(audio)
        assert r.status_code == 404 and "gone" in r.json()["error"]


def test_a_newer_index_is_picked_up_without_a_restart(tmp_path, shipped_model, start_server):
    archive, url = _serve_one_recording(tmp_path, shipped_model, start_server)
    assert get(url + "api/info").json()["files"] == 1

    shutil.copy(EXAMPLES / "lectures" / "astronomy.flac", archive)
    index_paths([archive], tmp_path / "index", model=shipped_model)  # what a concurrent `clasp index` writes
    deadline = time.monotonic() + 120  # reached only by a server that never reopens
    paths: set[str] = set()
    while time.monotonic() < deadline and not any(p.endswith("astronomy.flac") for p in paths):
        paths = {h["path"] for h in get(url + "api/search", q="stars", top_k=10).json()["results"]}
    assert any(p.endswith("astronomy.flac") for p in paths)
    assert get(url + "api/info").json()["files"] == 2


@pytest.mark.parametrize("params, says", [
    ({}, "missing q"),
    ({"q": "   "}, "empty query"),
    ({"q": "rain", "top_k": "0"}, "top_k must be at least 1"),
    ({"q": "rain", "top_k": "ten"}, "top_k"),
    ({"q": "rain", "min_score": "high"}, "min_score"),
    ({"q": "rain", "mode": "hybrid"}, "needs transcripts"),
    ({"q": "rain", "rerank": "-1"}, "rerank"),
    ({"q": "rain", "rerank": "all"}, "rerank"),
    ({"q": "rain", "mode": "fuzzy"}, "mode must be one of"),
])
def test_bad_search_requests_are_400_with_a_json_message(served, params, says):
    r = get(served + "api/search", **params)
    assert r.status_code == 400 and says in r.json()["error"]


def test_unknown_routes_are_404_json(served):
    r = get(served + "api/nothing")
    assert r.status_code == 404 and r.json()["error"]


def test_eight_clients_with_25_queries_each_all_succeed(served):
    def client(n: int) -> list[tuple[int, int]]:
        with httpx.Client(timeout=60) as c:
            out = []
            for i in range(25):
                r = c.get(served + "api/search", params={"q": QUERIES[(n + i) % len(QUERIES)], "top_k": 5})
                out.append((r.status_code, len(r.json()["results"])))
            return out

    with ThreadPoolExecutor(8) as pool:
        answers = [a for batch in pool.map(client, range(8)) for a in batch]
    assert len(answers) == 200 and all(a == (200, 5) for a in answers)


def test_on_loopback_only_loopback_host_names_are_answered(served):
    # A page on another site that rebinds its name to 127.0.0.1 sends its own name as Host.
    assert httpx.get(served + "api/info", headers={"Host": "attacker.example"}).status_code == 400
    assert httpx.get(served + "api/info", headers={"Host": "localhost"}).status_code == 200


def test_binding_beyond_loopback_warns(tmp_path):
    r = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--index", str(tmp_path / "none")])
    assert "warning" in r.output and "anyone who can reach" in r.output
    assert r.exit_code != 0 and "no index at" in r.output  # no index: nothing was bound


def test_loopback_is_the_quiet_default(tmp_path):
    r = CliRunner().invoke(app, ["serve", "--index", str(tmp_path / "none")])
    assert "warning" not in r.output and "no index at" in r.output
