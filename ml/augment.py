"""Batched augmentation on the CPU in PyTorch, suited to galaxies.

Galaxies have no preferred orientation, so every view draws one of the 8
flip/rot90 symmetries plus a small rotation. The photometric part bridges SDSS
(shallow, black sky, blurrier) towards DECaLS (deeper, grey noisy sky, many
faint neighbours): sky level, noise, injected faint point sources, colour and
saturation changes, blur and resolution loss.

The rendering part works on the other rows, the DECaLS ones: Galaxy Zoo DECaLS cutouts are
greyer, darker-skied and zoomed to the galaxy, Galaxy10's are more colourful on a brighter sky at
a fixed pixel scale (ml/renderings.py measures both). A share of those rows gets its saturation,
sky level and scale moved by up to the measured differences, either way, so one model reads both.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from classifier.core.preprocessing import PreprocessConfig
from ml.config import AugmentSettings


def _gaussian_kernel(sigma: float, radius: int) -> torch.Tensor:
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    kernel = _gaussian_kernel(sigma, radius)
    channels = images.shape[1]
    horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    padded = F.pad(images, (radius, radius, 0, 0), mode="reflect")
    images = F.conv2d(padded, horizontal, groups=channels)
    padded = F.pad(images, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(padded, vertical, groups=channels)


def _views(
    pixels: torch.Tensor,
    zoom: torch.Tensor,
    size: int,
    angle: torch.Tensor,
    flip: torch.Tensor,
    scale: torch.Tensor,
    shift: torch.Tensor,
) -> torch.Tensor:
    """Sample ``size``-pixel views from uint8 NHWC crops (float NCHW in [0, 1])."""
    images = pixels.permute(0, 3, 1, 2).float() / 255.0
    extent = zoom * scale
    cos, sin = torch.cos(angle) * extent, torch.sin(angle) * extent
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, shift[:, 0]], dim=1),
            torch.stack([sin * flip, cos, shift[:, 1]], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, [len(images), 3, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def rerender(
    images: torch.Tensor, saturation: torch.Tensor | float, sky: torch.Tensor | float
) -> torch.Tensor:
    """``images`` (float NCHW in [0, 1]) with every pixel's HSV saturation times ``saturation``
    (at most 1) and its luminance, the channels' mean, plus ``sky``, the hue kept; clamped to
    [0, 1]. Floats or (N, 1, 1, 1) tensors.

    These are the quantities ml/renderings.py measures (the galaxy's mean HSV saturation, the
    border's median luminance), so they move by exactly these amounts up to the clamp. Scaling the
    chroma about the grey and adding the sky would not: the added sky raises each pixel's maximum
    and so lowers its HSV saturation again (on a synthetic GZ DECaLS-like galaxy the measured
    saturation rose 1.2 times for the 1.64 asked).
    """
    high = images.amax(dim=1, keepdim=True)
    low = images.amin(dim=1, keepdim=True)
    spread = high - low
    coloured = spread > 1e-6
    # Where each channel lies between the pixel's largest (0) and smallest (1) channel: the hue.
    position = torch.where(coloured, (high - images) / torch.where(coloured, spread, 1.0), 0.0)
    current = torch.where(high > 0, spread / high.clamp_min(1e-9), 0.0)
    new_saturation = (current * saturation).clamp(max=1.0)
    luminance = (images.mean(dim=1, keepdim=True) + sky).clamp_min(0.0)
    # value * (1 - S * position) per channel, with value chosen so the channels' mean is the luminance;
    # the mean position is 1/3 to 2/3, so the divisor stays at least 1/3.
    value = luminance / (1 - new_saturation * position.mean(dim=1, keepdim=True))
    return (value * (1 - new_saturation * position)).clamp(0.0, 1.0)


class Rendering(NamedTuple):
    """Per row: whether the rendering augmentation chose it, and the scale, saturation factor
    and sky offset it drew (read only where chosen)."""

    chosen: torch.Tensor
    scale: torch.Tensor
    saturation: torch.Tensor
    sky: torch.Tensor


def _rendering(params: AugmentSettings, candidates: torch.Tensor, generator: torch.Generator) -> Rendering:
    """The rendering augmentation of ``candidates`` (bool, N), each with rendering_probability."""
    n = len(candidates)
    if params.rendering_probability <= 0:
        # No draws at all: with the augmentation off, the generator's stream, and so every other
        # augmentation of a seeded run, stays what it was before the augmentation existed.
        return Rendering(torch.zeros(n, dtype=torch.bool), torch.ones(n), torch.ones(n), torch.zeros(n))

    def symmetric() -> torch.Tensor:
        return 2 * torch.rand(n, generator=generator) - 1

    chosen = (torch.rand(n, generator=generator) < params.rendering_probability) & candidates
    scale = torch.exp(math.log(params.rendering_scale) * symmetric())
    saturation = torch.exp(math.log(params.rendering_saturation) * symmetric())
    return Rendering(chosen, scale, saturation, params.rendering_sky * symmetric())


def centre_views(pixels: torch.Tensor, zoom: torch.Tensor, size: int) -> torch.Tensor:
    n = len(pixels)
    return _views(pixels, zoom, size, torch.zeros(n), torch.ones(n), torch.ones(n), torch.zeros(n, 2))


def augmented_views(
    pixels: torch.Tensor,
    zoom: torch.Tensor,
    size: int,
    params: AugmentSettings,
    generator: torch.Generator,
    bridge: torch.Tensor | None = None,
) -> torch.Tensor:
    """Augmented float NCHW views; ``bridge`` (bool, N) marks rows that get the SDSS-to-DECaLS
    photometric changes (all rows when None). The other rows, DECaLS imaging, may get the
    rendering augmentation instead (``rendering_probability``; none when ``bridge`` is None)."""
    n = len(pixels)
    bridged = torch.ones(n, dtype=torch.bool) if bridge is None else bridge.bool()

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(*(shape or (n,)), generator=generator)

    def chosen(probability: float) -> torch.Tensor:
        return torch.rand(n, generator=generator) < probability

    def bridging(probability: float) -> torch.Tensor:
        return chosen(probability) & bridged

    small = math.radians(params.small_rotation_degrees)
    quarter = torch.randint(0, 4, (n,), generator=generator).float() * (math.pi / 2)
    angle = quarter + uniform(-small, small)
    flip = torch.where(chosen(0.5), -1.0, 1.0)
    jitter = math.log(params.scale_jitter)
    scale = torch.exp(uniform(-jitter, jitter))
    rendering = _rendering(params, ~bridged, generator)
    scale = torch.where(rendering.chosen, rendering.scale, scale)
    shift = uniform(-params.translate, params.translate, n, 2)
    images = _views(pixels, zoom, size, angle, flip, scale, shift)

    low_resolution = bridging(params.resolution_probability)
    if low_resolution.any():
        factor = float(uniform(1.3, 2.2, 1))
        small_side = max(8, round(size / factor))
        degraded = F.interpolate(images[low_resolution], size=small_side, mode="area")
        images[low_resolution] = F.interpolate(degraded, size=size, mode="bilinear", align_corners=False)
    blurred = bridging(params.blur_probability)
    if blurred.any():
        images[blurred] = gaussian_blur(images[blurred], float(uniform(0.4, 1.2, 1)))

    gains = torch.exp(torch.randn(n, 3, 1, 1, generator=generator) * params.colour_jitter)
    brightness = torch.exp(uniform(-params.brightness, params.brightness)).view(n, 1, 1, 1)
    images = images * gains * brightness
    grey = images.mean(dim=1, keepdim=True)
    saturation = torch.where(bridged, uniform(*params.saturation), 1.0).view(n, 1, 1, 1)
    images = grey + saturation * (images - grey)

    neighbours = bridging(params.neighbour_probability)
    if neighbours.any():
        count = len(neighbours.nonzero())
        sources = torch.zeros(count, 1, size, size)
        per_image = params.max_neighbours
        flat = sources.view(count, -1)
        positions = torch.randint(0, size * size, (count, per_image), generator=generator)
        amplitude = torch.exp(uniform(math.log(0.3), math.log(4.0), count, per_image))
        present = torch.rand(count, per_image, generator=generator) < 0.6
        flat.scatter_add_(1, positions, amplitude * present)
        psf = gaussian_blur(sources, float(uniform(0.8, 1.6, 1)))
        tint = uniform(0.7, 1.3, count, 3).view(count, 3, 1, 1)
        images[neighbours] = images[neighbours] + psf * tint

    sky = bridging(params.sky_probability).float() * uniform(0.0, params.sky_level)
    images = images + sky.view(n, 1, 1, 1)
    if rendering.chosen.any():
        rows = rendering.chosen
        images[rows] = rerender(
            images[rows], rendering.saturation[rows].view(-1, 1, 1, 1), rendering.sky[rows].view(-1, 1, 1, 1)
        )
    sigma = (uniform(0.0, params.noise_sigma) * bridged).view(n, 1, 1, 1)
    images = images + sigma * torch.randn(images.shape, generator=generator)
    return images.clamp(0.0, 1.0)


def normalise(images: torch.Tensor, config: PreprocessConfig) -> torch.Tensor:
    """The serving normalisation, applied to [0, 1] images (NCHW)."""
    return (images * 255.0 - config.mean) / config.std
