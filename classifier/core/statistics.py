"""The one confidence interval the project reports, shared by the pages (serving) and ml/.

Plain Python: the Docker image leaves ml/ out, and a worker should not import astropy
(tens of MB) to render the model page; classifier/tests/test_statistics.py checks the
formula against astropy's binom_conf_interval.
"""

from __future__ import annotations

import math

Z_95 = 1.96


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default): unlike the normal
    approximation it stays inside [0, 1] and keeps its coverage for a few dozen images."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))
