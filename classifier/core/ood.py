"""Does an input look like the galaxy cutouts the model was trained on? (docs/ood.md)

The gate is a Gaussian density, or a mixture of one Gaussian per survey family, over a few
features of the image as the model sees it (the preprocessed tensor) and of the model's served
probabilities; the score is the squared Mahalanobis distance to the nearest Gaussian. Its
parameters (feature names, means, inverse covariances, threshold) are fitted on training galaxies by
``python -m ml.ood fit`` and travel in the model manifest's top-level "ood" object, so a
replaced model is always judged with the parameters fitted for it.

numpy only: training (ml/ood.py) imports the same feature code, so the features it fits
on are exactly the ones serving computes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from classifier.core.preprocessing import PreprocessConfig

FORMAT_VERSION = 1
# Width of the frame edge taken as "sky", as a fraction of the side: Galaxy10-framed
# cutouts keep the galaxy well inside it at the serving crop.
BORDER_FRACTION = 0.08
# Radius (fraction of the side) of the "centre" and of the aperture that holds most of a
# galaxy's light at the serving framing.
CENTRE_RADIUS = 0.12
APERTURE_RADIUS = 0.35
SATURATED = 250.0
# A grey-level step (0-1 scale) between neighbouring pixels that counts as an edge;
# sky noise and smooth galaxy light stay below it, photographs' object outlines do not.
EDGE_STEP = 0.08
_EPS = 1e-3


def _log(value: float) -> float:
    return float(np.log(value + _EPS))


def _median(values: np.ndarray) -> float:
    """np.median of a 1-d float array, the same value at a fifth of the cost: np.median's
    generic path costs far more than one partition on a frame's border pixels, and serving
    takes two per image (docs/benchmarks.md, issue 22)."""
    middle = values.size // 2
    # One kth: numpy's partition is several times slower given two.
    parted = np.partition(values, middle)
    if values.size % 2:
        return float(parted[middle])
    return float((parted[:middle].max() + parted[middle]) / values.dtype.type(2))


@dataclass(frozen=True)
class _Geometry:
    """Masks and offsets of one input size, computed once per process."""

    border: np.ndarray
    centre: np.ndarray
    aperture: np.ndarray
    dy: np.ndarray
    dx: np.ndarray


@functools.lru_cache(maxsize=4)
def _geometry(size: int) -> _Geometry:
    border_width = max(2, round(size * BORDER_FRACTION))
    border = np.ones((size, size), bool)
    border[border_width:-border_width, border_width:-border_width] = False
    centre = (size - 1) / 2.0
    dy, dx = (axis.astype(np.float64) - centre for axis in np.mgrid[0:size, 0:size])
    radius = np.hypot(dy, dx) / size
    return _Geometry(border, radius <= CENTRE_RADIUS, radius <= APERTURE_RADIUS, dy, dx)


class _Image:
    """One (size, size, 3) image in 0-255 and the statistics the features share, each
    computed on first use: serving asks only for the few features its gate was fitted on."""

    def __init__(self, pixels: np.ndarray, probabilities: np.ndarray) -> None:
        self.size = pixels.shape[0]
        self.geometry = _geometry(self.size)
        # Channel by channel: numpy's reductions over a short last axis are slow.
        self.red, self.green, self.blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
        self.probabilities = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0)

    @functools.cached_property
    def grey(self) -> np.ndarray:
        return (self.red + self.green + self.blue) / (3 * 255.0)

    @functools.cached_property
    def border(self) -> np.ndarray:
        return self.grey[self.geometry.border]

    @functools.cached_property
    def sky(self) -> float:
        return _median(self.border)

    @functools.cached_property
    def light(self) -> np.ndarray:
        return np.clip(self.grey - self.sky, 0.0, None)

    @functools.cached_property
    def total(self) -> float:
        return float(self.light.sum())

    def share(self, mask: np.ndarray) -> float:
        # No light above the sky anywhere: as un-galaxy-like as the features can say.
        return float(self.light[mask].sum() / self.total) if self.total > 0 else 0.0

    def centroid_offset(self) -> float:
        if self.total <= 0:
            return 0.5
        light, geometry = self.light, self.geometry
        return float(
            np.hypot((light * geometry.dy).sum(), (light * geometry.dx).sum()) / self.total / self.size
        )

    @functools.cached_property
    def high(self) -> np.ndarray:
        return np.maximum(np.maximum(self.red, self.green), self.blue)

    @functools.cached_property
    def chroma(self) -> np.ndarray:
        return (self.high - np.minimum(np.minimum(self.red, self.green), self.blue)) / 255.0

    def sky_noise(self) -> float:
        # Pixel-scale noise: what a one-pixel difference leaves in the sky, robust to the odd star.
        residual = self.border - np.roll(self.grey, 1, axis=1)[self.geometry.border]
        return _median(np.abs(residual)) * 1.4826

    def edge_density(self) -> float:
        grey = self.grey
        steps = np.maximum(np.abs(np.diff(grey, axis=0))[:, :-1], np.abs(np.diff(grey, axis=1))[:-1, :])
        return float((steps > EDGE_STEP).mean())


# Every candidate feature, by name; the manifest names the ones a fitted gate uses.
_FEATURES: dict[str, Callable[[_Image], float]] = {
    "sky_level": lambda im: _log(im.sky),
    "sky_spread": lambda im: _log(_median(np.abs(im.border - im.sky)) * 1.4826),
    "sky_noise": lambda im: _log(im.sky_noise()),
    "centre_contrast": lambda im: float(im.grey[im.geometry.centre].mean()) - im.sky,
    "concentration": lambda im: im.share(im.geometry.centre),
    "aperture_fraction": lambda im: im.share(im.geometry.aperture),
    "centroid_offset": lambda im: im.centroid_offset(),
    "saturated_fraction": lambda im: _log(float((im.high >= SATURATED).mean())),
    "chroma": lambda im: _log(float(im.chroma.mean())),
    "sky_chroma": lambda im: _log(float(im.chroma[im.geometry.border].mean())),
    "edge_density": lambda im: _log(im.edge_density()),
    "max_probability": lambda im: _log(1.0 - float(im.probabilities.max())),
    "entropy": lambda im: float(-(im.probabilities * np.log(im.probabilities)).sum()),
}
FEATURE_NAMES: tuple[str, ...] = tuple(_FEATURES)


def features(
    tensor: np.ndarray,
    probabilities: np.ndarray,
    config: PreprocessConfig,
    names: Iterable[str] = FEATURE_NAMES,
) -> dict[str, float]:
    """The named features (every candidate by default) of one model input (the normalised
    tensor) and its served probabilities."""
    # float32 like the model input: half the memory traffic of float64, and no precision the features need.
    pixels = np.clip(
        np.asarray(tensor, dtype=np.float32) * np.float32(config.std) + np.float32(config.mean), 0, 255
    )
    image = _Image(pixels, probabilities)
    return {name: _FEATURES[name](image) for name in names}


def squared_mahalanobis(values: np.ndarray, mean: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """The squared Mahalanobis distance of each row of ``values`` (or of one vector) from
    ``mean``; the one formula that fitting (ml/ood_stats.py) and serving score with."""
    delta = values - mean
    # Each form as it was before the two were one function, so stored scores reproduce bit for bit.
    if delta.ndim == 1:
        return delta @ inverse @ delta
    return np.einsum("ij,jk,ik->i", delta, inverse, delta)


class ComponentParameters(Protocol):
    """One Gaussian of a mixture gate, as the manifest's ``ood.components`` lists it."""

    @property
    def name(self) -> str: ...
    @property
    def mean(self) -> Sequence[float]: ...
    @property
    def inverse_covariance(self) -> Sequence[Sequence[float]]: ...


