"""A run trained with the vote head exports the vote fractions as a second TFLite output."""

import argparse
import hashlib
import io
import json
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("tensorflow")

from classifier.core.exceptions import ModelUnavailableError  # noqa: E402
from classifier.core.galaxy_zoo import ANSWER_SLICES, MAIN_QUESTIONS, NUM_ANSWERS, QUESTIONS  # noqa: E402
from classifier.core.inference import GalaxyClassifier  # noqa: E402
from classifier.core.manifest import ModelManifest  # noqa: E402
from classifier.core.preprocessing import PreprocessConfig  # noqa: E402
from ml import cache, pipeline  # noqa: E402
from ml.config import DEFAULT_CONFIG, load_config  # noqa: E402
from ml.evaluate import TFLiteModel  # noqa: E402
from ml.export import export, load_vote_head  # noqa: E402
from ml.model import build_model  # noqa: E402
from ml.pipeline import VOTE_FRACTIONS_SET, run_pipeline  # noqa: E402
from ml.tests.test_shipped_model import tflite_runtime_python  # noqa: E402
from ml.tests.test_train import tiny_galaxy10_h5  # noqa: E402
from ml.tests.test_vote_loss import generated_votes_root  # noqa: E402
from ml.train import train  # noqa: E402
from ml.vote_loss import expected_fractions  # noqa: E402

SIZE = 32
# Largest and mean absolute difference from PyTorch; int8 as test_export allows the probabilities.
TOLERANCE = {"float16": (0.01, 0.002), "int8": (0.05, 0.01)}


@pytest.fixture(scope="module")
def vote_run(tmp_path_factory):
    """A tiny training run with the vote head, on generated Galaxy10 and vote-count images."""
    tmp_path = tmp_path_factory.mktemp("votes")
    with pytest.MonkeyPatch.context() as monkeypatch:
        tiny_galaxy10_h5(tmp_path, monkeypatch)
        generated_votes_root(tmp_path / "data")
        config = load_config(
            overrides={
                "image_size": SIZE,
                "train.batch_size": 8,
                "train.max_steps": 2,
                "prior.samples": 16,
                "train.gz_decals_votes": True,
            }
        )
        run_dir = tmp_path / "run"
        train(config, run_dir, tmp_path / "data", galaxy10_h5=tmp_path / "g10.h5")
    model = build_model(SIZE, pretrained=False)
    model.load_state_dict(torch.load(run_dir / "model.pt"))
    model.eval()
    head = load_vote_head(run_dir, model)
    assert head is not None
    # Spread the concentrations, so the check is not one of nearly uniform fractions.
    with torch.no_grad():
        head.linear.weight.mul_(10.0)
    return tmp_path, model, head


def reference(model, head, images):
    head.attach(model._fc)
    with torch.no_grad():
        model(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
        return expected_fractions(head()).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("quantization", ["float16", "int8"])
def test_the_vote_output_matches_pytorch_and_each_question_sums_to_one(vote_run, quantization):
    tmp_path, model, head = vote_run
    images = np.random.default_rng(0).normal(0, 0.5, size=(12, SIZE, SIZE, 3)).astype(np.float32)
    path = export(model, SIZE, 1.0, tmp_path / f"{quantization}.tflite", quantization, images[:8], head)

    tflite = TFLiteModel(path)
    assert tflite.has_votes
    probs, fractions = tflite.predict(images)
    assert probs.shape == (12, 10)
    assert fractions.shape == (12, NUM_ANSWERS)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-2)
    for part in ANSWER_SLICES.values():
        np.testing.assert_allclose(fractions[:, part].sum(axis=1), 1.0, atol=1e-2)
    expected = reference(model, head, images)
    assert expected.std() > 0.05
    difference = np.abs(fractions - expected)
    largest, mean = TOLERANCE[quantization]
    assert difference.max() < largest
    assert difference.mean() < mean


@pytest.mark.slow
def test_an_export_without_the_head_has_one_output(vote_run):
    tmp_path, model, _ = vote_run
    path = export(model, SIZE, 1.0, tmp_path / "plain.tflite", "float16")
    tflite = TFLiteModel(path)
    assert not tflite.has_votes
    assert len(tflite.interpreter.get_output_details()) == 1
    # Serving refuses a manifest that declares a vote output the file does not have.
    with pytest.raises(ModelUnavailableError, match=rf"expected \[1, 10\] and \[1, {NUM_ANSWERS}\]"):
        GalaxyClassifier(manifest=manifest_for(path, galaxy_zoo=True), model_path=path)


