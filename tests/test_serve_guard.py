"""`clasp serve` answers only its own page and loopback names, and no request can make it work without bound."""

from __future__ import annotations

import shutil
import threading
from urllib.parse import urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from clasp_cli.cli import app
from clasp_cli.serve.guard import host_name, refusal


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
])
def test_a_request_from_another_site_is_403_json(served, headers):
    r = httpx.get(served + "api/search", params={"q": "rain", "rerank": 1000000000}, headers=headers)
    assert r.status_code == 403 and "other sites" in r.json()["error"]


def test_the_servers_own_page_and_plain_clients_are_answered(served):
    own = served.rstrip("/")
    assert httpx.get(served + "api/search", params={"q": "rain"}, headers={"Origin": own, "Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert httpx.get(served + "api/search", params={"q": "rain"}, headers={"Sec-Fetch-Site": "none"}).status_code == 200
    assert httpx.get(served + "api/search", params={"q": "rain"}).status_code == 200  # curl sends neither header


def test_a_foreign_host_name_is_refused_in_json(served):
    r = httpx.get(served + "api/info", headers={"Host": "attacker.example"})
    assert r.status_code == 400 and "attacker.example" in r.json()["error"]


@pytest.mark.parametrize("params, says", [
    ({"q": "rain", "rerank": "51"}, "rerank is at most 50 on this server (clasp serve --max-rerank)"),
    ({"q": "rain", "rerank": "1000000000"}, "rerank is at most 50"),
    ({"q": "rain", "top_k": "101"}, "top_k is at most 100"),
])
def test_rerank_and_top_k_are_capped(served, params, says):
    r = httpx.get(served + "api/search", params=params)
    assert r.status_code == 400 and says in r.json()["error"]


def test_work_that_transcribes_needs_a_header_no_other_site_can_send(served):
    # An <img> on another page, in a browser that sends neither Origin nor Sec-Fetch-Site.
    r = httpx.get(served + "api/search", params={"q": "rain", "rerank": 5})
    assert r.status_code == 400 and "X-Clasp-Request" in r.json()["error"]


def test_api_errors_name_the_parameter_not_the_cli_flag(served):
    r = httpx.get(served + "api/search", params={"q": "rain", "min_score": "nan"})
    assert r.status_code == 400
    assert "min_score must be a finite number" in r.json()["error"] and "--" not in r.json()["error"]


def test_a_plain_search_is_answered_while_a_rerank_is_still_running(tmp_path, examples_index, start_server):
    index = tmp_path / "index"
    shutil.copytree(examples_index, index)
    url = start_server(index)
    done = threading.Event()
    reranked: list[httpx.Response] = []

    def rerank() -> None:
        reranked.append(httpx.get(url + "api/search", params={"q": "tomato soup", "rerank": 12},
                                  headers={"X-Clasp-Request": "1"}, timeout=300))
        done.set()

    threading.Thread(target=rerank, daemon=True).start()
    plain = httpx.get(url + "api/search", params={"q": "rain at the weekend"}, timeout=300)
    # The order of events is the behaviour: a plain search never queues behind a rerank.
    # (How fast it answers meanwhile is measured in benchmarks/serve_latency.py.)
    assert plain.status_code == 200 and plain.json()["results"]
    assert not done.is_set(), "the rerank finished first, so the plain search never had to pass it"
    assert done.wait(300) and reranked[0].status_code == 200 and "text" in reranked[0].json()["results"][0]


def test_any_loopback_address_given_to_host_is_answered(examples_index, start_server):
    url = start_server(examples_index, "--host", "127.0.0.2")
    assert urlsplit(url).hostname == "127.0.0.2"
    assert httpx.get(url + "api/info").status_code == 200


@pytest.mark.parametrize("header, name", [("127.0.0.1:8765", "127.0.0.1"), ("[::1]:8765", "::1"), ("LocalHost", "localhost"),
                                          ("::1", "::1")])
def test_host_names_are_read_without_their_port(header, name):
    assert host_name(header) == name


def test_an_origin_on_another_port_is_another_site():
    assert refusal({"host": "127.0.0.1:8765", "origin": "http://127.0.0.1:9999"}, ("127.0.0.1",))[0] == 403


@pytest.mark.parametrize("command", [["search", "rain"], ["serve"]])
def test_device_cuda_without_a_gpu_is_refused_as_in_index(tmp_path, command):
    from clasp_cli.devices import cuda_available

    if cuda_available():
        pytest.skip("this machine has a GPU")
    r = CliRunner().invoke(app, [*command, "--index", str(tmp_path / "none"), "--device", "cuda"])
    assert r.exit_code == 2 and "no CUDA device is available" in r.output


def test_a_recording_whose_name_is_not_utf8_is_served(tmp_path, shipped_model, start_server):
    import os

    from clasp_cli.indexer import index_paths

    from conftest import EXAMPLES

    folder = tmp_path / "archive"
    folder.mkdir()
    src = sorted(p for p in (EXAMPLES).rglob("*.wav"))[0]
    odd = os.fsencode(str(folder)) + b"/caf\xe9.wav"
    shutil.copy(src, odd)
    index_paths([folder], tmp_path / "index", model=shipped_model)
    url = start_server(tmp_path / "index")
    hit = httpx.get(url + "api/search", params={"q": "anything", "top_k": 1}).json()["results"][0]
    assert hit["path"].endswith("caf\\xe9.wav")
    audio = httpx.get(hit["audio_url"])
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    whole = httpx.get(hit["audio_url"].replace("/audio", "/recording"))
    assert whole.status_code == 200 and whole.content == open(odd, "rb").read()