class GateParameters(Protocol):
    """What a fitted gate is read from: the manifest's ``ood`` section (OodSection)."""

    @property
    def features(self) -> Sequence[str]: ...
    @property
    def mean(self) -> Sequence[float]: ...
    @property
    def inverse_covariance(self) -> Sequence[Sequence[float]]: ...
    @property
    def components(self) -> Sequence[ComponentParameters] | None: ...
    @property
    def threshold(self) -> float: ...
    @property
    def version(self) -> str | None: ...


@dataclass(frozen=True)
class OodGate:
    """The fitted gate: the smallest squared Mahalanobis distance to one of its Gaussians
    (one per survey family for a mixture gate, else one) above ``threshold`` means out of
    distribution."""

    features: tuple[str, ...]
    # One (n,) mean and (n, n) inverse covariance per component; a single-Gaussian gate has one.
    means: tuple[np.ndarray, ...]
    inverse_covariances: tuple[np.ndarray, ...]
    threshold: float
    version: str
    names: tuple[str, ...] = ()

    @classmethod
    def from_section(cls, section: GateParameters | None) -> OodGate | None:
        """The gate from the manifest's checked ``ood`` section (ModelManifest.ood); None when
        the model has none. The manifest schema has checked the names and shapes."""
        if section is None:
            return None
        # A manifest without "components" (every gate before the mixture) is its one Gaussian.
        components = section.components
        gaussians = (
            [(c.mean, c.inverse_covariance) for c in components]
            if components
            else [(section.mean, section.inverse_covariance)]
        )
        return cls(
            features=tuple(section.features),
            means=tuple(np.asarray(mean, dtype=np.float64) for mean, _ in gaussians),
            inverse_covariances=tuple(np.asarray(inverse, dtype=np.float64) for _, inverse in gaussians),
            threshold=float(section.threshold),
            version=section.version or "",
            names=tuple(c.name for c in components) if components else ("",),
        )

    @property
    def mean(self) -> np.ndarray:
        """Component 0's mean: the whole gate's for a single Gaussian."""
        return self.means[0]

    @property
    def inverse_covariance(self) -> np.ndarray:
        return self.inverse_covariances[0]

    def distances(self, features: Mapping[str, float]) -> list[float]:
        """The squared Mahalanobis distance to each component, in the components' order."""
        values = np.array([features[name] for name in self.features], dtype=np.float64)
        # One small (n,) @ (n, n) @ (n,) product per component: the features are computed once.
        return [
            float(squared_mahalanobis(values, mean, inverse))
            for mean, inverse in zip(self.means, self.inverse_covariances, strict=True)
        ]

    def distance(self, features: Mapping[str, float]) -> float:
        """The score: the distance to the nearest component."""
        return min(self.distances(features))

    def judge(
        self, tensor: np.ndarray, probabilities: np.ndarray, config: PreprocessConfig
    ) -> tuple[bool, float]:
        """(in distribution, score) for one model input; the score is the squared Mahalanobis
        distance to the nearest component."""
        score = self.distance(features(tensor, probabilities, config, self.features))
        return score <= self.threshold, score
