"""Colour and scale statistics of each image source: how the renderings users upload differ.

Galaxy10 DECaLS cutouts are 0.262"/pixel g, r, z colour composites at a fixed framing; Galaxy Zoo
DECaLS cutouts are greyer and zoom with the galaxy's size; the SDSS sources differ in depth and
colour again. These numbers say by how much, per source, on the pixels alone (no labels are
read, so measuring the dev images' rendering chooses nothing):

* saturation: mean HSV saturation of the galaxy's pixels (0 grey, 1 pure colour);
* red/blue: mean red over mean blue channel of the galaxy's pixels (the colour balance);
* sky level and sky noise: median and MAD-based sigma of the border pixels' luminance (0-1);
* extent: the centred galaxy's half-light radius (from its azimuthal profile, out to where it
  meets the sky) as a fraction of the image side: the framing.

    python -m ml.renderings --data-root ../shared/data [--per-source 300] [--json out.json]

``to_galaxy10_rendering`` maps a GZ DECaLS cutout to Galaxy10's rendering by these numbers, so a
model can be scored on the same galaxies in both renderings.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from ml.augment import rerender

# Source name -> image folder under the data root, and the rendering it stands for.
SOURCES: dict[str, tuple[str, str]] = {
    "galaxy10_decals_dev": ("galaxy10_decals_dev", 'Galaxy10 DECaLS (fixed 0.262"/px framing)'),
    "gz_decals_votes": ("gz_decals_votes/images", "Galaxy Zoo DECaLS (greyer, zoomed to the galaxy)"),
    "gz_decals_partial": ("gz_decals_partial", "Galaxy Zoo DECaLS (greyer, zoomed to the galaxy)"),
    "gz2_votes_sdss": ("gz2_votes_sdss/images", "SDSS (Galaxy Zoo 2)"),
    "kaggle_gz_votes_sdss": ("kaggle_gz_votes_sdss", "SDSS (Galaxy Zoo 2, Kaggle)"),
    "gz1_sdss": ("gz1_sdss/images", "SDSS (Galaxy Zoo 1)"),
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
ANALYSIS_SIDE = 128  # every image is compared at one size, so the extent is a fraction of the side
BORDER = 8  # pixels of each edge (at ANALYSIS_SIDE) that sample the sky
SIGMA_FROM_MAD = 1.4826
ImageArray = TypeVar("ImageArray", torch.Tensor, np.ndarray)

# The measured renderings (this module on 300 images per source; docs/ablations.md, "Colour and
# framing of each source"): galaxy10_decals_dev for Galaxy10, gz_decals_votes for GZ DECaLS.
GALAXY10_SATURATION = 0.228
GALAXY10_SKY = 0.128
GZ_DECALS_SATURATION = 0.139
GZ_DECALS_SKY = 0.068


@dataclass(frozen=True)
class ImageStats:
    saturation: float
    red_over_blue: float
    sky_level: float
    sky_noise: float
    extent: float


@dataclass(frozen=True)
class SourceStats:
    source: str
    rendering: str
    images: int
    saturation: float
    red_over_blue: float
    sky_level: float
    sky_noise: float
    extent_median: float
    extent_iqr: tuple[float, float]


def image_stats(rgb: np.ndarray) -> ImageStats:
    """The statistics of one RGB image (uint8, H x W x 3), resized to ANALYSIS_SIDE."""
    image = Image.fromarray(rgb).convert("RGB").resize((ANALYSIS_SIDE, ANALYSIS_SIDE), Image.BILINEAR)
    pixels = np.asarray(image, dtype=np.float64) / 255.0
    luminance = pixels.mean(axis=2)
    border = np.ones(luminance.shape, bool)
    border[BORDER:-BORDER, BORDER:-BORDER] = False
    sky = luminance[border]
    sky_level = float(np.median(sky))
    sky_noise = float(SIGMA_FROM_MAD * np.median(np.abs(sky - sky_level)))
    signal = luminance - sky_level
    threshold = 3 * max(sky_noise, 1.0 / 255.0)
    galaxy = signal > threshold
    if not galaxy.any():
        galaxy = signal >= np.quantile(signal, 0.99)
    extent = _half_light_radius(signal, threshold / 3) / luminance.shape[0]
    chosen = pixels[galaxy]
    high, low = chosen.max(axis=1), chosen.min(axis=1)
    saturation = float(np.mean(np.where(high > 0, (high - low) / np.maximum(high, 1e-9), 0.0)))
    red_over_blue = float(chosen[:, 0].mean() / max(chosen[:, 2].mean(), 1e-9))
    return ImageStats(saturation, red_over_blue, sky_level, sky_noise, extent)


def _half_light_radius(signal: np.ndarray, sky_sigma: float) -> float:
    """The radius (pixels) holding half the light of the centred galaxy: the azimuthal mean
    profile is followed out from the centre until it drops below the sky's sigma, and half of
    the light inside that edge sets the radius. Annuli average out neighbours and noise."""
    side = signal.shape[0]
    yy, xx = np.mgrid[0:side, 0:side]
    centre = (side - 1) / 2
    radius = np.hypot(yy - centre, xx - centre).astype(int)
    limit = side // 2
    sums = np.bincount(radius.ravel(), weights=signal.ravel(), minlength=limit + 1)[: limit + 1]
    counts = np.bincount(radius.ravel(), minlength=limit + 1)[: limit + 1]
    profile = sums / np.maximum(counts, 1)
    below = np.nonzero(profile < sky_sigma)[0]
    edge = int(below[0]) if len(below) else limit
    light = np.cumsum(np.clip(sums[: max(edge, 1)], 0, None))
    if light[-1] <= 0:
        return 0.0
    return float(np.searchsorted(light, light[-1] / 2) + 0.5)


def to_galaxy10_rendering(images: ImageArray, channel_axis: int = -3) -> ImageArray:
    """GZ DECaLS-rendered images (float in [0, 1]) in Galaxy10's rendering: every pixel's HSV
    saturation times GALAXY10_SATURATION / GZ_DECALS_SATURATION (1.64) and its luminance lifted
    by GALAXY10_SKY - GZ_DECALS_SKY (0.06), the statistics this module measures. Channels on
    ``channel_axis``: -3 (the default) for CHW or NCHW tensors, -1 for HWC or NHWC arrays; the
    result has the input's type and layout. The framing is left alone: the median half-light
    radii (0.082 and 0.090 of the side) are close; Galaxy10's differ in spread, not in scale."""
    planar = torch.as_tensor(images, dtype=torch.float32).movedim(channel_axis, -3)
    batch = planar.reshape(-1, *planar.shape[-3:])
    mapped = rerender(batch, GALAXY10_SATURATION / GZ_DECALS_SATURATION, GALAXY10_SKY - GZ_DECALS_SKY)
    out = mapped.reshape(planar.shape).movedim(-3, channel_axis)
    return out if isinstance(images, torch.Tensor) else out.numpy().astype(images.dtype, copy=False)


