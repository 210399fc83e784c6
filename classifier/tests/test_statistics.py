"""classifier.core.statistics: the Wilson interval, checked against astropy's."""

import pytest
from astropy.stats import binom_conf_interval

from classifier.core.statistics import Z_95, wilson_interval


@pytest.mark.parametrize(
    ("successes", "n"), [(0, 1), (1, 1), (16, 30), (30, 30), (0, 30), (63, 127), (499, 500)]
)
def test_the_wilson_interval_is_astropys(successes, n):
    low, high = binom_conf_interval(successes, n, confidence_level=0.95, interval="wilson")
    # astropy takes the exact normal quantile (1.95996...); the project rounds it to 1.96.
    assert wilson_interval(successes, n) == pytest.approx((low, high), abs=2e-4)
    assert wilson_interval(successes, n, z=1.959963984540054) == pytest.approx((low, high), abs=1e-12)


def test_no_images_say_nothing_and_the_default_is_95_percent():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(16, 30) == wilson_interval(16, 30, z=Z_95)
    low, high = wilson_interval(16, 30)
    assert 0 < low < 16 / 30 < high < 1
