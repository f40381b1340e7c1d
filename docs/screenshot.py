"""Remake docs/serve.png: `clasp serve` over examples/archive indexed on the defaults (with
transcripts), one search, in Debian's headless Chromium (what the page tests drive).

    .venv/bin/python docs/screenshot.py [--query "the council voted on the budget"]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--query", default="the council voted on the budget")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "serve.png")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        clasp = [sys.executable, "-m", "clasp_cli"]
        subprocess.run([*clasp, "index", str(ROOT / "examples" / "archive"), "--index", str(index)], check=True,
                       stdout=subprocess.DEVNULL)
        port = free_port()
        server = subprocess.Popen([*clasp, "serve", "--index", str(index), "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + 120
            while True:  # the server loads the model before it listens
                try:
                    httpx.get(base + "api/info", timeout=2).raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("clasp serve did not start")
                    time.sleep(0.5)
            options = webdriver.ChromeOptions()
            options.binary_location = "/usr/bin/chromium"
            for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                         "--window-size=1100,1450", f"--user-data-dir={Path(tmp) / 'profile'}"):
                options.add_argument(flag)
            driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
            try:
                driver.get(base)
                driver.find_element(By.ID, "q").send_keys(args.query, Keys.ENTER)
                WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results .hit"))
                WebDriverWait(driver, 60).until(lambda d: "passages" in d.find_element(By.ID, "info").text)
                driver.save_screenshot(str(args.out))
            finally:
                driver.quit()
        finally:
            server.terminate()
            server.wait(30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
