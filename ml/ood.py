"""Fit and measure the out-of-distribution gate of a packaged model (docs/ood.md).

    python -m ml.ood fit --models-dir ml/models          # refit, write manifest["ood"], print the table
    python -m ml.ood galamo --package DIR                # galamo 0.0.8's galaxy/not-galaxy gate, same sets

Every image goes through what serving does with it: classifier.core.preprocessing with the
manifest's parameters (the serving crop, whatever the source), then the packaged TFLite
model through classifier.core.inference, then classifier.core.ood's features. The Gaussian is fitted
on training-split galaxies, the threshold on the validation splits (each source flags at
most ``TARGET_FLAG_RATE`` of its galaxies), and the test splits, the dev images and the
synthetic negatives are reported only: nothing is chosen on them.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from classifier.core import ood
from classifier.core.inference import GalaxyClassifier, PreparedImage
from classifier.core.preprocessing import ImageSource, PreprocessConfig, preprocess
from ml import sources as src
from ml.config import DEFAULT_CONFIG, load_config

VERSION = "gaussian-mahalanobis-1"
# Every feature classifier.core.ood computes is measured and reported; the fit keeps those that
# describe one galaxy on sky rather than a camera or a pipeline.
FEATURES = ood.FEATURE_NAMES
# Colour is left out whatever it measures: the app classifies single-band FITS cutouts in
# grey (docs/fits.md) and every survey stretches colour its own way; the Galaxy10 DECaLS
# images' colours lie outside both training surveys' (docs/ood.md, "How the features were chosen").
COLOUR_FEATURES = ("chroma", "sky_chroma")
# A feature that alone separates validation galaxies from the negatives worse than this
# (AUROC) adds parameters to the Gaussian and little else.
MIN_FEATURE_AUROC = 0.75
# A feature whose mean differs between the training surveys' galaxies (SDSS and DECaLS) by
# this many pooled standard deviations or more is dropped: it measures the survey's sky,
# stretch or noise, and a cutout from another survey or pipeline would be flagged for it
# (docs/ood.md has the table).
SURVEY_SHIFT_LIMIT = 1.0
# The DECaLS source among the training sources; the others are SDSS.
DECALS_SOURCES = ("gz_decals_partial", "galaxy10_h5")
TARGET_FLAG_RATE = 0.01
# Training galaxies per source for the fit: the Gaussian has ~100 parameters, so a few
# hundred per source pin it down and keep a refit within minutes on two cores.
TRAIN_PER_SOURCE = 600
# Robust fit: refit without the farthest share of the training galaxies (odd framings,
# bright stars, mislabelled frames) so they do not inflate the covariance.
TRIM_FRACTION = 0.025
TRIM_ROUNDS = 3
SEED = 20261127


@dataclass
class FeatureSet:
    name: str
    values: np.ndarray  # (n, len(FEATURES))

    def __len__(self) -> int:
        return len(self.values)


# --- positives ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GalaxyView:
    """One source's images of one split, and the centre crop they are seen with."""

    name: str
    images: list[src.ImageRef]
    crop_fraction: float


def galaxy_splits(
    config: dict[str, Any], data_root: Path, serving_crop: float, galaxy10_h5: Path | None = None
) -> dict[str, list[GalaxyView]]:
    """{split: views}: the training sources split exactly as the model's training split them.

    Each source is seen twice: with its own crop (the framing training gave it to match a
    Galaxy10 DECaLS cutout at the serving crop, ml/config.toml) and with the serving crop
    applied to the file as it is (a survey cutout uploaded as it comes).
    """
    # The sources exactly as training loads them (ml.train imports torch: only when fitting).
    from ml.train import collect_sources

    found = collect_sources(config, data_root, galaxy10_h5)
    splits: dict[str, list[GalaxyView]] = {"train": [], "val": [], "test": []}
    for source in found:
        crop = source.crop_fraction
        for split, indices in src.split_indices(source, config).items():
            images = [source.images[i] for i in indices]
            for fraction in dict.fromkeys((crop, serving_crop)):
                splits[split].append(GalaxyView(f"{split}/{source.name}@{fraction}", images, fraction))
    return splits


