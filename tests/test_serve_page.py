"""The search page in a real headless Chromium (Debian's chromium + chromium-driver), against `clasp serve`."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(os.environ.get("CLASP_TEST_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts"))
QUERY = "the council voted on the budget"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are required in CI (make test installs them)")
        pytest.skip("chromium / chromium-driver not installed (make test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1100,1450",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def search_in_page(browser, base: str, query: str) -> list:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(base)
    browser.find_element(By.ID, "q").send_keys(query, Keys.ENTER)
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results .hit"))
    return browser.find_elements(By.CSS_SELECTOR, "#results .hit")


def current_time(browser, audio) -> float:
    return browser.execute_script("return arguments[0].currentTime", audio)


def test_type_a_query_see_results_press_play_and_hear_it(served, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    hits = search_in_page(browser, served, QUERY)
    expected = httpx.get(served + "api/search", params={"q": QUERY, "top_k": 10}).json()["results"]
    assert [h.find_element(By.CSS_SELECTOR, ".file").text for h in hits] == [r["path"] for r in expected]
    assert parse_qs(urlsplit(browser.current_url).query)["q"] == [QUERY]  # bookmarkable
    WebDriverWait(browser, 30).until(lambda d: "passages" in d.find_element(By.ID, "info").text)  # clasp info

    browser.switch_to.active_element.send_keys(Keys.ARROW_DOWN)  # from the search box into the results
    assert browser.switch_to.active_element == hits[0]
    browser.switch_to.active_element.send_keys(Keys.SPACE)
    audio = hits[0].find_element(By.TAG_NAME, "audio")
    WebDriverWait(browser, 30).until(lambda d: current_time(d, audio) > 1.0)
    assert not browser.execute_script("return arguments[0].paused", audio)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "serve-page.png"))


def test_arrow_keys_move_between_hits_and_enter_plays_the_selected_one(served, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    hits = search_in_page(browser, served, "rain at the weekend")
    for key in (Keys.ARROW_DOWN, Keys.ARROW_DOWN, Keys.ARROW_DOWN, Keys.ARROW_UP):  # box -> 1st -> 2nd -> 3rd -> 2nd
        browser.switch_to.active_element.send_keys(key)
    assert browser.switch_to.active_element == hits[1] and "selected" in hits[1].get_attribute("class")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    audio = hits[1].find_element(By.TAG_NAME, "audio")
    WebDriverWait(browser, 30).until(lambda d: current_time(d, audio) > 0.3)
    others = [h.find_element(By.TAG_NAME, "audio") for h in hits if h != hits[1]]
    assert all(browser.execute_script("return arguments[0].paused", a) for a in others)


def test_continue_plays_on_in_the_whole_recording(served, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    hits = search_in_page(browser, served, "rain at the weekend")
    hit = next(h for h in hits if not h.find_element(By.CSS_SELECTOR, ".span").text.startswith("0:00"))
    start = httpx.get(served + "api/search", params={"q": "rain at the weekend", "top_k": 10}).json()["results"][hits.index(hit)]["start"]
    hit.find_element(By.CSS_SELECTOR, ".more").click()
    audio = hit.find_element(By.TAG_NAME, "audio")
    assert "/recording#t=" in audio.get_attribute("src")
    # The recording starts where the passage does and keeps going.
    WebDriverWait(browser, 30).until(lambda d: current_time(d, audio) > start + 0.3)


def test_a_bookmarked_search_opens_with_its_results(served, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(served + "?q=tomato+soup&top_k=7")
    WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .hit")) == 7)
    assert browser.find_element(By.ID, "q").get_attribute("value") == "tomato soup"


def test_the_page_needs_nothing_but_the_server():
    static = Path(__file__).parents[1] / "clasp_cli" / "serve" / "static"
    for f in static.iterdir():
        text = f.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, f.name


def test_each_hit_shows_its_place_in_the_recording_and_the_search_links_its_json(served, browser):
    from selenium.webdriver.common.by import By

    hits = search_in_page(browser, served, "rain at the weekend")
    expected = httpx.get(served + "api/search", params={"q": "rain at the weekend", "top_k": 10}).json()["results"]
    for hit, r in zip(hits, expected):
        m, s = divmod(r["start"], 60)
        assert hit.find_element(By.CSS_SELECTOR, ".at").text == f"at {int(m)}:{s:04.1f}"
    link = browser.find_element(By.ID, "json").get_attribute("href")
    assert urlsplit(link).path == "/api/search" and parse_qs(urlsplit(link).query)["q"] == ["rain at the weekend"]
    assert httpx.get(link).json()["results"] == expected


def test_weak_matches_sit_below_a_visible_cut(served, browser):
    from selenium.webdriver.common.by import By

    query = "xq zv wy"
    hits = search_in_page(browser, served, query)
    weak = [r["weak"] for r in httpx.get(served + "api/search", params={"q": query, "top_k": 10}).json()["results"]]
    assert any(weak)
    assert ["weak" in h.get_attribute("class") for h in hits] == weak
    items = browser.find_elements(By.CSS_SELECTOR, "#results > li")
    cut = next(i for i, el in enumerate(items) if "cut" in el.get_attribute("class"))
    assert "weak" in items[cut + 1].get_attribute("class") and all("weak" not in el.get_attribute("class") for el in items[:cut])


def test_an_index_without_transcripts_offers_rerank_and_one_with_them_marks_the_query_words(
        served, browser, examples_transcribed, start_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(served)
    WebDriverWait(browser, 30).until(lambda d: "passages" in d.find_element(By.ID, "info").text)
    assert browser.find_element(By.ID, "rerank-box").is_displayed()
    url = start_server(examples_transcribed)
    hits = search_in_page(browser, url, QUERY)
    assert not browser.find_element(By.ID, "rerank-box").is_displayed()
    marked = {m.text.lower() for m in hits[0].find_elements(By.CSS_SELECTOR, ".text mark")}
    assert marked & {"council", "budget", "voted"}, hits[0].text
    modes = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#mode option")]
    assert modes == ["", "hybrid", "vector", "keyword"]


def test_the_mode_menu_switches_the_search_and_the_url_keeps_it(served, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    query = "rain at the weekend"
    search_in_page(browser, served, query)
    Select(browser.find_element(By.ID, "mode")).select_by_visible_text("vector")
    browser.find_element(By.ID, "q").send_keys(Keys.ENTER)
    WebDriverWait(browser, 30).until(lambda d: "mode=vector" in d.find_element(By.ID, "json").get_attribute("href"))
    assert parse_qs(urlsplit(browser.current_url).query)["mode"] == ["vector"]
    expected = httpx.get(served + "api/search", params={"q": query, "top_k": 10, "mode": "vector"}).json()["results"]
    WebDriverWait(browser, 30).until(lambda d: [h.find_element(By.CSS_SELECTOR, ".file").text
                                                for h in d.find_elements(By.CSS_SELECTOR, "#results .hit")]
                                     == [r["path"] for r in expected])
