"""The whole pipeline end to end on a tiny generated Galaxy10-schema h5: train, export, evaluate, package."""

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("torch")
pytest.importorskip("tensorflow")

from classifier.core.manifest import ModelManifest
from ml import cache
from ml.config import DEFAULT_CONFIG
from ml.pipeline import parse_override, run_pipeline, write_card
from ml.tests.test_sources import write_h5


def galaxy_like(label: int, rng: np.random.Generator) -> np.ndarray:
    """A 64 px blob whose elongation and colour depend on the class."""
    image = Image.new("RGB", (64, 64), (15, 15, 20))
    draw = ImageDraw.Draw(image)
    half_w = 4 + label * 2 + int(rng.integers(0, 3))
    draw.ellipse((32 - half_w, 28, 32 + half_w, 36), fill=(120 + 12 * label, 140, 200 - 12 * label))
    noise = rng.integers(0, 6, size=(64, 64, 3))
    return np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8)


@pytest.mark.slow
def test_pipeline_packages_a_model_from_a_galaxy10_h5(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / "cache")
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 8)
    images = np.stack([galaxy_like(int(label), rng) for label in labels])
    images[1] = images[0]  # a duplicate pair with equal labels: one is dropped
    h5 = tmp_path / "Galaxy10_DECals.h5"
    write_h5(h5, images, labels)

    args = argparse.Namespace(
        config=DEFAULT_CONFIG,
        overrides={
            "image_size": 64,
            "train.epochs": 1,
            "train.batch_size": 16,
            "export.representative_samples": 16,
        },
        data_root=tmp_path / "no-shared-data",
        galaxy10_h5=h5,
        run=tmp_path / "run",
        models_dir=tmp_path / "models",
        static_dir=tmp_path / "static",
        skip_train=False,
    )
    manifest = run_pipeline(args)

    manifest_path = tmp_path / "models" / "galaxy10.json"
    written = json.loads(manifest_path.read_text())
    assert written["model_version"] == manifest["model_version"]
    assert ModelManifest.read(manifest_path).model_version == manifest["model_version"]
    assert written["preprocessing"]["size"] == 64
    assert written["provenance"]["sources"][0]["dropped_duplicates"] == 1
    test_set = written["metrics"]["test/galaxy10_h5"]
    assert test_set["n"] == 10
    assert 0.0 <= test_set["top1"] <= 1.0
    assert written["quantization"] in {"int8", "float16"}
    assert (tmp_path / "models" / "galaxy10.tflite").stat().st_size > 1_000_000
    assert "galaxy10_h5" in (tmp_path / "models" / "MODEL_CARD.md").read_text()
    # The out-of-distribution gate is fitted for the packaged model, and the card reports it.
    assert written["ood"]["metrics"]["sets"]["test/galaxy10_h5@0.7"]["n"] == 10
    assert written["sha256"] == manifest["sha256"]
    assert "out-of-distribution gate" in (tmp_path / "models" / "MODEL_CARD.md").read_text()


def test_overrides_parse_toml_values():
    assert parse_override("train.epochs=2") == ("train.epochs", 2)
    assert parse_override("split.fractions=[0.7, 0.15, 0.15]") == ("split.fractions", [0.7, 0.15, 0.15])
    with pytest.raises(argparse.ArgumentTypeError):
        parse_override("epochs")


def test_card_only_rewrites_the_model_card_from_the_packaged_manifest(tmp_path):
    """`make ood` refits the gate in the manifest; `--card-only` brings the card in step with it."""
    shipped = Path(__file__).resolve().parents[1] / "models"
    models = tmp_path / "models"
    models.mkdir()
    manifest = json.loads((shipped / "galaxy10.json").read_text())
    manifest["ood"]["metrics"]["negatives_flagged"] = 0.987  # as a refit would change it
    (models / "galaxy10.json").write_text(json.dumps(manifest))
    (models / "MODEL_CARD.md").write_text("stale\n")

    written = write_card(models, tmp_path / "static")

    card = (models / "MODEL_CARD.md").read_text()
    assert written["model_version"] == manifest["model_version"]
    assert manifest["model_version"] in card
    assert "98.7% of generated non-galaxy" in card
