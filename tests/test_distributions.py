import random

import pytest

from wanmock.server.distributions import Fixed, LogNormal, Uniform, parse_distribution
from wanmock.server.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fixed(60)", Fixed(60.0)),
        ("uniform(30, 180)", Uniform(30.0, 180.0)),
        ("lognormal(median=60, sigma=0.5)", LogNormal(60.0, 0.5)),
        (12, Fixed(12.0)),
        ({"kind": "uniform", "low": 1, "high": 2}, Uniform(1, 2)),
    ],
)
def test_parse(text: object, expected: object) -> None:
    assert parse_distribution(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unifrom(1, 2)", "did you mean 'uniform'"),
        ("uniform(5, 1)", "high must be >= low"),
        ("fixed(-1)", ">= 0"),
        ("fixed(abc)", "not a number"),
        ("sixty", "cannot read"),
        ("lognormal(median=0)", "median must be > 0"),
        ("uniform(1)", "bad parameters"),
    ],
)
def test_bad_distributions_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_distribution(text, name="lifecycle.run_time")
    assert "lifecycle.run_time" in str(info.value) or "(" in str(info.value)


def test_samples_stay_in_bounds_and_are_seeded() -> None:
    dist = LogNormal(60, 1.0, low=5, high=300)
    a = [dist.sample(random.Random(7)) for _ in range(3)]
    b = [dist.sample(random.Random(7)) for _ in range(3)]
    assert a == b
    rng = random.Random(1)
    draws = [dist.sample(rng) for _ in range(2000)]
    assert min(draws) >= 5 and max(draws) <= 300
    assert 40 < sorted(draws)[1000] < 90  # the median is near 60
    uniform = [Uniform(30, 180).sample(rng) for _ in range(2000)]
    assert 30 <= min(uniform) < 40 and 170 < max(uniform) <= 180
