"""The soak's plateau verdict (``benchmarks/soak.py``), on two real runs' RSS samples: one whose
caches were still filling (a leak, as far as the rule can tell) and one that levelled off."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"
spec = importlib.util.spec_from_file_location("wanmock_soak", SOAK)
assert spec is not None and spec.loader is not None
soak = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = soak  # its dataclasses look their module up
spec.loader.exec_module(soak)

#: RSS (MB) every 30 s of two 5-minute runs on this box.
GROWING = [54.5, 71.7, 82.1, 92.9, 101.7, 109.8, 129.7, 125.2, 138.4, 134.3, 147.9]
LEVEL = [46.4, 63.6, 64.9, 68.6, 64.9, 65.1, 74.1, 65.2, 65.3, 74.2, 74.4]


def samples(rss: list[float]) -> list[tuple[float, float, int, object]]:
    return [(30.0 * i, mb, 0, soak.Tally()) for i, mb in enumerate(rss)]


def test_a_run_whose_peaks_keep_rising_did_not_plateau() -> None:
    ok, why = soak.plateaued(samples(GROWING))
    assert not ok, why
    assert "129.7" in why and "147.9" in why


def test_a_run_whose_peaks_level_off_plateaued_despite_sample_noise() -> None:
    ok, why = soak.plateaued(samples(LEVEL))
    assert ok, why


@pytest.mark.parametrize("rss", [[50.0], [50.0, 60.0, 70.0]])
def test_too_few_samples_is_no_verdict_of_success(rss: list[float]) -> None:
    assert soak.plateaued(samples(rss))[0] is False
