"""classifier.predictions.inference and the classifier it serves (classifier.core.inference):
loading, checks, batching, threads, real images."""

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.test import override_settings

from classifier.core import inference as core_inference
from classifier.core.exceptions import ModelUnavailableError
from classifier.core.galaxy10 import CLASS_NAMES
from classifier.core.preprocessing import PreprocessConfig, preprocess
from classifier.predictions import inference
from classifier.tests.utils import make_image_bytes

SHIPPED_MODEL = Path(django_settings.BASE_DIR) / "ml" / "models" / "galaxy10.tflite"


def distinct_images(count):
    return [
        make_image_bytes(size=(90 + i, 70 + 2 * i), color=((37 * i) % 256, (91 * i) % 256, (53 * i) % 256))
        for i in range(count)
    ]


def test_loads_lazily_once_per_process():
    inference.reset_classifier()
    assert inference._classifier is None
    first = inference.get_classifier()
    assert inference.get_classifier() is first


def test_concurrent_first_use_builds_one_classifier():
    inference.reset_classifier()
    barrier = threading.Barrier(8)

    def build():
        barrier.wait()
        return inference.get_classifier()

    with ThreadPoolExecutor(8) as pool:
        built = list(pool.map(lambda _: build(), range(8)))
    assert len({id(c) for c in built}) == 1


def test_reports_its_backend():
    classifier = inference.get_classifier()
    assert classifier.backend_name == "ai-edge-litert"
    assert inference.model_status() == (
        True,
        f"model {classifier.model_version} served with ai-edge-litert",
    )


def test_unknown_backend_setting_is_refused(settings):
    settings.TFLITE_BACKEND = "tensorflow"
    with pytest.raises(ModelUnavailableError, match="not one of"):
        inference.get_classifier()


def test_tflite_runtime_backend_is_selectable(settings):
    settings.TFLITE_BACKEND = "tflite-runtime"
    try:
        import tflite_runtime  # noqa: F401
    except ImportError:
        with pytest.raises(ModelUnavailableError, match="no TFLite backend"):
            inference.get_classifier()
    else:
        assert inference.get_classifier().backend_name == "tflite-runtime"


def test_override_settings_swaps_the_model(model_copy):
    model_path, _ = model_copy
    classifier = inference.get_classifier()
    assert classifier.model_path == model_path
    with override_settings(MODEL_PATH=model_path.parent / "absent.tflite"):
        ok, reason = inference.model_status()
        assert not ok
        assert "absent.tflite does not exist" in reason
    assert inference.get_classifier().model_path == model_path


def test_sha256_mismatch_is_refused(model_copy):
    model_path, _ = model_copy
    data = bytearray(model_path.read_bytes())
    data[-1] ^= 0xFF
    model_path.write_bytes(bytes(data))
    with pytest.raises(ModelUnavailableError, match="sha256"):
        inference.get_classifier()


def test_manifest_classes_must_match_galaxy10(model_copy):
    _, manifest_path = model_copy
    manifest = json.loads(manifest_path.read_text())
    manifest["classes"] = manifest["classes"][:9]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelUnavailableError, match="classes do not match"):
        inference.get_classifier()


def test_manifest_must_be_json(model_copy):
    _, manifest_path = model_copy
    manifest_path.write_text("{ not json")
    with pytest.raises(ModelUnavailableError, match="unreadable"):
        inference.get_classifier()


def test_input_size_must_match_manifest(model_copy):
    _, manifest_path = model_copy
    manifest = json.loads(manifest_path.read_text())
    manifest["preprocessing"]["size"] += 1
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelUnavailableError, match="model input is"):
        inference.get_classifier()


def test_serving_preprocesses_exactly_as_the_manifest_says(settings):
    classifier = inference.get_classifier()
    manifest = json.loads(Path(settings.MODEL_MANIFEST).read_text())
    config = PreprocessConfig.from_manifest(manifest["preprocessing"])
    assert classifier.manifest.preprocessing == config
    image = make_image_bytes(size=(300, 200), color=(200, 100, 50))
    prepared = classifier.prepare(image)
    np.testing.assert_array_equal(prepared.tensor, preprocess(image, config))
    assert prepared.tensor.shape == (config.size, config.size, 3)
    assert (prepared.width, prepared.height) == (300, 200)


