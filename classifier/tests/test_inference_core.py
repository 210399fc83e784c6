"""classifier.core without Django: importable with no settings, and a GalaxyClassifier built
from a typed ModelManifest with the decode limits and the metrics hook its caller passes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings as django_settings

from classifier.core.decode import DecodeLimits
from classifier.core.exceptions import ModelUnavailableError
from classifier.core.inference import GalaxyClassifier
from classifier.core.interpreters import output_indices
from classifier.core.manifest import ModelManifest
from classifier.core.preprocessing import ImageDecodeError
from classifier.tests.utils import make_image_bytes

ROOT = Path(django_settings.BASE_DIR)

IMPORT_EVERY_CORE_MODULE = r"""
import importlib, json, pkgutil, sys
import classifier.core
names = sorted(m.name for m in pkgutil.walk_packages(classifier.core.__path__, "classifier.core."))
for name in names:
    importlib.import_module(name)
outside = sorted(
    m for m in sys.modules
    if m.split(".")[0] == "django"
    or (m.startswith("classifier.") and m.split(".")[1] in ("predictions", "web", "ops", "jobs", "api"))
)
print(json.dumps({"imported": names, "outside": outside}))
"""


def test_every_core_module_imports_without_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_CORE_MODULE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    report = json.loads(run.stdout.splitlines()[-1])
    assert "classifier.core.inference" in report["imported"]
    assert "classifier.core.decode" in report["imported"]
    assert report["outside"] == []


def test_a_classifier_needs_no_settings_to_classify(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from classifier.core.inference import GalaxyClassifier\n"
        "from classifier.core.manifest import ModelManifest\n"
        "manifest = ModelManifest.read(Path(sys.argv[2]))\n"
        "classifier = GalaxyClassifier(manifest=manifest, model_path=Path(sys.argv[1]))\n"
        "print(classifier.classify(Path(sys.argv[3])).class_name)\n"
        "print('django' in sys.modules)\n"
    )
    image = tmp_path / "image.png"
    image.write_bytes(make_image_bytes(size=(120, 100)))
    model, manifest = django_settings.MODEL_PATH, django_settings.MODEL_MANIFEST
    run = subprocess.run(
        [sys.executable, "-c", script, str(model), str(manifest), str(image)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    class_name, django_loaded = run.stdout.strip().splitlines()[-2:]
    assert class_name
    assert django_loaded == "False"


@pytest.fixture
def manifest():
    return ModelManifest.read(Path(django_settings.MODEL_MANIFEST))


def test_built_from_a_typed_manifest(manifest):
    classifier = GalaxyClassifier(manifest=manifest, model_path=Path(django_settings.MODEL_PATH))
    assert classifier.manifest is manifest
    assert classifier.model_version == manifest.model_version
    prepared = classifier.prepare(make_image_bytes())
    assert prepared.tensor.shape == (manifest.preprocessing.size, manifest.preprocessing.size, 3)


def test_from_files_reports_a_broken_manifest(tmp_path):
    broken = tmp_path / "galaxy10.json"
    broken.write_text("{ not json")
    with pytest.raises(ModelUnavailableError, match="unreadable"):
        GalaxyClassifier.from_files(model_path=Path(django_settings.MODEL_PATH), manifest_path=broken)


def test_the_limits_are_asked_for_on_every_image(manifest):
    limits = [DecodeLimits()]
    classifier = GalaxyClassifier(
        manifest=manifest, model_path=Path(django_settings.MODEL_PATH), limits=lambda: limits[0]
    )
    image = make_image_bytes(size=(200, 100))
    classifier.prepare(image)
    limits[0] = DecodeLimits(max_pixels=10_000)
    with pytest.raises(ImageDecodeError, match="more than the limit"):
        classifier.prepare(image)
    assert classifier.prepare(image, max_pixels=20_000).width == 200


def test_inference_timings_go_to_the_hook(manifest):
    calls = []
    classifier = GalaxyClassifier(
        manifest=manifest,
        model_path=Path(django_settings.MODEL_PATH),
        record_inference=lambda seconds, images: calls.append((seconds, images)),
    )
    classifier.classify_batch([make_image_bytes(color=(i * 40, 80, 120)) for i in range(3)])
    assert [images for _, images in calls] == [2, 1]
    assert all(seconds > 0 for seconds, _ in calls)


def test_a_manifest_for_another_file_is_refused(manifest, tmp_path):
    data = json.loads(json.dumps(manifest.as_dict()))
    data["sha256"] = "0" * 64
    with pytest.raises(ModelUnavailableError, match="sha256"):
        GalaxyClassifier(manifest=ModelManifest.from_dict(data), model_path=Path(django_settings.MODEL_PATH))


def _output(index, width):
    return {"index": index, "shape": np.array([1, width])}


def test_outputs_are_told_apart_by_their_width_whatever_their_order():
    votes_first = [_output(7, 34), _output(3, 10)]
    assert output_indices(votes_first, outputs=10, votes=34) == (3, 7)
    # A model with the vote output served by a manifest that does not declare it.
    assert output_indices(votes_first, outputs=10, votes=None) == (3, None)
    assert output_indices([_output(3, 10)], outputs=10, votes=None) == (3, None)
    with pytest.raises(ValueError, match=r"expected \[1, 10\] and \[1, 34\]"):
        output_indices([_output(3, 10)], outputs=10, votes=34)
    with pytest.raises(ValueError, match=r"expected \[1, 10\]"):
        output_indices([_output(3, 9)], outputs=10, votes=None)
    with pytest.raises(ValueError, match="expected"):
        output_indices([_output(3, 10), _output(4, 10)], outputs=10, votes=None)
