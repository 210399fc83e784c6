"""manage.py models: list the kept versions, validate one before serving it, switch and roll back."""

from __future__ import annotations

import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from classifier.tests.utils import make_image_bytes

SHIPPED_MODEL = Path(django_settings.MODEL_PATH)
SHIPPED_MANIFEST = Path(django_settings.MODEL_MANIFEST)


def add_version(root: Path, version: str, *, corrupt: bool = False) -> Path:
    """A version folder as `make model` would leave it: the shipped model under a new version name."""
    folder = root / version
    folder.mkdir(parents=True)
    shutil.copyfile(SHIPPED_MODEL, folder / "galaxy10.tflite")
    manifest = json.loads(SHIPPED_MANIFEST.read_text())
    manifest["model_version"] = version
    (folder / "galaxy10.json").write_text(json.dumps(manifest))
    if corrupt:
        with (folder / "galaxy10.tflite").open("r+b") as model:
            model.seek(1000)
            model.write(b"\x00" * 64)
    return folder


@pytest.fixture
def repository(tmp_path, settings):
    root = tmp_path / "models"
    add_version(root, "v1")
    add_version(root, "v2")
    settings.MODEL_REPOSITORY = root
    return root


def run(*args: str) -> str:
    out = StringIO()
    call_command("models", *args, stdout=out)
    return out.getvalue()


def test_list_shows_every_version_and_marks_the_served_one(repository, settings):
    settings.MODEL_PATH = repository / "v2" / "galaxy10.tflite"
    lines = run("list").splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("  v1 ")
    assert lines[1].startswith("* v2 ")


def test_validate_loads_runs_and_checks_a_good_model(repository):
    output = run("validate", "v2")
    assert "version   v2" in output
    assert "OK: loads, runs and matches its manifest." in output


def test_validate_compares_with_the_served_model_on_given_images(repository, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for index in range(3):
        (images / f"{index}.png").write_bytes(make_image_bytes(color=(40 * index, 90, 160)))
    output = run("validate", str(repository / "v1" / "galaxy10.tflite"), "--images", str(images))
    assert "images    3," in output
    # The same network under another name: it must agree with the served one everywhere.
    assert "agreement with the served model: 100%" in output


def test_a_model_whose_bytes_differ_from_its_manifest_is_refused(repository):
    add_version(repository, "v3-broken", corrupt=True)
    with pytest.raises(CommandError, match="sha256"):
        run("validate", "v3-broken")
    with pytest.raises(CommandError):
        run("activate", "v3-broken")
    assert not (repository / "current").exists()


def test_a_manifest_for_other_classes_is_refused(repository):
    folder = add_version(repository, "v4-other-classes")
    manifest = json.loads((folder / "galaxy10.json").read_text())
    manifest["classes"][0]["name"] = "Something else"
    (folder / "galaxy10.json").write_text(json.dumps(manifest))
    with pytest.raises(CommandError, match="classes"):
        run("validate", "v4-other-classes")


def test_a_missing_model_is_a_clear_error(repository):
    with pytest.raises(CommandError, match="no model at"):
        run("validate", "v9")


@pytest.mark.django_db
def test_activate_switches_and_rolls_back_without_code_change(repository, settings, anonymous_client):
    """MODEL_PATH points through the `current` link; the history shows which model answered."""
    settings.MODEL_PATH = repository / "current" / "galaxy10.tflite"
    settings.MODEL_MANIFEST = repository / "current" / "galaxy10.json"

    def predict() -> str:
        # A restarted worker: the model is loaded afresh from MODEL_PATH.
        from classifier.predictions.inference import reset_classifier

        reset_classifier()
        response = anonymous_client.post(
            "/api/predictions/",
            {"image": SimpleUploadedFile("a.png", make_image_bytes())},
            format="multipart",
        )
        assert response.status_code == 201
        return response.json()["predictions"][0]["model_version"]

    run("activate", "v2")
    assert predict() == "v2"
    assert run("list").splitlines()[1].startswith("* v2 ")
    run("activate", "v1")  # roll back
    assert predict() == "v1"
    assert (repository / "current").resolve() == (repository / "v1").resolve()
    from classifier.models import Prediction

    assert list(Prediction.objects.order_by("id").values_list("model_version", flat=True)) == ["v2", "v1"]