def test_result_is_typed_and_consistent():
    result = inference.get_classifier().classify(make_image_bytes())
    assert isinstance(result, core_inference.ClassificationResult)
    assert len(result.probabilities) == len(CLASS_NAMES)
    assert sum(result.probabilities) == pytest.approx(1.0, abs=1e-9)
    assert result.class_index == int(np.argmax(result.probabilities))
    assert result.class_name == CLASS_NAMES[result.class_index]
    assert result.confidence == max(result.probabilities)
    assert result.inference_ms > 0
    with pytest.raises(AttributeError):
        result.confidence = 0.5


def test_batch_equals_single():
    classifier = inference.get_classifier()
    images = distinct_images(5)
    batch = classifier.classify_batch(images)
    singles = [classifier.classify(image) for image in images]
    for from_batch, alone in zip(batch, singles, strict=True):
        assert from_batch.class_index == alone.class_index
        np.testing.assert_allclose(from_batch.probabilities, alone.probabilities, atol=1e-5)


def test_batches_larger_than_the_chunk_size(monkeypatch):
    monkeypatch.setattr(core_inference, "MAX_BATCH_SIZE", 3)
    classifier = inference.get_classifier()
    images = distinct_images(7)
    results = classifier.classify_batch(images)
    assert len(results) == 7
    np.testing.assert_allclose(
        results[6].probabilities, classifier.classify(images[6]).probabilities, atol=1e-5
    )


def test_concurrent_classification_never_mixes_results():
    classifier = inference.get_classifier()
    images = distinct_images(12)
    expected = [classifier.classify(image).probabilities for image in images]
    barrier = threading.Barrier(12)

    def classify(index):
        barrier.wait()
        return classifier.classify(images[index]).probabilities

    with ThreadPoolExecutor(12) as pool:
        for _ in range(3):
            got = list(pool.map(classify, range(12)))
            for index in range(12):
                np.testing.assert_allclose(got[index], expected[index], atol=1e-6)


def test_several_interpreters_give_the_same_results_concurrently():
    classifier = inference.get_classifier()
    images = distinct_images(8)
    expected = [classifier.classify(image).probabilities for image in images]
    classifier.use_interpreters(3)
    assert classifier.interpreter_count >= 3
    classifier.use_interpreters(2)
    assert classifier.interpreter_count >= 3
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            got = list(pool.map(lambda image: classifier.classify(image).probabilities, images))
            for index in range(8):
                np.testing.assert_allclose(got[index], expected[index], atol=1e-6)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"GIF89a\x00\x00", "recognised"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "recognised"),
    ],
)
def test_unusable_bytes_raise_image_decode_error(content, message):
    from classifier.core.preprocessing import ImageDecodeError

    with pytest.raises(ImageDecodeError, match=message):
        inference.get_classifier().prepare(content)


def test_other_formats_are_refused(image_bytes):
    from classifier.core.preprocessing import ImageDecodeError

    ico = image_bytes(fmt="ICO", size=(32, 32))
    with pytest.raises(ImageDecodeError, match="not accepted"):
        inference.get_classifier().prepare(ico)


def test_real_galaxy_images(galaxy_images):
    classifier = inference.get_classifier()
    results = classifier.classify_batch(galaxy_images)
    assert len(results) == len(galaxy_images)
    for path, result in zip(galaxy_images, results, strict=True):
        assert sum(result.probabilities) == pytest.approx(1.0, abs=1e-9), path
        assert all(0.0 <= p <= 1.0 for p in result.probabilities)
        assert result.width > 0
        assert result.height > 0


def test_shipped_model_beats_chance_on_real_galaxies(settings, galaxy_images):
    if Path(settings.MODEL_PATH) != SHIPPED_MODEL:
        pytest.skip("the shipped model ml/models/galaxy10.tflite is not the one under test")
    # Files are named c<class>_<n>.jpg by the data set's curator.
    truth = [int(path.name.split("_")[0][1:]) for path in galaxy_images]
    results = inference.get_classifier().classify_batch(galaxy_images)
    accuracy = np.mean([r.class_index == t for r, t in zip(results, truth, strict=True)])
    assert accuracy > 0.3, f"accuracy {accuracy:.2f} on {len(truth)} real galaxies"


def test_model_sha256_is_reported(settings):
    classifier = inference.get_classifier()
    assert classifier.model_sha256 == hashlib.sha256(Path(settings.MODEL_PATH).read_bytes()).hexdigest()
