"""The manifest schema (classifier/core/manifest.py): what it accepts, what it refuses and why,
and that what training writes is what serving reads."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from classifier.core.exceptions import ModelUnavailableError
from classifier.core.galaxy10 import CLASS_NAMES
from classifier.core.galaxy_zoo import NUM_ANSWERS, QUESTIONS
from classifier.core.inference import GalaxyClassifier
from classifier.core.manifest import (
    FORMAT_VERSION,
    GalaxyZooSection,
    ManifestError,
    ModelManifest,
    OodSection,
)
from classifier.core.preprocessing import PreprocessConfig
from classifier.tests.utils import make_image_bytes

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


def test_unknown_keys_pass_through(shipped, tmp_path):
    report = {"method": "energy", "threshold": -4.2, "calibrated_on": ["val/pooled"]}
    shipped["drift_report"] = report
    shipped["metrics"]["val/gz1"]["median_error"] = 0.1
    path = tmp_path / "galaxy10.json"
    ModelManifest.from_dict(shipped).write(path)
    assert ModelManifest.read(path).as_dict() == shipped


def test_sections_are_typed(shipped):
    manifest = ModelManifest.from_dict(shipped)

    assert manifest.output.calibration_temperature == shipped["output"]["calibration_temperature"]
    assert manifest.input.shape == tuple(shipped["input"]["shape"])
    dev = manifest.metrics.sets["galaxy10_decals_dev"]
    assert dev.top1 == shipped["metrics"]["galaxy10_decals_dev"]["top1"]
    assert dev.reliability.counts == tuple(shipped["metrics"]["galaxy10_decals_dev"]["reliability"]["counts"])
    assert manifest.metrics.sets["val/gz1"].size == shipped["metrics"]["val/gz1"]["images"]
    assert "export_check" not in manifest.metrics.sets
    assert set(manifest.metrics.export_check.candidates) == {"int8", "float16"}
    assert manifest.provenance.sources[0].name == shipped["provenance"]["sources"][0]["name"]
    assert manifest.training.config == shipped["training"]["config"]
    assert manifest.ood.features == tuple(shipped["ood"]["features"])
    assert manifest.ood.threshold == shipped["ood"]["threshold"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["metrics"].update(broken={"n": "thirty"}), "metrics.broken.n 'thirty' is not a whole"),
        (
            lambda m: m["metrics"]["val/gz1"].update(top1=2.0),
            "metrics.val/gz1.top1 2.0 is not a number from 0",
        ),
        (lambda m: m["metrics"]["val/pooled"].update(per_class_recall=[0.5] * 9), "has 9 values, not 10"),
        (lambda m: m["metrics"]["val/pooled"]["confusion_matrix"][2].append(1), "confusion_matrix[2] has 11"),
        (lambda m: m["metrics"]["galaxy10_decals_dev"]["reliability"]["counts"].pop(), "one more edge"),
        (lambda m: m["metrics"]["export_check"]["candidates"]["int8"].update(bytes=-1), "int8.bytes -1"),
        (lambda m: m["metrics"].update(dev=[0.5]), "metrics.dev is not a JSON object"),
        (lambda m: m["provenance"]["sources"][0].pop("name"), "provenance.sources[0] lacks name"),
        (lambda m: m["training"].update(config="seed=1"), "training.config is not a JSON object"),
        (lambda m: m["training"].update(class_weights=[1.0]), "training.class_weights has 1 values"),
        (lambda m: m["input"].update(batch_resizable="yes"), "input.batch_resizable is not true or false"),
        (lambda m: m["figures"].update(reliability=3), "figures.reliability is not a string"),
    ],
)
def test_malformed_sections_are_refused_with_the_key_and_the_reason(shipped, change, message):
    change(shipped)
    assert message in refusal(shipped)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ood: ood.update(features=["no_such_feature"]), "ood.features[0] 'no_such_feature' is not a"),
        (lambda ood: ood.update(features=[]), "ood names no features"),
        (lambda ood: ood.update(mean=ood["mean"][:-1]), lambda n: f"a mean of {n - 1} values"),
        (lambda ood: ood["inverse_covariance"].pop(), lambda n: f"inverse covariance of {n - 1} rows"),
        (lambda ood: ood.update(threshold="high"), "ood.threshold 'high' is not a finite number"),
        (lambda ood: ood.update(threshold=float("nan")), "ood.threshold nan is not a finite number"),
        (lambda ood: ood.pop("inverse_covariance"), "ood lacks inverse_covariance"),
        (lambda ood: ood.update(threshold=None), "ood.threshold None"),
    ],
)
def test_a_malformed_gate_is_refused_with_the_reason(shipped, change, message):
    if callable(message):
        message = message(len(shipped["ood"]["features"]))
    change(shipped["ood"])
    assert message in refusal(shipped)


def test_the_gate_can_be_taken_out_and_put_back(shipped):
    manifest = ModelManifest.from_dict(shipped)

    without = manifest.without_ood()

    assert without.ood is None
    assert without.as_dict() == {k: v for k, v in shipped.items() if k != "ood"}
    assert manifest.ood is not None, "the manifest it came from is unchanged"
    assert without.with_ood(manifest.ood).as_dict() == shipped
    replaced = dataclasses.replace(manifest.ood, threshold=1.5)
    assert manifest.with_ood(replaced).as_dict()["ood"] == {**shipped["ood"], "threshold": 1.5}


def test_a_section_built_in_code_is_written_in_the_schemas_order(shipped):
    gate = OodSection(features=("concentration",), mean=(0.5,), inverse_covariance=((2.0,),), threshold=3.0)
    without = {k: v for k, v in shipped.items() if k != "ood"}

    written = ModelManifest.from_dict(without).with_ood(gate).as_dict()

    assert list(written) == [*without, "ood"]
    assert written["ood"] == {
        "features": ["concentration"],
        "mean": [0.5],
        "inverse_covariance": [[2.0]],
        "threshold": 3.0,
    }


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
        GalaxyClassifier.from_files(model_path=model_path, manifest_path=manifest_path)


def test_serving_refuses_a_manifest_that_declares_logits(model_copy):
    model_path, manifest_path = model_copy
    data = json.loads(manifest_path.read_text())
    data["output"]["kind"] = "logits"
    manifest_path.write_text(json.dumps(data))
    with pytest.raises(ModelUnavailableError, match="output kind is 'logits'"):
        GalaxyClassifier.from_files(model_path=model_path, manifest_path=manifest_path)


# ---- the vote-fraction output (classifier.core.galaxy_zoo) ------------------------------------


def with_galaxy_zoo(shipped: dict, questions: dict | None = None) -> dict:
    questions = {q: list(a) for q, a in QUESTIONS.items()} if questions is None else questions
    return {**shipped, "galaxy_zoo": {"output": "vote_fractions", "questions": questions}}


def test_the_shipped_manifest_declares_its_vote_output(shipped):
    assert shipped["galaxy_zoo"]["questions"] == {q: list(a) for q, a in QUESTIONS.items()}
    assert ModelManifest.read(SHIPPED).galaxy_zoo.answers == NUM_ANSWERS


def test_the_galaxy_zoo_section_is_typed_and_written_back_as_read(shipped, tmp_path):
    data = with_galaxy_zoo(shipped)
    manifest = ModelManifest.from_dict(data)
    assert isinstance(manifest.galaxy_zoo, GalaxyZooSection)
    assert manifest.galaxy_zoo.questions == QUESTIONS
    assert manifest.galaxy_zoo.answers == NUM_ANSWERS
    assert manifest.as_dict() == data
    path = tmp_path / "galaxy10.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    ModelManifest.read(path).write(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()


def test_the_answers_may_come_in_another_order(shipped):
    questions = {q: list(a) for q, a in QUESTIONS.items()}
    questions["bar"] = ["no", "weak", "strong"]
    assert ModelManifest.from_dict(with_galaxy_zoo(shipped, questions)).galaxy_zoo.questions["bar"] == (
        "no",
        "weak",
        "strong",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda q: q.update({"colour": ["red", "blue"]}), "galaxy_zoo.questions.colour is not a Galaxy Zoo"),
        (lambda q: q.update({"bar": ["strong", "no"]}), "galaxy_zoo.questions.bar are not the answers"),
        (
            lambda q: q.update({"bar": ["strong", "strong", "no"]}),
            "galaxy_zoo.questions.bar are not the answers",
        ),
        (lambda q: q.pop("merging"), "galaxy_zoo.questions lacks merging"),
        (lambda q: q.clear(), "galaxy_zoo.questions is not a JSON object of questions"),
    ],
)
def test_a_malformed_galaxy_zoo_section_is_refused(shipped, change, message):
    questions = {q: list(a) for q, a in QUESTIONS.items()}
    change(questions)
    assert message in refusal(with_galaxy_zoo(shipped, questions))


def test_vote_fraction_errors_are_typed_in_the_metrics(shipped):
    errors = {
        "smooth-or-featured": {"n": 40, "mae": 0.1, "answers": {"smooth": 0.12, "featured-or-disk": 0.1}}
    }
    data = {
        **shipped,
        "metrics": {**shipped["metrics"], "decals_validation": {"n": 40, "vote_fraction_mae": errors}},
    }
    manifest = ModelManifest.from_dict(data)
    error = manifest.metrics.sets["decals_validation"].vote_fraction_mae["smooth-or-featured"]
    assert (error.n, error.mae, error.answers["smooth"]) == (40, 0.1, 0.12)
    assert manifest.as_dict() == data
    errors["smooth-or-featured"]["mae"] = "small"
    assert (
        "decals_validation.vote_fraction_mae.smooth-or-featured.mae 'small' is not a finite number"
        in refusal(data)
    )


def test_serving_reads_no_questions_when_the_manifest_leaves_the_vote_output_out(model_copy):
    # A file with vote fractions served under a manifest without the section: the class
    # probabilities as before, no questions (the serving side of a declared-but-missing output
    # is tested on a single-output export in ml/tests/test_export_votes.py).
    model_path, manifest_path = model_copy
    declared = GalaxyClassifier.from_files(model_path=model_path, manifest_path=manifest_path)
    data = json.loads(manifest_path.read_text())
    data.pop("galaxy_zoo")
    manifest_path.write_text(json.dumps(data))
    plain = GalaxyClassifier.from_files(model_path=model_path, manifest_path=manifest_path)
    image = make_image_bytes()
    with_votes, without = declared.classify(image), plain.classify(image)
    assert with_votes.galaxy_zoo["questions"] is not None
    assert without.galaxy_zoo == {"groups": with_votes.galaxy_zoo["groups"], "questions": None}
    assert without.probabilities == with_votes.probabilities