def dev_images(data_root: Path) -> list[src.ImageRef]:
    root = data_root / "galaxy10_decals_dev"
    if not root.is_dir():
        return []
    return list(src.load_galaxy10_dev(root, 0.7).images)


# --- negatives ------------------------------------------------------------------------------


def _encode(array: np.ndarray, rng: np.random.Generator) -> bytes:
    """As an upload would arrive: JPEG at a usual quality, or PNG."""
    image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    if rng.random() < 0.7:
        image.save(buffer, "JPEG", quality=int(rng.integers(75, 96)))
    else:
        image.save(buffer, "PNG")
    return buffer.getvalue()


def _upload_variants(photo: np.ndarray, rng: np.random.Generator, count: int) -> Iterator[np.ndarray]:
    """The photo as sent, and random crops resized to usual upload sizes."""
    yield photo
    height, width = photo.shape[:2]
    for _ in range(count - 1):
        side_h = int(height * rng.uniform(0.4, 1.0))
        side_w = int(width * rng.uniform(0.4, 1.0))
        top = int(rng.integers(0, height - side_h + 1))
        left = int(rng.integers(0, width - side_w + 1))
        crop = Image.fromarray(photo[top : top + side_h, left : left + side_w])
        target = int(rng.choice([256, 424, 512, 800]))
        scale = target / min(crop.size)
        crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))))
        yield np.asarray(crop)


def natural_photos(rng: np.random.Generator, variants: int = 4) -> list[bytes]:
    """scikit-image's sample photographs (shipped in its wheel), cropped and resized like uploads.

    hubble_deep_field is left out: a field of galaxies is not a natural photograph.
    """
    import skimage.data

    names = (
        "astronaut", "brick", "camera", "cat", "cell", "clock", "coffee", "coins", "colorwheel",
        "grass", "gravel", "immunohistochemistry", "logo", "microaneurysms", "moon", "page",
        "retina", "rocket", "text",
    )  # fmt: skip
    out = []
    for name in names:
        photo = np.asarray(getattr(skimage.data, name)())
        if photo.ndim == 3 and photo.shape[2] == 4:
            photo = np.asarray(Image.fromarray(photo).convert("RGB"))
        out.extend(_encode(v, rng) for v in _upload_variants(photo, rng, variants))
    return out


def _sizes(rng: np.random.Generator) -> tuple[int, int]:
    side = int(rng.choice([128, 256, 424, 512]))
    return side, int(side * rng.choice([1.0, 1.0, 1.33, 0.75]))


def blank_frames(rng: np.random.Generator, count: int = 40) -> list[bytes]:
    out = []
    for i in range(count):
        height, width = _sizes(rng)
        colour = [0, 0, 0] if i % 4 == 0 else [255, 255, 255] if i % 4 == 1 else rng.integers(0, 256, 3)
        out.append(_encode(np.broadcast_to(np.asarray(colour, np.float64), (height, width, 3)).copy(), rng))
    return out


def noise_frames(rng: np.random.Generator, count: int = 40) -> list[bytes]:
    """Full-range uniform noise, Gaussian noise about a random level, and faint dark noise (empty sky)."""
    out = []
    for i in range(count):
        height, width = _sizes(rng)
        shape = (height, width, 3) if rng.random() < 0.7 else (height, width, 1)
        if i % 3 == 0:
            frame = rng.uniform(0, 255, shape)
        elif i % 3 == 1:
            frame = rng.normal(rng.uniform(40, 215), rng.uniform(10, 60), shape)
        else:
            frame = rng.normal(rng.uniform(5, 40), rng.uniform(2, 10), shape)
        out.append(_encode(np.broadcast_to(frame, (height, width, 3)).copy(), rng))
    return out


def gradient_frames(rng: np.random.Generator, count: int = 40) -> list[bytes]:
    """Linear gradients in random directions and radial ones (bright or dark centre)."""
    out = []
    for i in range(count):
        height, width = _sizes(rng)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
        if i % 2 == 0:
            angle = rng.uniform(0, 2 * np.pi)
            t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height) / 2 + 0.5
        else:
            t = np.hypot(yy / height - 0.5, xx / width - 0.5) / 0.71
            if rng.random() < 0.5:
                t = 1 - t
        start, end = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        frame = start + (end - start) * np.clip(t, 0, 1)[..., None]
        out.append(_encode(frame, rng))
    return out


