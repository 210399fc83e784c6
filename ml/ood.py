"""Fit and measure the out-of-distribution gate of a packaged model (docs/ood.md).

    python -m ml.ood fit --models-dir ml/models          # refit, write manifest["ood"], print the table
    python -m ml.ood galamo --package DIR                # galamo 0.0.8's galaxy/not-galaxy gate, same sets

Every image goes through what serving does with it: classifier.core.preprocessing with the
manifest's parameters (the serving crop, whatever the source), then the packaged TFLite model
through classifier.core.inference's GalaxyClassifier, then classifier.core.ood's features. The
Gaussian (or with --mixture one per survey family) is fitted on training-split galaxies, the threshold on the
validation splits (each source flags at most ``TARGET_FLAG_RATE`` of its galaxies), and the
test splits, dev images and synthetic negatives are reported only: nothing is chosen on them. The fitted
gate is written into the manifest through classifier.core.manifest (ModelManifest.with_ood),
every other key untouched.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from classifier.core import ood
from classifier.core.decode import PreparedImage
from classifier.core.inference import GalaxyClassifier
from classifier.core.manifest import ModelManifest, OodSection
from classifier.core.preprocessing import ImageSource, PreprocessConfig, preprocess
from ml import sources as src
from ml.config import DEFAULT_CONFIG, Config, load_config
from ml.ood_negatives import NEGATIVES
from ml.ood_stats import (
    FEATURES,
    SURVEY_SHIFT_LIMIT,
    Component,
    FeatureSet,
    feature_separation,
    fit_components,
    format_table,
    metrics_table,
    mixture_score,
    survey_shift,
)

# One Gaussian; a mixture of one Gaussian per survey family has its own version.
VERSION = "gaussian-mahalanobis-1"
MIXTURE_VERSION = "gaussian-mixture-mahalanobis-2"
# The packaged model's files in --models-dir (ml/pipeline.py writes them).
MANIFEST_FILE = "galaxy10.json"
MODEL_FILE = "galaxy10.tflite"
# Colour is left out whatever it measures: the app classifies single-band FITS cutouts in
# grey (docs/fits.md) and every survey stretches colour its own way; the Galaxy10 DECaLS
# images' colours lie outside both training surveys' (docs/ood.md, "How the features were chosen").
COLOUR_FEATURES = ("chroma", "sky_chroma")
# A feature that alone separates validation galaxies from the negatives worse than this
# (AUROC) adds parameters to the Gaussian and little else.
MIN_FEATURE_AUROC = 0.75
TARGET_FLAG_RATE = 0.01
# Training galaxies per source for the fit: the Gaussian has a mean and a covariance over a
# handful of features, so a few hundred per source pin it down and keep a refit short.
TRAIN_PER_SOURCE = 600
SEED = 20261127


# --- positives ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GalaxyView:
    """One source's images of one split, and the centre crop they are seen with."""

    name: str
    images: list[src.ImageRef]
    crop_fraction: float


def galaxy_splits(
    config: Config, data_root: Path, serving_crop: float, galaxy10_h5: Path | None = None
) -> dict[str, list[GalaxyView]]:
    """{split: views}: the training sources split exactly as the model's training split them.

    Each source is seen twice: with its own crop (the framing training gave it to match a
    Galaxy10 DECaLS cutout at the serving crop, ml/config.toml) and with the serving crop
    applied to the file as it is (a survey cutout uploaded as it comes).
    """
    # The sources exactly as training loads them (ml.dataset imports torch: only when fitting).
    from ml.dataset import collect_sources

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


def _model_config(manifest: ModelManifest, config_path: Path) -> Config:
    """The training configuration the packaged model was trained with (its splits), else config.toml."""
    training = manifest.training.config if manifest.training is not None else None
    return Config.from_dict(training) if training else load_config(config_path)


def _classifier(models_dir: Path, manifest: ModelManifest, threads: int) -> GalaxyClassifier:
    """The serving classifier for the packaged model, without any earlier gate (whose
    features this code may no longer know)."""
    return GalaxyClassifier(
        manifest=manifest.without_ood(),
        model_path=models_dir / (manifest.model_file or MODEL_FILE),
        num_threads=threads,
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
    mixture: bool = False,
) -> dict[str, Any]:
    """Fit the gate of the model packaged in ``models_dir``, write it into its manifest
    (every other key untouched), print the metrics table and return it.

    With ``mixture`` the gate has one Gaussian per survey family of the training galaxies
    (ml.ood_stats.fit_components); by default, or with one family, one Gaussian. The mixture is
    off by default: measured on the 5 December model it flagged fewer negatives (docs/ood.md)."""
    started = time.perf_counter()
    manifest_path = models_dir / MANIFEST_FILE
    manifest = ModelManifest.read(manifest_path)
    config = _model_config(manifest, config_path)
    pre = manifest.preprocessing
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
    components = fit_components(
        {name: values[:, selected] for name, values in train_views.items()}, mixture=mixture
    )

    def score(values: np.ndarray) -> np.ndarray:
        return mixture_score(values[:, selected], components)

    # Each validation source and framing flags at most TARGET_FLAG_RATE, so no one survey carries the flags.
    threshold = max(float(np.quantile(score(s.values), 1 - TARGET_FLAG_RATE)) for s in val)
    report = metrics_table(val, test, negatives, score, threshold)
    report["feature_auroc_val"] = {name: round(value, 4) for name, value in separation.items()}
    report["survey_shift_train"] = {name: round(value, 3) for name, value in shifts.items()}
    report["fitted_on"] = {"train_galaxies": len(train), "per_source_and_framing_cap": train_per_source}
    report["components"] = {c.name: {"train_galaxies": c.train_galaxies} for c in components}
    # Read through the schema, as serving will read it: a gate serving would refuse is not written.
    gate = OodSection.parse(_gate_json([FEATURES[i] for i in selected], components, threshold, report), "ood")
    manifest.with_ood(gate).write(manifest_path)
    print(format_table(report))
    print(f"fitted in {time.perf_counter() - started:.0f} s; wrote {manifest_path}")
    return report


def _gate_json(
    features: list[str], components: list[Component], threshold: float, report: dict[str, Any]
) -> dict[str, Any]:
    """The manifest's "ood" object; a single Gaussian is written exactly as before the mixture
    (no "components"), and a mixture keeps its first component in mean/inverse_covariance for
    readers that predate it."""

    def gaussian(component: Component) -> dict[str, Any]:
        return {
            "mean": [float(x) for x in component.mean],
            "inverse_covariance": [[float(x) for x in row] for row in component.inverse],
        }

    mixture = len(components) > 1
    return {
        "version": MIXTURE_VERSION if mixture else VERSION,
        "features": features,
        **gaussian(components[0]),
        **({"components": [{"name": c.name, **gaussian(c)} for c in components]} if mixture else {}),
        "threshold": threshold,
        "score": (
            "squared Mahalanobis distance to the nearest component"
            if mixture
            else "squared Mahalanobis distance"
        )
        + "; above the threshold = out of distribution",
        "metrics": report,
    }


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
    manifest = ModelManifest.read(args.models_dir / MANIFEST_FILE)
    config = _model_config(manifest, args.config)
    pre = manifest.preprocessing
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
    commands.choices["fit"].add_argument(
        "--mixture", action="store_true", help="one Gaussian per survey family (docs/ood.md), not one"
    )
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
            mixture=args.mixture,
        )
    else:
        report = run_galamo(args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
