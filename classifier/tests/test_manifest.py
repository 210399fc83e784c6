"""The manifest schema (classifier/core/manifest.py): what it accepts, what it refuses and why,
and that what training writes is what serving reads."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from classifier.core.exceptions import ModelUnavailableError
from classifier.core.galaxy10 import CLASS_NAMES
from classifier.core.inference import GalaxyClassifier
from classifier.core.manifest import FORMAT_VERSION, ManifestError, ModelManifest
from classifier.core.preprocessing import PreprocessConfig

SHIPPED = Path(__file__).resolve().parents[2] / "ml" / "models" / "galaxy10.json"
REQUIRED = ("format_version", "model_version", "sha256", "classes", "preprocessing", "output")


@pytest.fixture
def shipped() -> dict:
    return json.loads(SHIPPED.read_text(encoding="utf-8"))


def refusal(data: dict) -> str:
    with pytest.raises(ManifestError) as caught:
        ModelManifest.from_dict(data)
    return str(caught.value)


def test_the_shipped_manifest_validates(shipped):
    manifest = ModelManifest.read(SHIPPED)
    assert manifest.format_version == FORMAT_VERSION
    assert manifest.model_version == shipped["model_version"]
    assert manifest.sha256 == shipped["sha256"]
    assert tuple(c.name for c in manifest.classes) == CLASS_NAMES
    assert manifest.preprocessing == PreprocessConfig.from_manifest(shipped["preprocessing"])
    assert manifest.output_kind == "probabilities"
    assert manifest.as_dict() == shipped


def test_reading_and_writing_the_shipped_manifest_keeps_its_bytes(tmp_path):
    copy_path = tmp_path / "galaxy10.json"
    ModelManifest.read(SHIPPED).write(copy_path)
    assert copy_path.read_bytes() == SHIPPED.read_bytes()


def test_create_writes_the_layout_training_has_always_written(shipped, tmp_path):
    # Rebuilt from the shipped manifest's values, the file comes out byte for byte the same,
    # so models packaged before and after this module are read alike.
    output = {k: v for k, v in shipped["output"].items() if k != "kind"}
    sections = {
        k: v for k, v in shipped.items() if k not in {*REQUIRED, "model_file", "created_at", "output"}
    }
    manifest = ModelManifest.create(
        model_file=shipped["model_file"],
        model_version=shipped["model_version"],
        sha256=shipped["sha256"],
        created_at=shipped["created_at"],
        preprocessing=PreprocessConfig.from_manifest(shipped["preprocessing"]),
        output=output,
        **sections,
    )
    path = tmp_path / "galaxy10.json"
    manifest.write(path)
    assert path.read_text(encoding="utf-8") == SHIPPED.read_text(encoding="utf-8")


@pytest.mark.parametrize("key", REQUIRED)
def test_a_missing_key_is_named(shipped, key):
    del shipped[key]
    assert key in refusal(shipped)


@pytest.mark.parametrize("version", [2, 0, "1", None, True])
def test_another_format_version_is_refused(shipped, version):
    shipped["format_version"] = version
    assert "format_version" in refusal(shipped)


def test_classes_in_another_order_are_refused(shipped):
    shipped["classes"][0]["name"], shipped["classes"][1]["name"] = CLASS_NAMES[1], CLASS_NAMES[0]
    assert "do not match the Galaxy10 DECaLS classes" in refusal(shipped)


def test_classes_listed_out_of_order_are_read_by_index(shipped):
    shipped["classes"].reverse()
    assert tuple(c.name for c in ModelManifest.from_dict(shipped).classes) == CLASS_NAMES


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda classes: classes.pop(), "do not match"),
        (lambda classes: classes.append(copy.deepcopy(classes[0])), "each once"),
        (lambda classes: classes[3].update(index=30), "each once"),
        (lambda classes: classes[3].update(index="3"), "integer index"),
        (lambda classes: classes[3].pop("name"), "integer index and a name"),
        (lambda classes: classes[3].pop("description"), "no description"),
        (lambda classes: classes.__setitem__(3, "Round Smooth"), "not a list of objects"),
    ],
)
def test_malformed_classes_are_refused(shipped, change, message):
    change(shipped["classes"])
    assert message in refusal(shipped)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("sha256", "C6710A4C" * 8, "sha256"),
        ("sha256", "abc", "sha256"),
        ("model_version", "", "model_version"),
        ("output", {"kind": "logits"}, "output kind is 'logits'"),
        ("output", {}, "output kind is None"),
        ("output", {"kind": "probabilities", "calibration_temperature": 0}, "calibration_temperature"),
        ("preprocessing", {"size": 0}, "size"),
        ("preprocessing", {"size": 128, "resample": "cubic"}, "resample"),
        ("preprocessing", {"size": 128, "std": 0}, "std"),
        ("preprocessing", [128], "not a JSON object"),
        ("metrics", [], "metrics is not a JSON object"),
        ("created_at", 20261126, "created_at is not a string"),
    ],
)
def test_bad_values_are_refused_with_the_key_named(shipped, key, value, message):
    shipped[key] = value
    assert message in refusal(shipped)


def test_not_an_object_is_refused():
    assert "not a JSON object" in refusal([1, 2, 3])


def test_unknown_optional_keys_pass_through(shipped, tmp_path):
    gate = {"method": "energy", "threshold": -4.2, "calibrated_on": ["val/pooled"]}
    shipped["ood"] = gate
    path = tmp_path / "galaxy10.json"
    ModelManifest.from_dict(shipped).write(path)
    assert ModelManifest.read(path).as_dict()["ood"] == gate


def test_the_dict_view_is_a_copy(shipped):
    manifest = ModelManifest.from_dict(shipped)
    manifest.as_dict()["metrics"].clear()
    manifest.section("metrics").clear()
    assert manifest.as_dict()["metrics"] == shipped["metrics"]


def test_unreadable_files_say_which_file(tmp_path):
    missing = tmp_path / "absent.json"
    with pytest.raises(ManifestError, match="does not exist"):
        ModelManifest.read(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    with pytest.raises(ManifestError, match=r"broken\.json is unreadable"):
        ModelManifest.read(broken)


def test_serving_refuses_a_manifest_of_another_format_version(model_copy):
    model_path, manifest_path = model_copy
    data = json.loads(manifest_path.read_text())
    data["format_version"] = FORMAT_VERSION + 1
    manifest_path.write_text(json.dumps(data))
    with pytest.raises(ModelUnavailableError, match="format_version 2; this server reads format_version 1"):
        GalaxyClassifier(model_path=model_path, manifest_path=manifest_path)


def test_serving_refuses_a_manifest_that_declares_logits(model_copy):
    model_path, manifest_path = model_copy
    data = json.loads(manifest_path.read_text())
    data["output"]["kind"] = "logits"
    manifest_path.write_text(json.dumps(data))
    with pytest.raises(ModelUnavailableError, match="output kind is 'logits'"):
        GalaxyClassifier(model_path=model_path, manifest_path=manifest_path)
