"""Fixtures of the web tests: headless Chromium (see ``browser.py``)."""

from .browser import browser_page, chromium

__all__ = ["browser_page", "chromium"]