def make_image_bytes(size=(80, 60), color=(120, 140, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def manifest_for(path: Path, *, galaxy_zoo: bool) -> ModelManifest:
    sections = {"galaxy_zoo": {"output": "vote_fractions", "questions": QUESTIONS}} if galaxy_zoo else {}
    return ModelManifest.create(
        model_file=path.name,
        model_version="test-votes",
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        created_at="2026-01-01T00:00:00+00:00",
        preprocessing=PreprocessConfig(size=SIZE, crop_fraction=1.0, mean=0.5, std=0.25),
        **sections,
    )


@pytest.fixture(scope="module")
def served(vote_run):
    """The int8 export of the vote run, as pipeline ships it."""
    tmp_path, model, head = vote_run
    calibration = np.random.default_rng(1).normal(0, 0.5, size=(8, SIZE, SIZE, 3)).astype(np.float32)
    return export(model, SIZE, 1.0, tmp_path / "served.tflite", "int8", calibration, head)


def check_answer(answer):
    assert list(answer["questions"]) == list(MAIN_QUESTIONS)
    for answers in answer["questions"].values():
        assert sum(answers.values()) == pytest.approx(1.0, abs=1e-3)
    assert sum(answer["groups"].values()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.slow
def test_serving_answers_the_questions_when_the_manifest_declares_them(served):
    image = make_image_bytes(size=(80, 60))
    with_votes = GalaxyClassifier(manifest=manifest_for(served, galaxy_zoo=True), model_path=served)
    result = with_votes.classify(image)
    check_answer(result.galaxy_zoo)
    batch = with_votes.classify_batch([image, make_image_bytes(size=(60, 80), color=(200, 90, 40))])
    assert batch[0].galaxy_zoo == result.galaxy_zoo
    # The same file with a manifest that does not declare the output: no questions.
    plain = GalaxyClassifier(manifest=manifest_for(served, galaxy_zoo=False), model_path=served)
    without = plain.classify(image)
    assert without.galaxy_zoo == {"groups": result.galaxy_zoo["groups"], "questions": None}
    assert without.probabilities == pytest.approx(result.probabilities)


@pytest.mark.slow
def test_tflite_runtime_serves_the_int8_vote_output(served, tmp_path):
    manifest_path = tmp_path / "served.json"
    manifest_for(served, galaxy_zoo=True).write(manifest_path)
    image = tmp_path / "image.png"
    image.write_bytes(make_image_bytes(size=(80, 60)))
    script = textwrap.dedent(
        f"""
        import json
        from pathlib import Path
        from classifier.core.inference import GalaxyClassifier
        classifier = GalaxyClassifier.from_files(
            model_path=Path({str(served)!r}),
            manifest_path=Path({str(manifest_path)!r}),
            backend="tflite-runtime",
        )
        print(json.dumps(classifier.classify(Path({str(image)!r})).galaxy_zoo))
        """
    )
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [str(tflite_runtime_python()), "-c", script],
        check=False,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    check_answer(json.loads(run.stdout.splitlines()[-1]))


@pytest.mark.slow
def test_the_pipeline_packages_the_vote_output_and_reports_its_errors(vote_run, monkeypatch):
    tmp_path, _, _ = vote_run
    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / "cache")
    # The gate has too few generated galaxies to fit here; test_pipeline fits it.
    monkeypatch.setattr(pipeline, "fit_ood", lambda *args, **kwargs: None)
    args = argparse.Namespace(
        config=DEFAULT_CONFIG,
        overrides={},
        data_root=tmp_path / "data",
        galaxy10_h5=tmp_path / "g10.h5",
        run=tmp_path / "run",
        models_dir=tmp_path / "models",
        static_dir=tmp_path / "static",
        skip_train=True,
    )
    packaged = run_pipeline(args)

    manifest = ModelManifest.read(tmp_path / "models" / "galaxy10.json")
    assert manifest.galaxy_zoo.questions == QUESTIONS
    assert packaged["galaxy_zoo"]["output"] == "vote_fractions"
    errors = manifest.metrics.sets[VOTE_FRACTIONS_SET].vote_fraction_mae
    assert errors["smooth-or-featured"].n > 0
    assert 0 <= errors["smooth-or-featured"].mae <= 1
    for candidate in manifest.metrics.export_check.candidates.values():
        assert 0 <= candidate.max_abs_vote_diff_vs_torch < TOLERANCE["int8"][0]
    card = (tmp_path / "models" / "MODEL_CARD.md").read_text()
    assert "Vote fractions of the int8 candidate: largest difference from PyTorch's" in card
    assert f"## Galaxy Zoo vote fractions ({VOTE_FRACTIONS_SET})" in card
    assert f"| smooth-or-featured | {errors['smooth-or-featured'].n} |" in card
    served = GalaxyClassifier(manifest=manifest, model_path=tmp_path / "models" / "galaxy10.tflite")
    check_answer(served.classify(make_image_bytes()).galaxy_zoo)
