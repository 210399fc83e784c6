"""ml.ood and its helpers: the gate's fit (on a generated Galaxy10-schema h5 with the shipped
model), its statistics (ml.ood_stats) and its negatives (ml.ood_negatives)."""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("skimage")

from classifier.core.manifest import ModelManifest
from classifier.core.ood import OodGate
from ml import ood, ood_negatives, ood_stats
from ml.tests.test_sources import write_h5

MODELS_DIR = Path(ood.__file__).with_name("models")


def test_auroc_counts_pairs_and_ties():
    assert ood_stats.auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert ood_stats.auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert ood_stats.auroc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5
    # 3 of the 4 (positive, negative) pairs are ordered.
    assert ood_stats.auroc(np.array([0.0, 2.0]), np.array([1.0, 3.0])) == 0.75


def test_robust_fit_ignores_a_few_wild_points():
    rng = np.random.default_rng(0)
    values = rng.normal([1.0, -2.0], [1.0, 0.5], size=(2000, 2))
    values[:20] = 1e3
    mean, inverse = ood_stats.fit_gaussian(values)
    np.testing.assert_allclose(mean, [1.0, -2.0], atol=0.1)
    np.testing.assert_allclose(np.sqrt(np.diag(np.linalg.inv(inverse))), [1.0, 0.5], rtol=0.15)


def test_survey_shift_is_in_pooled_standard_deviations():
    rng = np.random.default_rng(1)
    sdss = rng.normal(0, 1, size=(4000, len(ood_stats.FEATURES)))
    decals = rng.normal(0, 1, size=(4000, len(ood_stats.FEATURES)))
    decals[:, 0] += 2.0
    shifts = ood_stats.survey_shift({"train/gz1@0.4": sdss, "train/gz_decals_partial@0.85": decals})
    assert shifts[ood_stats.FEATURES[0]] == pytest.approx(2.0, abs=0.1)
    assert abs(shifts[ood_stats.FEATURES[1]]) < 0.1


@pytest.mark.parametrize("name", ood_negatives.NEGATIVES)
def test_negatives_are_decodable_uploads(name):
    from PIL import Image

    images = ood_negatives.NEGATIVES[name](np.random.default_rng(0))
    assert len(images) >= 40
    for data in images[:5]:
        with Image.open(io.BytesIO(data)) as image:
            assert image.format in {"JPEG", "PNG"}


def galaxy(rng: np.random.Generator, side: int = 128) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side] - (side - 1) / 2
    ratio = rng.uniform(0.4, 1.0)
    radius = np.hypot(xx, yy / ratio)
    light = rng.uniform(120, 230) * np.exp(-radius / rng.uniform(3, 7))
    frame = rng.normal(10, 3, (side, side, 1)) + light[..., None] * np.array([1.0, 0.9, 0.8])
    return np.clip(frame, 0, 255).astype(np.uint8)


def test_fit_writes_a_gate_that_serving_loads(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 8)
    h5 = tmp_path / "Galaxy10_DECals.h5"
    write_h5(h5, np.stack([galaxy(rng) for _ in labels]), labels)
    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(MODELS_DIR / "galaxy10.tflite", models / "galaxy10.tflite")
    original = json.loads((MODELS_DIR / "galaxy10.json").read_text())
    (models / "galaxy10.json").write_text(json.dumps({k: v for k, v in original.items() if k != "ood"}))

    report = ood.fit(models, tmp_path / "no-shared-data", galaxy10_h5=h5, train_per_source=64)

    written = json.loads((models / "galaxy10.json").read_text())
    assert {k: v for k, v in written.items() if k != "ood"} == {
        k: v for k, v in original.items() if k != "ood"
    }
    gate = OodGate.from_section(ModelManifest.read(models / "galaxy10.json").ood)
    assert gate is not None
    assert written["ood"]["version"] == ood.VERSION
    assert set(gate.features).isdisjoint(ood.COLOUR_FEATURES)
    assert report["sets"]["blank"]["flagged"] == 1.0
    assert report["auroc"] > 0.9


def test_fit_without_any_galaxies_says_so(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(MODELS_DIR, models, ignore=shutil.ignore_patterns("MODEL_CARD.md"))
    with pytest.raises(ood.NoGalaxiesError):
        ood.fit(models, tmp_path / "nothing-here")