def star_fields(rng: np.random.Generator, count: int = 60) -> list[bytes]:
    """Dark noisy sky with a few point sources (the PSF of a survey cutout) and no extended galaxy."""
    out = []
    for _ in range(count):
        side = int(rng.choice([256, 424]))
        yy, xx = np.mgrid[0:side, 0:side].astype(np.float64)
        sky = rng.uniform(3, 30)
        frame = rng.normal(sky, rng.uniform(1.5, 6), (side, side, 3))
        for _ in range(int(rng.integers(1, 13))):
            y, x = rng.uniform(0, side, 2)
            sigma = rng.uniform(0.8, 2.5) * side / 256
            peak = rng.uniform(40, 400)
            colour = rng.uniform(0.8, 1.2, 3)
            frame += peak * colour * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))[..., None]
        out.append(_encode(frame, rng))
    return out


NEGATIVES: dict[str, Callable[[np.random.Generator], list[bytes]]] = {
    "natural_photos": natural_photos,
    "blank": blank_frames,
    "noise": noise_frames,
    "gradients": gradient_frames,
    "star_fields": star_fields,
}


# --- features -------------------------------------------------------------------------------


def _served(
    classifier: GalaxyClassifier,
    images: Iterable[ImageSource],
    pre: PreprocessConfig,
    crop_fraction: float | None = None,
) -> np.ndarray:
    """(n, len(FEATURES)) features of the images as the served model sees them (with another
    centre crop when ``crop_fraction`` is given)."""
    if crop_fraction is not None:
        pre = dataclasses.replace(pre, crop_fraction=crop_fraction)
    rows = []
    prepared: list[PreparedImage] = []

    def flush() -> None:
        results = classifier.classify_prepared(prepared)
        for image, result in zip(prepared, results, strict=True):
            features = ood.features(image.tensor, np.asarray(result.probabilities), pre)
            rows.append([features[name] for name in FEATURES])
        prepared.clear()

    for image in images:
        source = _encoded(image) if isinstance(image, src.H5Image) else image
        source = source if isinstance(source, bytes) else str(source)
        prepared.append(PreparedImage(tensor=preprocess(source, pre), width=0, height=0, image_format=""))
        if len(prepared) == 32:
            flush()
    if prepared:
        flush()
    return np.array(rows, dtype=np.float64).reshape(-1, len(FEATURES))


def _encoded(ref: src.H5Image) -> bytes:
    """A Galaxy10 h5 image as the PNG file a user would upload."""
    from ml.cache import load_image

    buffer = io.BytesIO()
    load_image(ref).save(buffer, "PNG")
    return buffer.getvalue()


def _sample(images: list[src.ImageRef], count: int, rng: np.random.Generator) -> list[src.ImageRef]:
    if len(images) <= count:
        return images
    return [images[i] for i in sorted(rng.choice(len(images), size=count, replace=False))]


# --- fit and metrics ------------------------------------------------------------------------


