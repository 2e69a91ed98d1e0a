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
        ("unifrom(1, 2)", "lifecycle.run_time: unknown distribution 'unifrom'; "
                          "did you mean 'uniform'?"),
        ("uniform(5, 1)", "lifecycle.run_time: uniform(5, 1): high must be >= low"),
        ("fixed(-1)", "lifecycle.run_time: fixed(-1): value must be a number >= 0"),
        ("lognormal(60, sigma=-1)", "lifecycle.run_time: lognormal(60, sigma=-1): "
                                    "sigma must be a number >= 0"),
        (-3, "lifecycle.run_time: fixed(-3): value must be a number >= 0"),
        ("fixed(abc)", "lifecycle.run_time: fixed(abc): 'abc' is not a number"),
        ("uniform(low=x, high=2)", "lifecycle.run_time: uniform(low=x, high=2): "
                                   "low = 'x' is not a number"),
        ("sixty", "lifecycle.run_time: cannot read 'sixty'"),
        ("lognormal(median=0)", "lifecycle.run_time: lognormal(median=0): median must be > 0"),
        ("uniform(1)", "lifecycle.run_time: uniform() needs low and high; got 'uniform(1)'; "
                       "write e.g. 'uniform(30, 180)'"),
        ("lognormal(medain=60)", "lifecycle.run_time: lognormal(medain=60): unknown parameter "
                                 "'medain'; did you mean 'median'?"),
        ("lognormal(median=60, sigam=1)", "did you mean 'sigma'?"),
        ("fixed(1, 2)", "lifecycle.run_time: fixed(1, 2): fixed() takes at most 1 parameter "
                        "(value), got 2"),
        ("uniform(1, 2, 3)", "uniform() takes at most 2 parameters (low, high), got 3"),
        ("uniform(1, low=2)", "lifecycle.run_time: uniform(1, low=2): low is given twice"),
        ("uniform(30,)", "lifecycle.run_time: uniform(30,): an empty parameter"),
        ({"kind": "uniform", "low": 1}, "lifecycle.run_time: uniform() needs low and high"),
        ({"kind": "fixed", "value": "60"}, "lifecycle.run_time: fixed(value='60'): value must "
                                           "be a number, got '60'"),
        ({"kind": "fixed", "value": True}, "value must be a number, got True"),
        ({"kind": "lognormal", "medain": 5}, "unknown parameter 'medain'; did you mean 'median'"),
        ({"low": 1}, "lifecycle.run_time: a distribution table needs a kind"),
        ([1], "lifecycle.run_time: expected a distribution"),
    ],
)
def test_bad_distributions_name_the_key_and_the_fix(text: object, message: str) -> None:
    """Never a bare TypeError: every mistake names the config key and what would be accepted."""
    with pytest.raises(ConfigError) as info:
        parse_distribution(text, name="lifecycle.run_time")
    assert message in str(info.value)


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
