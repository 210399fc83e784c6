"""The out-of-distribution gate (classifier/core/ood.py, docs/ood.md), with the shipped model and its
fitted parameters.

The images are made here: what a user might send that is not a galaxy cutout (noise, a blank
frame, a gradient, a Pillow-drawn landscape), and a synthetic galaxy on dark sky that must pass.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from PIL import Image, ImageDraw, ImageFilter

from classifier.core import ood
from classifier.core.exceptions import ModelUnavailableError
from classifier.core.manifest import ManifestError, ModelManifest, OodSection
from classifier.core.ood import FEATURE_NAMES, OodGate, features
from classifier.core.preprocessing import PreprocessConfig
from classifier.models import OUT_OF_DISTRIBUTION_WARNING, Prediction
from classifier.ops import metrics
from classifier.predictions import inference
from classifier.tests.utils import galaxy_jpeg
from conftest import GALAXY_DATA_DIR

SDSS_DIR = GALAXY_DATA_DIR.parent / "gz2_votes_sdss" / "images"


def _jpeg(array: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def galaxy_blob(seed: int = 0) -> bytes:
    """A galaxy like a survey cutout, with two faint stars."""
    return galaxy_jpeg(seed, stars=2)


def noise_frame(seed: int = 0) -> bytes:
    return _jpeg(np.random.default_rng(seed).uniform(0, 255, (256, 256, 3)))


def blank_frame() -> bytes:
    return _jpeg(np.full((256, 256, 3), 128.0))


def gradient_frame() -> bytes:
    ramp = np.linspace(0, 255, 320)[None, :, None]
    return _jpeg(np.broadcast_to(ramp, (240, 320, 3)).copy())


def landscape_photo(seed: int = 0) -> bytes:
    """A natural-looking scene drawn with Pillow: sky, sun, hills, a house, textured grass."""
    rng = np.random.default_rng(seed)
    width, height = 480, 360
    sky = np.linspace(0, 1, height)[:, None, None] * np.array([90, 60, 10]) + np.array([110, 170, 235])
    image = Image.fromarray(np.broadcast_to(sky, (height, width, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse((340, 40, 400, 100), fill=(255, 230, 120))
    draw.polygon([(0, 230), (150, 170), (300, 220), (480, 160), (480, 360), (0, 360)], fill=(70, 130, 60))
    draw.rectangle((180, 210, 260, 280), fill=(170, 80, 60))
    draw.polygon([(170, 210), (220, 170), (270, 210)], fill=(100, 40, 30))
    draw.rectangle((210, 245, 230, 280), fill=(60, 40, 30))
    pixels = np.asarray(image, dtype=np.float64)
    pixels[230:] += rng.normal(0, 12, pixels[230:].shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


NOT_GALAXIES = {
    "noise": noise_frame,
    "blank": blank_frame,
    "gradient": gradient_frame,
    "landscape photo": landscape_photo,
}


@pytest.fixture
def classifier():
    inference.reset_classifier()
    yield inference.get_classifier()
    inference.reset_classifier()


def test_shipped_manifest_has_a_fitted_gate(classifier):
    gate = classifier.ood_gate
    assert gate is not None
    assert set(gate.features) <= set(FEATURE_NAMES)
    assert gate.threshold > 0
    # The gate's own centre is in distribution.
    assert gate.distance(dict(zip(gate.features, gate.mean, strict=True))) == pytest.approx(0.0)


@pytest.mark.parametrize("name", NOT_GALAXIES)
def test_pictures_that_are_not_galaxy_cutouts_are_flagged(classifier, name):
    result = classifier.classify(NOT_GALAXIES[name]())
    assert result.in_distribution is False, (name, result.ood_score)
    assert result.ood_score > classifier.ood_gate.threshold


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_synthetic_galaxy_on_dark_sky_is_in_distribution(classifier, seed):
    result = classifier.classify(galaxy_blob(seed))
    assert result.in_distribution is True, result.ood_score
    assert 0 <= result.ood_score <= classifier.ood_gate.threshold


def test_real_galaxies_are_rarely_flagged(classifier):
    """The 30 Galaxy10 DECaLS dev images and 100 SDSS GZ2 cutouts (docs/ood.md has the measured rates)."""
    if not GALAXY_DATA_DIR.is_dir() or not SDSS_DIR.is_dir():
        pytest.skip(f"real galaxy images not available: {GALAXY_DATA_DIR} or {SDSS_DIR} is absent")
    sdss = sorted(SDSS_DIR.glob("*.jpg"))[:100]
    dev = sorted(GALAXY_DATA_DIR.glob("*.jpg"))
    flagged_sdss = [p.name for p in sdss if not classifier.classify(p).in_distribution]
    flagged_dev = [p.name for p in dev if not classifier.classify(p).in_distribution]
    assert len(flagged_sdss) <= 0.03 * len(sdss), flagged_sdss
    assert len(flagged_dev) <= 0.1 * len(dev), flagged_dev


def test_features_are_computed_from_the_model_input():
    config = PreprocessConfig(size=64)
    dark = np.full((64, 64, 3), (10 - config.mean) / config.std, np.float32)
    lit = dark.copy()
    lit[24:40, 24:40] = (200 - config.mean) / config.std
    flat = features(dark, np.full(10, 0.1), config)
    blob = features(lit, np.eye(10)[3], config)
    assert set(flat) == set(FEATURE_NAMES)
    assert flat["concentration"] == 0.0
    assert blob["concentration"] > 0.5
    assert blob["centre_contrast"] > flat["centre_contrast"]
    assert blob["entropy"] < flat["entropy"]


def _manifest_without_ood(model_copy) -> None:
    _, manifest_path = model_copy
    manifest = json.loads(manifest_path.read_text())
    del manifest["ood"]
    manifest_path.write_text(json.dumps(manifest))
    inference.reset_classifier()


def test_manifest_without_ood_gives_unknown(model_copy):
    _manifest_without_ood(model_copy)
    result = inference.get_classifier().classify(noise_frame())
    assert result.in_distribution is None
    assert result.ood_score is None


@pytest.mark.parametrize(
    "change",
    [
        lambda ood: ood.update(features=["no_such_feature"]),
        lambda ood: ood.update(mean=ood["mean"][:-1]),
        lambda ood: ood.update(threshold="high"),
        lambda ood: ood.pop("inverse_covariance"),
    ],
)
def test_malformed_gate_makes_the_model_unavailable(model_copy, change):
    _, manifest_path = model_copy
    manifest = json.loads(manifest_path.read_text())
    change(manifest["ood"])
    manifest_path.write_text(json.dumps(manifest))
    inference.reset_classifier()
    with pytest.raises(ModelUnavailableError, match="ood"):
        inference.get_classifier()


def test_no_section_means_no_gate():
    assert OodGate.from_section(None) is None


def test_the_gate_is_built_from_the_manifests_checked_section():
    manifest = ModelManifest.read(Path(settings.MODEL_MANIFEST))

    gate = OodGate.from_section(manifest.ood)

    assert gate.features == manifest.ood.features
    assert gate.threshold == manifest.ood.threshold
    assert gate.version == manifest.ood.version
    np.testing.assert_array_equal(gate.mean, manifest.ood.mean)
    assert gate.inverse_covariance.shape == (len(gate.features),) * 2
    components = manifest.ood.components or ()
    assert len(gate.means) == max(1, len(components))
    assert gate.names == (tuple(c.name for c in components) if components else ("",))


# --- the mixture gate: scoring and the manifest's shape --------------------------------------

# A gate as every manifest wrote it before the mixture (the 5 December model's, without its metrics).
SINGLE_GAUSSIAN = {
    "version": "gaussian-mahalanobis-1",
    "features": ["sky_spread", "centre_contrast", "concentration", "aperture_fraction", "centroid_offset"],
    "mean": [-4.097317769344977, 0.3551490502738243, 0.35826176899501977, 0.8064888599739043, 0.0371290578],
    "inverse_covariance": [
        [10.933705580298312, -29.039499167492103, 8.44959520649063, 44.38918501323078, 37.76740876047074],
        [-29.03949916749211, 246.74275043743305, 94.16561766247507, -242.19705932896883, -115.73056886399738],
        [8.449595206490635, 94.16561766247506, 276.844080967502, -31.081697250951667, 219.46494318428566],
        [44.389185013230765, -242.19705932896875, -31.08169725095168, 519.3483951973369, 584.6763708162198],
        [37.76740876047072, -115.73056886399732, 219.46494318428557, 584.6763708162198, 1580.7451343333491],
    ],
    "threshold": 93.97119629111454,
    "score": "squared Mahalanobis distance; above the threshold = out of distribution",
}


def two_gaussians(**changes) -> dict:
    """A mixture gate over two features: unit Gaussians at (0, 0) ("sdss") and (10, 0) ("decals")."""
    sdss = {"name": "sdss", "mean": [0.0, 0.0], "inverse_covariance": [[1.0, 0.0], [0.0, 1.0]]}
    decals = {"name": "decals", "mean": [10.0, 0.0], "inverse_covariance": [[1.0, 0.0], [0.0, 1.0]]}
    gate = {
        "version": "gaussian-mixture-mahalanobis-2",
        "features": ["concentration", "centre_contrast"],
        "mean": sdss["mean"],
        "inverse_covariance": sdss["inverse_covariance"],
        "components": [sdss, decals],
        "threshold": 9.0,
    }
    return {**gate, **changes}


def test_the_score_is_the_distance_to_the_nearest_component():
    gate = OodGate.from_section(OodSection.parse(two_gaussians(), "ood"))
    near_decals = {"concentration": 10.5, "centre_contrast": 1.0}
    between = {"concentration": 5.0, "centre_contrast": 0.0}

    assert gate.names == ("sdss", "decals")
    assert gate.distances(near_decals) == pytest.approx([10.5**2 + 1.0, 0.5**2 + 1.0])
    assert gate.distance(near_decals) == pytest.approx(1.25)
    # Halfway, 5 standard deviations from both: out, though one Gaussian over both would call it central.
    assert gate.distance(between) == pytest.approx(25.0)
    assert gate.distance(between) > gate.threshold
    assert gate.distance({"concentration": -0.5, "centre_contrast": 0.5}) == pytest.approx(0.5)


def test_judge_scores_the_model_input_against_the_nearest_component():
    config = PreprocessConfig(size=64)
    tensor = np.full((64, 64, 3), (10 - config.mean) / config.std, np.float32)
    tensor[24:40, 24:40] = (200 - config.mean) / config.std
    values = features(tensor, np.full(10, 0.1), config, ("concentration", "centre_contrast"))
    at_the_image = {"name": "decals", "mean": [values["concentration"], values["centre_contrast"]],
                    "inverse_covariance": [[1.0, 0.0], [0.0, 1.0]]}  # fmt: skip
    sdss = two_gaussians()["components"][0]
    gate = OodGate.from_section(OodSection.parse(two_gaussians(components=[sdss, at_the_image]), "ood"))

    in_distribution, score = gate.judge(tensor, np.full(10, 0.1), config)

    assert in_distribution is True
    assert score == pytest.approx(0.0)


def test_a_single_gaussian_manifest_loads_and_scores_as_before_the_mixture():
    section = OodSection.parse(json.loads(json.dumps(SINGLE_GAUSSIAN)), "ood")
    gate = OodGate.from_section(section)
    mean = np.array(SINGLE_GAUSSIAN["mean"])
    inverse = np.array(SINGLE_GAUSSIAN["inverse_covariance"])
    rng = np.random.default_rng(0)

    assert section.components is None
    assert section.to_dict() == SINGLE_GAUSSIAN, "written back without a components key"
    assert len(gate.means) == 1
    assert gate.names == ("",)
    for row in mean + rng.normal(0, 0.3, (20, len(mean))):
        # The score as the single-Gaussian gate computed it, bit for bit.
        delta = row - mean
        assert gate.distance(dict(zip(SINGLE_GAUSSIAN["features"], row, strict=True))) == float(
            delta @ inverse @ delta
        )


def test_a_mixture_gate_is_written_back_as_read():
    section = OodSection.parse(two_gaussians(), "ood")
    assert section.to_dict() == two_gaussians()
    assert [c.name for c in section.components] == ["sdss", "decals"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda gate: gate["components"][1].update(mean=[10.0]),
            "ood.components[1] has 2 features but a mean of 1 values",
        ),
        (
            lambda gate: gate["components"][1]["inverse_covariance"][0].append(0.0),
            "ood.components[1] has 2 features",
        ),
        (
            lambda gate: gate["components"][0]["inverse_covariance"].pop(),
            "ood.components[0] has 2 features but a mean of 2 values and an inverse covariance of 1 rows",
        ),
        (lambda gate: gate["components"][1].pop("name"), "ood.components[1] lacks name"),
        (lambda gate: gate["components"][1].update(mean=[1.0, "x"]), "ood.components[1].mean[1] 'x' is not"),
        (lambda gate: gate.update(components={"sdss": {}}), "ood.components is not a list"),
        (
            lambda gate: gate.update(mean=[1.0, 0.0]),
            "ood mean and inverse_covariance are not its components[0]'s",
        ),
    ],
)
def test_a_malformed_mixture_is_refused_with_the_reason(change, message):
    gate = json.loads(json.dumps(two_gaussians()))
    change(gate)
    with pytest.raises(ManifestError) as refused:
        OodSection.parse(gate, "ood")
    assert message in str(refused.value)


# --- audit log, API, pages, exports -----------------------------------------------------------


@pytest.mark.django_db
def test_api_reports_out_of_distribution_with_a_warning(anonymous_client):
    before = metrics.OUT_OF_DISTRIBUTION.labels(source="api")._value.get()
    response = anonymous_client.post(
        reverse("api:prediction-list"),
        {
            "image": [
                SimpleUploadedFile("noise.jpg", noise_frame(), "image/jpeg"),
                SimpleUploadedFile("galaxy.jpg", galaxy_blob(), "image/jpeg"),
            ]
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    noise, galaxy = response.json()["predictions"]
    assert noise["in_distribution"] is False
    assert noise["warnings"] == [OUT_OF_DISTRIBUTION_WARNING]
    assert noise["ood_score"] > galaxy["ood_score"]
    assert galaxy["in_distribution"] is True
    assert galaxy["warnings"] == []
    stored = Prediction.objects.get(pk=noise["id"])
    assert stored.in_distribution is False
    assert stored.ood_score == pytest.approx(noise["ood_score"])
    assert metrics.OUT_OF_DISTRIBUTION.labels(source="api")._value.get() == before + 1


@pytest.mark.django_db
def test_api_detail_of_a_prediction_without_a_gate_says_null(staff_client):
    from classifier.tests.factories import PredictionFactory

    prediction = PredictionFactory()
    response = staff_client.get(reverse("api:prediction-detail", args=[prediction.pk]))
    assert response.status_code == 200
    body = response.json()
    assert body["in_distribution"] is None
    assert body["ood_score"] is None
    assert body["warnings"] == []


@pytest.mark.django_db
def test_result_page_warns_when_the_image_is_not_a_galaxy(client):
    response = client.post(
        reverse("classifier:upload"), {"images": SimpleUploadedFile("noise.jpg", noise_frame(), "image/jpeg")}
    )
    assert response.status_code == 302, response.content[:500]
    prediction = Prediction.objects.get()
    assert prediction.in_distribution is False
    page = client.get(prediction.get_absolute_url()).content.decode()
    assert 'id="ood-warning"' in page
    assert "does not look like the galaxy cutouts the model was trained on" in page


@pytest.mark.django_db
def test_result_page_has_no_warning_for_a_galaxy(client):
    client.post(
        reverse("classifier:upload"), {"images": SimpleUploadedFile("g.jpg", galaxy_blob(), "image/jpeg")}
    )
    prediction = Prediction.objects.get()
    assert prediction.in_distribution is True
    assert 'id="ood-warning"' not in client.get(prediction.get_absolute_url()).content.decode()


@pytest.mark.django_db
def test_result_page_shows_the_stored_verdict(client, staff):
    from classifier.tests.factories import PredictionFactory

    client.force_login(staff)
    flagged = PredictionFactory(in_distribution=False, ood_score=99.0)
    unknown = PredictionFactory()
    page = client.get(flagged.get_absolute_url()).content.decode()
    assert 'id="ood-warning"' in page
    assert 'id="ood-verdict"' in page
    assert "99.0" in page
    page = client.get(unknown.get_absolute_url()).content.decode()
    assert 'id="ood-warning"' not in page
    assert 'id="ood-verdict"' not in page


@pytest.mark.django_db
def test_audit_csv_export_has_the_gate_columns(staff_client):
    from classifier.tests.factories import PredictionFactory

    flagged = PredictionFactory(in_distribution=False, ood_score=123.4567)
    unknown = PredictionFactory()
    response = staff_client.get(reverse("api:prediction-list"), {"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_id = {int(row["id"]): row for row in rows}
    assert by_id[flagged.pk]["in_distribution"] == "false"
    assert by_id[flagged.pk]["ood_score"] == "123.457"
    assert by_id[unknown.pk]["in_distribution"] == ""


def test_classify_command_outputs_the_gate(tmp_path):
    (tmp_path / "noise.jpg").write_bytes(noise_frame())
    (tmp_path / "galaxy.jpg").write_bytes(galaxy_blob())
    out = io.StringIO()
    call_command("classify", str(tmp_path), stdout=out, stderr=io.StringIO())
    rows = {Path(row["path"]).name: row for row in csv.DictReader(io.StringIO(out.getvalue()))}
    assert rows["noise.jpg"]["in_distribution"] == "false"
    assert rows["galaxy.jpg"]["in_distribution"] == "true"
    assert float(rows["noise.jpg"]["ood_score"]) > float(rows["galaxy.jpg"]["ood_score"])
    out = io.StringIO()
    call_command(
        "classify", str(tmp_path / "noise.jpg"), "--format", "json", stdout=out, stderr=io.StringIO()
    )
    [record] = json.loads(out.getvalue())
    assert record["in_distribution"] is False
    assert record["ood_score"] > 0


def test_settings_point_at_the_shipped_manifest():
    # The serving tests above are only meaningful with the real fitted parameters.
    manifest = json.loads(Path(settings.MODEL_MANIFEST).read_text())
    assert "ood" in manifest


@pytest.mark.django_db
def test_results_grid_marks_only_the_non_galaxy(client):
    response = client.post(
        reverse("classifier:upload"),
        {
            "images": [
                SimpleUploadedFile("noise.jpg", noise_frame(), "image/jpeg"),
                SimpleUploadedFile("galaxy.jpg", galaxy_blob(), "image/jpeg"),
            ]
        },
    )
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    flagged = Prediction.objects.get(original_filename="noise.jpg")
    assert page.count('class="badge badge-ood"') == 1
    card = page.split(f'data-prediction-id="{flagged.pk}"', 1)[1].split("</li>", 1)[0]
    assert "badge-ood" in card


@pytest.mark.parametrize("size", [1, 2, 3, 4, 4719, 4720])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_gates_median_is_numpys_median(size, dtype):
    """The gate's features were fitted with np.median; its faster median must give the same bits."""
    rng = np.random.default_rng(size)
    for rounded in (False, True):  # ties too: sky pixels repeat after JPEG quantisation
        values = rng.normal(size=size).astype(dtype)
        if rounded:
            values = np.round(values, 1)
        assert ood._median(values) == float(np.median(values))
