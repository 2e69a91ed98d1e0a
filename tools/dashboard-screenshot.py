#!/usr/bin/env python3
"""Take the README's dashboard picture from a real run: `wanmock serve` (flaky preset, 30x time),
a `wanmock load` run on each provider, a careless client polling one job far too often, then the
dashboard in headless Chromium (Debian's /usr/bin/chromium: tools/ensure-system-packages).

    .venv/bin/python tools/dashboard-screenshot.py docs/dashboard.png
"""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
from playwright.sync_api import sync_playwright

PORT = 18765
URL = f"http://127.0.0.1:{PORT}"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]


def main(target: str) -> None:
    server = subprocess.Popen([".venv/bin/wanmock", "serve", "--port", str(PORT), "--time-scale",
                               "30", "--preset", "flaky", "--seed", "3"])
    try:
        for _ in range(100):
            try:
                httpx.get(f"{URL}/__admin/health")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        loads = [subprocess.Popen([".venv/bin/wanmock", "load", "--provider", provider,
                                   "--base-url", URL, "--clients", "6", "--duration", "25",
                                   "--poll-interval", "2", "--policy", "fixed"],
                                  stdout=subprocess.PIPE, text=True)
                 for provider in ("therouter", "runcomfy")]
        careless = {"authorization": "Bearer careless-ci-client"}
        job = httpx.post(f"{URL}/v1/images/generations?async=true", headers=careless,
                         json={"model": "wan/wan2.2-t2i-flash", "prompt": "a red fox"}).json()["id"]
        for _ in range(120):
            httpx.get(f"{URL}/v1/jobs/{job}", headers=careless)
            time.sleep(0.05)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{URL}/__admin/")
            page.wait_for_selector('[data-metric="jobs.therouter.queued"]')
            time.sleep(3.5)  # two refreshes: request rates come from successive totals
            page.click("#recent button >> nth=0")
            page.wait_for_selector("#timeline")
            page.screenshot(path=target, full_page=True)
            browser.close()
        for load in loads:
            print(load.communicate()[0])
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/dashboard.png")