def fit_gaussian(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and inverse covariance, refitted TRIM_ROUNDS times without the farthest TRIM_FRACTION."""
    kept = values
    for _ in range(TRIM_ROUNDS + 1):
        mean = kept.mean(axis=0)
        covariance = np.cov(kept, rowvar=False)
        # A little ridge keeps the inverse finite when two features move together.
        covariance += np.eye(len(mean)) * 1e-6 * np.trace(covariance) / len(mean)
        inverse = np.linalg.inv(covariance)
        distances = mahalanobis(values, mean, inverse)
        kept = values[distances <= np.quantile(distances, 1 - TRIM_FRACTION)]
    return mean, inverse


def survey_shift(views: dict[str, np.ndarray]) -> dict[str, float]:
    """Per feature, (mean of DECaLS galaxies - mean of SDSS galaxies) / pooled standard deviation."""
    decals = [v for name, v in views.items() if any(f"/{s}@" in name for s in DECALS_SOURCES)]
    sdss = [v for name, v in views.items() if not any(f"/{s}@" in name for s in DECALS_SOURCES)]
    if not decals or not sdss:
        # One survey only: nothing tells the survey's imaging from the galaxies; keep every feature.
        return dict.fromkeys(FEATURES, 0.0)
    a, b = np.concatenate(decals), np.concatenate(sdss)
    pooled = np.sqrt((a.var(axis=0) + b.var(axis=0)) / 2) + 1e-12
    return dict(zip(FEATURES, ((a.mean(axis=0) - b.mean(axis=0)) / pooled).tolist(), strict=True))


def mahalanobis(values: np.ndarray, mean: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    delta = values - mean
    return np.einsum("ij,jk,ik->i", delta, inverse, delta)


def auroc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(score of a negative > score of a positive), ties counting half (Mann-Whitney U)."""
    if len(positives) == 0 or len(negatives) == 0:
        return math.nan
    scores = np.concatenate([positives, negatives])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    # Average ranks over ties.
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    negative_ranks = ranks[len(positives) :].sum()
    n_neg = len(negatives)
    return float((negative_ranks - n_neg * (n_neg + 1) / 2) / (len(positives) * n_neg))


def feature_separation(galaxies: np.ndarray, negatives: np.ndarray, mean: np.ndarray) -> dict[str, float]:
    """Each feature alone: AUROC of its distance from the galaxies' robust centre."""
    spread = np.median(np.abs(galaxies - mean), axis=0) + 1e-9
    return {
        name: auroc(
            np.abs(galaxies[:, i] - mean[i]) / spread[i], np.abs(negatives[:, i] - mean[i]) / spread[i]
        )
        for i, name in enumerate(FEATURES)
    }


def _model_config(manifest: dict[str, Any], config_path: Path) -> dict[str, Any]:
    """The training configuration the packaged model was trained with (its splits), else config.toml."""
    training = manifest.get("training", {}).get("config")
    return training if training else load_config(config_path)


def _classifier(models_dir: Path, manifest: dict[str, Any], threads: int) -> GalaxyClassifier:
    """The serving classifier for the packaged model, without any earlier gate (whose
    features this code may no longer know)."""
    with tempfile.TemporaryDirectory() as folder:
        stripped = Path(folder) / "galaxy10.json"
        stripped.write_text(json.dumps({k: v for k, v in manifest.items() if k != "ood"}))
        return GalaxyClassifier(
            model_path=models_dir / manifest["model_file"], manifest_path=stripped, num_threads=threads
        )


def negative_sets(classifier: GalaxyClassifier, pre: PreprocessConfig) -> list[FeatureSet]:
    rng = np.random.default_rng(SEED)
    return [FeatureSet(name, _served(classifier, make(rng), pre)) for name, make in NEGATIVES.items()]


class NoGalaxiesError(RuntimeError):
    """No training source was found to fit the gate on."""


def fit(
    models_dir: Path,
    data_root: Path,
    *,
    galaxy10_h5: Path | None = None,
    config_path: Path = DEFAULT_CONFIG,
    train_per_source: int = TRAIN_PER_SOURCE,
    threads: int = 2,
) -> dict[str, Any]:
    """Fit the gate of the model packaged in ``models_dir``, write it into its manifest
    (every other key untouched), print the metrics table and return it."""
    started = time.perf_counter()
    manifest_path = models_dir / "galaxy10.json"
    manifest = json.loads(manifest_path.read_text())
    config = _model_config(manifest, config_path)
    pre = PreprocessConfig.from_manifest(manifest["preprocessing"])
    classifier = _classifier(models_dir, manifest, threads)
    rng = np.random.default_rng(SEED)
    splits = galaxy_splits(config, data_root, pre.crop_fraction, galaxy10_h5)
    if not splits["train"] or not splits["val"]:
        raise NoGalaxiesError(f"no training source found under {data_root} (nor a Galaxy10 h5)")
    train_views = {
        view.name: _served(classifier, _sample(view.images, train_per_source, rng), pre, view.crop_fraction)
        for view in splits["train"]
    }
    train = np.concatenate(list(train_views.values()))
    val = [FeatureSet(v.name, _served(classifier, v.images, pre, v.crop_fraction)) for v in splits["val"]]
    test = [FeatureSet(v.name, _served(classifier, v.images, pre, v.crop_fraction)) for v in splits["test"]]
    dev = dev_images(data_root)
    if dev:
        test.append(FeatureSet("galaxy10_decals_dev", _served(classifier, dev, pre)))
    negatives = negative_sets(classifier, pre)

    shifts = survey_shift(train_views)
    all_negatives = np.concatenate([n.values for n in negatives])
    val_galaxies = np.concatenate([s.values for s in val])
    separation = feature_separation(val_galaxies, all_negatives, np.median(train, axis=0))
    selected = [
        i
        for i, name in enumerate(FEATURES)
        if name not in COLOUR_FEATURES
        and abs(shifts[name]) < SURVEY_SHIFT_LIMIT
        and separation[name] >= MIN_FEATURE_AUROC
    ]
    mean, inverse = fit_gaussian(train[:, selected])

    def score(values: np.ndarray) -> np.ndarray:
        return mahalanobis(values[:, selected], mean, inverse)

    # Each validation source and framing flags at most TARGET_FLAG_RATE, so no one survey carries the flags.
    threshold = max(float(np.quantile(score(s.values), 1 - TARGET_FLAG_RATE)) for s in val)
    report = metrics_table(val, test, negatives, score, threshold)
    report["feature_auroc_val"] = {name: round(value, 4) for name, value in separation.items()}
    report["survey_shift_train"] = {name: round(value, 3) for name, value in shifts.items()}
    report["fitted_on"] = {"train_galaxies": len(train), "per_source_and_framing_cap": train_per_source}
    manifest["ood"] = {
        "version": VERSION,
        "features": [FEATURES[i] for i in selected],
        "mean": [float(x) for x in mean],
        "inverse_covariance": [[float(x) for x in row] for row in inverse],
        "threshold": threshold,
        "score": "squared Mahalanobis distance; above the threshold = out of distribution",
        "metrics": report,
    }
    # The gate must load exactly as serving will load it.
    ood.OodGate.from_manifest(manifest["ood"])
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(format_table(report))
    print(f"fitted in {time.perf_counter() - started:.0f} s; wrote {manifest_path}")
    return report


def metrics_table(
    val: list[FeatureSet],
    test: list[FeatureSet],
    negatives: list[FeatureSet],
    score: Callable[[np.ndarray], np.ndarray],
    threshold: float,
) -> dict[str, Any]:
    """Flag rate per set, and AUROC of the pooled test galaxies (dev images included) against
    each negative family."""
    rows: dict[str, Any] = {}
    for s in [*val, *test, *negatives]:
        values = score(s.values)
        rows[s.name] = {
            "n": len(s),
            "flagged": round(float((values > threshold).mean()), 4) if len(s) else None,
        }
    galaxies = np.concatenate([score(s.values) for s in test])
    pooled_negatives = np.concatenate([score(n.values) for n in negatives])
    for n in negatives:
        rows[n.name]["auroc_vs_test_galaxies"] = round(auroc(galaxies, score(n.values)), 4)
    return {
        "sets": rows,
        "test_galaxies_flagged": round(float((galaxies > threshold).mean()), 4),
        "negatives_flagged": round(float((pooled_negatives > threshold).mean()), 4),
        "auroc": round(auroc(galaxies, pooled_negatives), 4),
    }


def format_table(report: dict[str, Any]) -> str:
    lines = [f"{'set':34} {'n':>6} {'flagged':>8} {'AUROC':>7}"]
    for name, row in report["sets"].items():
        flagged = "-" if row["flagged"] is None else f"{row['flagged']:.1%}"
        auc = row.get("auroc_vs_test_galaxies")
        lines.append(f"{name:34} {row['n']:>6} {flagged:>8} {'' if auc is None else f'{auc:.3f}':>7}")
    lines.append(
        f"test galaxies flagged {report['test_galaxies_flagged']:.1%}; negatives flagged "
        f"{report['negatives_flagged']:.1%}; AUROC (all negatives vs test galaxies) {report['auroc']:.3f}"
    )
    if "survey_shift_train" in report:
        lines.append("survey shift, DECaLS vs SDSS training galaxies, in pooled SDs (|shift| >= "
                     f"{SURVEY_SHIFT_LIMIT} dropped): " + ", ".join(
            f"{name} {value:+.2f}" for name, value in report["survey_shift_train"].items()
        ))  # fmt: skip
    if "feature_auroc_val" in report:
        lines.append("one feature alone (validation galaxies vs all negatives): " + ", ".join(
            f"{name} {value:.2f}" for name, value in report["feature_auroc_val"].items()
        ))  # fmt: skip
    return "\n".join(lines)


# --- galamo's gate --------------------------------------------------------------------------


def _whole(view: GalaxyView, pre: PreprocessConfig) -> float:
    """The part of the file galamo is shown: all of it for the as-uploaded view; for a source's
    own framing, the same region relative to the serving crop that our model sees."""
    return min(1.0, view.crop_fraction / pre.crop_fraction)


def _galamo_input(image: ImageSource, crop_fraction: float = 1.0) -> np.ndarray:
    """galamo's preprocessing: the whole image, RGB, resized to 128 px with cv2's bilinear
    (no antialiasing, which tf.image.resize reproduces), scaled to 0-1."""
    import tensorflow as tf

    data = image if isinstance(image, bytes) else Path(image).read_bytes()
    with Image.open(io.BytesIO(data)) as opened:
        rgb = np.asarray(opened.convert("RGB"), dtype=np.float32)
    if crop_fraction < 1.0:
        height, width = rgb.shape[:2]
        side = int(min(height, width) * crop_fraction)
        top, left = (height - side) // 2, (width - side) // 2
        rgb = rgb[top : top + side, left : left + side]
    return tf.image.resize(rgb, (128, 128), method="bilinear", antialias=False).numpy() / 255.0


def run_galamo(args: argparse.Namespace) -> dict[str, Any]:
    """galamo 0.0.8's model.keras (class 0 "Galaxy", 1 "Not a Galaxy"), scored on the same sets.

    Its score is P(not a galaxy); it flags at argmax, as galamo does.
    """
    import keras

    gate = keras.models.load_model(args.package / "model.keras")
    manifest = json.loads((args.models_dir / "galaxy10.json").read_text())
    config = _model_config(manifest, args.config)
    pre = PreprocessConfig.from_manifest(manifest["preprocessing"])
    splits = galaxy_splits(config, args.data_root, pre.crop_fraction, args.galaxy10_h5)

    def scores(images: Iterable[ImageSource], crop_fraction: float = 1.0) -> np.ndarray:
        batch = np.stack(
            [_galamo_input(_encoded(i) if isinstance(i, src.H5Image) else i, crop_fraction) for i in images]
        )
        return gate.predict(batch, verbose=0)[:, 1].astype(np.float64)

    # galamo sees whole files; a source's own framing is its centre crop of the file, as for our gate.
    val = [FeatureSet(v.name, scores(v.images, _whole(v, pre))[:, None]) for v in splits["val"]]
    test = [FeatureSet(v.name, scores(v.images, _whole(v, pre))[:, None]) for v in splits["test"]]
    dev = dev_images(args.data_root)
    if dev:
        test.append(FeatureSet("galaxy10_decals_dev", scores(dev)[:, None]))
    rng = np.random.default_rng(SEED)
    negatives = [FeatureSet(name, scores(make(rng))[:, None]) for name, make in NEGATIVES.items()]
    report = metrics_table(val, test, negatives, lambda v: v[:, 0], 0.5)
    print(format_table(report))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("fit", "galamo"):
        command = commands.add_parser(name)
        command.add_argument("--models-dir", type=Path, default=Path(__file__).with_name("models"))
        command.add_argument("--data-root", type=Path, default=Path("../shared/data"))
        command.add_argument(
            "--config",
            type=Path,
            default=DEFAULT_CONFIG,
            help="used when the manifest lacks its training config",
        )
        command.add_argument("--json", type=Path, help="also write the metrics here")
        command.add_argument(
            "--galaxy10-h5", type=Path, help="the real Galaxy10_DECals.h5, if it trained the model"
        )
    commands.choices["fit"].add_argument("--train-per-source", type=int, default=TRAIN_PER_SOURCE)
    commands.choices["fit"].add_argument("--threads", type=int, default=2)
    commands.choices["galamo"].add_argument(
        "--package", type=Path, required=True, help="the unpacked galamo/ folder"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    if args.command == "fit":
        report = fit(
            args.models_dir,
            args.data_root,
            galaxy10_h5=args.galaxy10_h5,
            config_path=args.config,
            train_per_source=args.train_per_source,
            threads=args.threads,
        )
    else:
        report = run_galamo(args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
