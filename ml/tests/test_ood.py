"""ml.ood and its helpers: the gate's fit (on a generated Galaxy10-schema h5 with the shipped
model), its statistics (ml.ood_stats) and its negatives (ml.ood_negatives)."""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("skimage")

from classifier.core.manifest import ModelManifest, OodSection
from classifier.core.ood import OodGate, squared_mahalanobis
from ml import ood, ood_negatives, ood_stats
from ml.tests.test_sources import write_h5

MODELS_DIR = Path(ood.__file__).with_name("models")


def test_auroc_counts_pairs_and_ties():
    assert ood_stats.auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert ood_stats.auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert ood_stats.auroc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5
    # 3 of the 4 (positive, negative) pairs are ordered.
    assert ood_stats.auroc(np.array([0.0, 2.0]), np.array([1.0, 3.0])) == 0.75


def test_fitting_and_serving_score_with_one_distance():
    rng = np.random.default_rng(2)
    covariance = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 0.5]])
    mean, inverse = np.array([1.0, -1.0, 0.5]), np.linalg.inv(covariance)
    values = rng.normal(size=(5, 3))
    # The definition, written out: delta' S^-1 delta, with S^-1 delta solved rather than multiplied.
    expected = [float(d @ np.linalg.solve(covariance, d)) for d in values - mean]
    np.testing.assert_allclose(squared_mahalanobis(values, mean, inverse), expected, rtol=1e-12)
    gate = OodGate(
        features=("a", "b", "c"), means=(mean,), inverse_covariances=(inverse,), threshold=1.0, version=""
    )
    for row, distance in zip(values, expected, strict=True):
        assert gate.distance(dict(zip("abc", row, strict=True))) == pytest.approx(distance, rel=1e-12)


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


@pytest.mark.parametrize(
    ("view", "family"),
    [
        ("train/gz1@0.4", "sdss"),
        ("train/gz2_hart@0.6", "sdss"),
        ("val/gz2_kaggle@0.7", "sdss"),
        ("train/gz_decals_partial@0.85", "decals"),
        ("train/gz_decals_votes@0.7", "decals"),
        ("test/galaxy10_h5@0.7", "decals"),
    ],
)
def test_views_are_grouped_by_survey(view, family):
    assert ood_stats.family(view) == family


def two_surveys(rng: np.random.Generator, n: int = 1000) -> dict[str, np.ndarray]:
    return {
        "train/gz1@0.4": rng.normal([0.0, 0.0], 1.0, size=(n, 2)),
        "train/gz_decals_votes@0.7": rng.normal([8.0, 0.0], 1.0, size=(n, 2)),
    }


def test_one_component_per_survey_and_the_score_is_the_nearest():
    views = two_surveys(np.random.default_rng(2))
    components = ood_stats.fit_components(views)

    assert [(c.name, c.train_galaxies) for c in components] == [("sdss", 1000), ("decals", 1000)]
    np.testing.assert_allclose(components[1].mean, [8.0, 0.0], atol=0.15)
    scores = ood_stats.mixture_score(np.array([[8.0, 0.0], [4.0, 0.0], [0.0, 0.0]]), components)
    assert scores[0] < 1
    assert scores[2] < 1
    # Between the surveys, 4 standard deviations from both: far, where one Gaussian would be central.
    assert scores[1] > 12
    single = ood_stats.fit_components(views, mixture=False)
    assert [c.name for c in single] == ["all"]
    assert ood_stats.mixture_score(np.array([[4.0, 0.0]]), single)[0] < 2


def test_a_survey_with_few_galaxies_gets_no_component_of_its_own():
    rng = np.random.default_rng(3)
    views = two_surveys(rng)
    views["train/gz_decals_votes@0.7"] = views["train/gz_decals_votes@0.7"][
        : ood_stats.MIN_COMPONENT_GALAXIES - 1
    ]
    assert [c.name for c in ood_stats.fit_components(views)] == ["all"]
    assert [c.name for c in ood_stats.fit_components({"train/gz1@0.4": views["train/gz1@0.4"]})] == ["all"]


def test_a_fitted_mixture_serves_the_scores_it_was_fitted_with():
    rng = np.random.default_rng(4)
    components = ood_stats.fit_components(two_surveys(rng))
    names = ["concentration", "centroid_offset"]
    report = {"negatives_flagged": 0.5}

    gate_json = ood._gate_json(names, components, 9.0, report)
    section = OodSection.parse(json.loads(json.dumps(gate_json)), "ood")
    gate = OodGate.from_section(section)

    assert gate_json["version"] == ood.MIXTURE_VERSION
    assert gate.names == ("sdss", "decals")
    np.testing.assert_array_equal(section.mean, components[0].mean)
    rows = rng.normal([4.0, 0.0], 4.0, size=(50, 2))
    served = [gate.distance(dict(zip(names, row, strict=True))) for row in rows]
    np.testing.assert_allclose(served, ood_stats.mixture_score(rows, components), rtol=1e-9)


def test_a_single_gaussian_is_written_as_before_the_mixture():
    components = ood_stats.fit_components(two_surveys(np.random.default_rng(5)), mixture=False)
    gate_json = ood._gate_json(["concentration", "centroid_offset"], components, 9.0, {})
    assert gate_json["version"] == ood.VERSION
    assert "components" not in gate_json
    assert list(gate_json) == [
        "version",
        "features",
        "mean",
        "inverse_covariance",
        "threshold",
        "score",
        "metrics",
    ]


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

    report = ood.fit(models, tmp_path / "no-shared-data", galaxy10_h5=h5, train_per_source=64, mixture=True)

    written = json.loads((models / "galaxy10.json").read_text())
    assert {k: v for k, v in written.items() if k != "ood"} == {
        k: v for k, v in original.items() if k != "ood"
    }
    gate = OodGate.from_section(ModelManifest.read(models / "galaxy10.json").ood)
    assert gate is not None
    # One survey family (the Galaxy10 h5 alone): one Gaussian even when a mixture is asked for,
    # written as before the mixture.
    assert written["ood"]["version"] == ood.VERSION
    assert "components" not in written["ood"]
    assert report["components"] == {"all": {"train_galaxies": report["fitted_on"]["train_galaxies"]}}
    assert set(gate.features).isdisjoint(ood.COLOUR_FEATURES)
    assert report["sets"]["blank"]["flagged"] == 1.0
    assert report["auroc"] > 0.9


def test_fit_without_any_galaxies_says_so(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(MODELS_DIR, models, ignore=shutil.ignore_patterns("MODEL_CARD.md"))
    with pytest.raises(ood.NoGalaxiesError):
        ood.fit(models, tmp_path / "nothing-here")