def to_galaxy10_inputs(inputs: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Serving model inputs (NHWC, ``(pixel - mean) / std`` of 0-255 pixels) of GZ DECaLS cutouts,
    re-rendered as Galaxy10 renders them: the mapping works on [0, 1] images, before normalising."""
    images = (inputs.astype(np.float32) * std + mean) / 255.0
    mapped = to_galaxy10_rendering(images, channel_axis=-1)
    return ((mapped * 255.0 - mean) / std).astype(inputs.dtype)


def summarise(source: str, rendering: str, stats: Sequence[ImageStats]) -> SourceStats:
    """Medians over a source's images (the extent with its interquartile range)."""
    if not stats:
        raise ValueError(f"no images for {source}")
    columns = {name: np.array([getattr(s, name) for s in stats]) for name in ImageStats.__dataclass_fields__}
    q1, q3 = np.quantile(columns["extent"], [0.25, 0.75])
    return SourceStats(
        source=source,
        rendering=rendering,
        images=len(stats),
        saturation=float(np.median(columns["saturation"])),
        red_over_blue=float(np.median(columns["red_over_blue"])),
        sky_level=float(np.median(columns["sky_level"])),
        sky_noise=float(np.median(columns["sky_noise"])),
        extent_median=float(np.median(columns["extent"])),
        extent_iqr=(float(q1), float(q3)),
    )


def _images(folder: Path, limit: int, seed: int) -> Iterable[np.ndarray]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) > limit:
        picks = np.random.default_rng(seed).choice(len(files), size=limit, replace=False)
        files = [files[i] for i in sorted(picks)]
    for path in files:
        with Image.open(path) as image:
            yield np.asarray(image.convert("RGB"))


def measure(data_root: Path, *, per_source: int = 300, seed: int = 0) -> list[SourceStats]:
    """The statistics of every source present under ``data_root`` (absent ones are skipped)."""
    out = []
    for source, (folder, rendering) in SOURCES.items():
        path = data_root / folder
        if path.is_dir():
            stats = [image_stats(rgb) for rgb in _images(path, per_source, seed)]
            if stats:
                out.append(summarise(source, rendering, stats))
    return out


def markdown_table(rows: Sequence[SourceStats]) -> str:
    lines = [
        (
            "| source | rendering | images | saturation | red/blue | sky level | sky noise "
            "| extent (median, IQR) |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.source} | {r.rendering} | {r.images} | {r.saturation:.3f} | {r.red_over_blue:.2f} | "
            f"{r.sky_level:.3f} | {r.sky_noise:.4f} | {r.extent_median:.3f} "
            f"({r.extent_iqr[0]:.3f}-{r.extent_iqr[1]:.3f}) |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--per-source", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = measure(args.data_root, per_source=args.per_source)
    print(markdown_table(rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
