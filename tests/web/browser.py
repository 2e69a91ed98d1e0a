"""Headless Chromium for browser tests: Debian's ``/usr/bin/chromium`` driven by Playwright.

Never ``playwright install`` (it downloads a browser build and fails offline): the system browser
comes from ``tools/ensure-system-packages``. The fixtures skip, saying why, only where the browser
cannot be started (not installed, Playwright missing, or the launch fails); any later failure is a
test failure.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("WANMOCK_CHROMIUM", "/usr/bin/chromium")
#: Flags for a closed network: without the background-networking ones Chromium keeps dialling
#: Google's hosts, which this machine refuses.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: Console errors Chromium logs for answers the page handles itself (a 401 asks for the token).
HANDLED = "Failed to load resource: the server responded with a status of 4"
#: Bound on every wait: a page that does not show what it should fails fast.
TIMEOUT_MS = 5_000


def _skip_reason() -> str | None:
    if shutil.which(CHROMIUM) is None:
        return (f"no Chromium at {CHROMIUM}: run tools/ensure-system-packages (as root) "
                "or set WANMOCK_CHROMIUM")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install -e '.[dev]'"
    return None


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A persistent Chromium context on a fresh profile dir (one per test module)."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import Error, sync_playwright

    manager = sync_playwright().start()
    try:
        try:
            context = manager.chromium.launch_persistent_context(
                tmp_path_factory.mktemp("chromium-profile"), executable_path=CHROMIUM,
                args=CHROMIUM_ARGS, headless=True, viewport={"width": 1400, "height": 1000})
        except Error as exc:
            pytest.skip(f"Chromium at {CHROMIUM} did not start: {str(exc).splitlines()[0]}")
        context.set_default_timeout(TIMEOUT_MS)
        yield context
        context.close()
    finally:
        manager.stop()


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[Any]:
    """A new tab; fails the test at teardown if the page threw a JavaScript error."""
    page = chromium.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith(HANDLED) else None)
    yield page
    page.close()
    assert not errors, "the page logged errors:\n" + "\n".join(errors)


def leave_pages(context: Any) -> None:
    """Point every open tab at ``about:blank``: call before stopping a server a page polls."""
    for tab in context.pages:
        tab.goto("about:blank")


def shown_numbers(page: Any) -> dict[str, tuple[str, str]]:
    """Every ``data-metric`` element on the page: name -> (data-value, visible text)."""
    rows = page.eval_on_selector_all(
        "[data-metric]", "els => els.map(e => [e.dataset.metric, e.dataset.value, e.textContent])")
    shown: dict[str, tuple[str, str]] = {}
    for name, value, text in rows:
        assert name not in shown, f"data-metric {name!r} appears twice on the page"
        shown[name] = (value, text)
    return shown


def _text_problem(name: str, value: float, text: str) -> str | None:
    """Why ``text`` does not show ``value`` (``None`` if it does): the clock as a UTC time,
    whole numbers as they are, others to two decimals at most."""
    text = text.strip()
    if name == "clock.now":
        want = datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return None if text == want else f"shows {text!r}, expected {want!r}"
    if float(value).is_integer():
        want = str(int(value))
        return None if text == want else f"shows {text!r}, expected {want!r}"
    try:
        shown = float(text)
    except ValueError:
        return f"shows {text!r}, not a number (expected {value})"
    if abs(shown - value) > 0.005 + 1e-9 or len(text.partition(".")[2]) > 2:
        return f"shows {text!r}, expected {value} to two decimals"
    return None


def mismatches(shown: Mapping[str, tuple[str, str]], expected: Mapping[str, float],
               *, ignore: tuple[str, ...] = ("rate.", "timeline.")) -> list[str]:
    """How the page's numbers differ from ``expected`` (a :func:`flat_numbers` result).

    Each expected number must be on the page with that exact ``data-value`` and a visible text
    showing it; a page number with a value that nobody expected is a mismatch too (names starting
    with ``ignore`` are the page's own arithmetic or the drill-down's)."""
    problems = []
    for name, value in expected.items():
        if name not in shown:
            problems.append(f"{name}: expected {value}, not on the page")
            continue
        raw, text = shown[name]
        if raw == "" or not math.isclose(float(raw), value, rel_tol=1e-9, abs_tol=1e-9):
            problems.append(f"{name}: data-value {raw!r}, expected {value}")
        elif (problem := _text_problem(name, value, text)) is not None:
            problems.append(f"{name}: {problem}")
    for name, (raw, _) in shown.items():
        if raw != "" and name not in expected and not name.startswith(ignore):
            problems.append(f"{name}: the page shows {raw} but the data has no such number")
    return problems


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
