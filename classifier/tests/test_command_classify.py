"""manage.py classify PATH... [--format csv|json] [--output FILE] [--save] [--batch-size N]
[--interpreters N]."""

import csv
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from django.core import checks
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError

from classifier.core.galaxy10 import CLASS_NAMES
from classifier.management.commands import classify
from classifier.models import Prediction
from classifier.predictions import batch, filenames
from classifier.predictions.exports import GALAXY_ZOO_COLUMNS
from classifier.predictions.inference import get_classifier
from classifier.tests.utils import make_image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "images"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "a.png").write_bytes(make_image_bytes(color=(200, 10, 10)))
    (root / "nested" / "b.jpg").write_bytes(make_image_bytes(fmt="JPEG", color=(10, 200, 10)))
    (root / "nested" / "deeper" / "c.png").write_bytes(make_image_bytes(color=(10, 10, 200)))
    (root / "README.txt").write_text("not an image; ignored inside folders")
    return root


def run(*args):
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("classify", *map(str, args), stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def test_csv_to_stdout_for_a_folder_recursively(image_folder):
    out, _ = run(image_folder)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == [
        "path",
        "prediction",
        "class_index",
        "confidence",
        *CLASS_NAMES,
        "in_distribution",
        "ood_score",
        "single_band",
        *GALAXY_ZOO_COLUMNS,
    ]
    assert [r["path"] for r in rows] == [
        str(image_folder / "a.png"),
        str(image_folder / "nested" / "b.jpg"),
        str(image_folder / "nested" / "deeper" / "c.png"),
    ]
    expected = get_classifier().classify(image_folder / "a.png")
    assert rows[0]["prediction"] == expected.class_name
    assert int(rows[0]["class_index"]) == expected.class_index
    assert float(rows[0]["confidence"]) == pytest.approx(expected.confidence, abs=5e-5)  # 4 decimals
    assert rows[0]["in_distribution"] == str(expected.in_distribution).lower()
    assert float(rows[0]["ood_score"]) == pytest.approx(expected.ood_score, abs=1e-3)
    assert rows[0]["single_band"] == "false"
    assert sum(float(rows[0][name]) for name in CLASS_NAMES) == pytest.approx(1.0, abs=1e-3)
    assert Prediction.objects.count() == 0


def test_json_to_output_file(image_folder, tmp_path):
    target = tmp_path / "out.json"
    run(image_folder / "a.png", "--format", "json", "--output", target, "--batch-size", "1")
    [item] = json.loads(target.read_text())
    assert set(item) == {
        "path",
        "prediction",
        "class_index",
        "confidence",
        "probabilities",
        "in_distribution",
        "ood_score",
        "single_band",
        "galaxy_zoo",
    }
    assert list(item["probabilities"]) == list(CLASS_NAMES)
    expected = get_classifier().classify(image_folder / "a.png")
    np.testing.assert_allclose(list(item["probabilities"].values()), expected.probabilities, atol=5e-5)


def test_save_records_with_source_cli(image_folder, media_root):
    out, _ = run(image_folder, "--save", "--format", "json", "--batch-size", "2")
    items = json.loads(out)
    assert Prediction.objects.count() == 3
    assert set(Prediction.objects.values_list("source", flat=True)) == {"cli"}
    assert {i["id"] for i in items} == set(Prediction.objects.values_list("pk", flat=True))
    # The path inside the folder named, so that the subfolders stay apart.
    assert sorted(Prediction.objects.values_list("original_filename", flat=True)) == [
        "a.png",
        "nested/b.jpg",
        "nested/deeper/c.png",
    ]
    assert len(list(media_root.rglob("*.*"))) == 3


def test_unreadable_file_is_reported_skipped_and_fails(image_folder, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 input"):
        call_command(
            "classify", str(image_folder / "a.png"), str(broken), "--save", stdout=stdout, stderr=stderr
        )
    assert f"skipped {broken}" in stderr.getvalue()
    rows = list(csv.DictReader(io.StringIO(stdout.getvalue())))
    assert [r["path"] for r in rows] == [str(image_folder / "a.png")]
    assert Prediction.objects.count() == 1


def test_missing_path_fails(tmp_path):
    with pytest.raises(CommandError):
        run(tmp_path / "nope.png")


def test_progress_goes_to_stderr(image_folder, capsys):
    run(image_folder)
    assert "3/3" in capsys.readouterr().err


def test_batches_keep_input_order_and_decode_off_the_main_thread(tmp_path, monkeypatch):
    # Seven images and one broken file across four batches of two: rows come back in
    # input order, the broken file is skipped, and every interpreter call is a batch
    # (batches may reach the interpreters in any order, since they run side by side).
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(7):
        shade = 30 * index
        (folder / f"img_{index}.png").write_bytes(make_image_bytes(color=(shade, 255 - shade, 90)))
    (folder / "img_3b.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    classifier = get_classifier()
    decode_threads, batch_sizes = set(), []
    original_prepare, original_run = classifier.prepare, classifier._run

    def recording_prepare(source, **kwargs):
        decode_threads.add(threading.current_thread() is threading.main_thread())
        return original_prepare(source, **kwargs)

    def recording_run(batch):
        batch_sizes.append(batch.shape[0])
        return original_run(batch)

    monkeypatch.setattr(classifier, "prepare", recording_prepare)
    monkeypatch.setattr(classifier, "_run", recording_run)
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 input"):
        call_command("classify", str(folder), "--batch-size", "2", stdout=stdout, stderr=stderr)

    rows = list(csv.DictReader(io.StringIO(stdout.getvalue())))
    expected_paths = [folder / f"img_{i}.png" for i in range(7)]
    assert [r["path"] for r in rows] == [str(p) for p in expected_paths]
    assert f"skipped {folder / 'img_3b.jpg'}" in stderr.getvalue()
    assert decode_threads == {False}
    assert sorted(batch_sizes) == [1, 2, 2, 2]
    for row, path in zip(rows, expected_paths, strict=True):
        expected = original_prepare(path)
        [result] = classifier.classify_prepared([expected])
        assert row["prediction"] == result.class_name
        assert float(row["confidence"]) == pytest.approx(result.confidence, abs=5e-5)


def test_runs_without_the_web_stack_system_checks(image_folder):
    # A failing check of the web stack (URLs, admin, security settings) must not stop a
    # batch classification, which uses none of it; the model itself is still verified on load.
    def failing_web_check(app_configs, **kwargs):
        return [checks.Error("the web stack is misconfigured", id="bench.E001")]

    checks.register(failing_web_check)
    try:
        with pytest.raises(SystemCheckError):
            call_command("check")
        # As `manage.py classify` runs it (call_command would skip the checks anyway).
        stdout = io.StringIO()
        classify.Command(stdout=stdout).run_from_argv(["manage.py", "classify", str(image_folder / "a.png")])
        out = stdout.getvalue()
    finally:
        checks.registry.registry.registered_checks.discard(failing_web_check)
    assert len(list(csv.DictReader(io.StringIO(out)))) == 1


def _many_images(folder, count):
    folder.mkdir()
    for index in range(count):
        shade = 20 * index
        (folder / f"img_{index:02d}.png").write_bytes(make_image_bytes(color=(shade, 90, 255 - shade)))
    return [folder / f"img_{index:02d}.png" for index in range(count)]


def test_interpreters_run_side_by_side(tmp_path, monkeypatch):
    # Two interpreters: the first two batches must be inside invoke() at the same time.
    # With one interpreter the second call could not start while the first waits here,
    # so the barrier would time out and the command would fail.
    paths = _many_images(tmp_path / "many", 6)
    classifier = get_classifier()
    interpreter_class = classifier._interpreter_class
    original_invoke = interpreter_class.invoke
    both_inside = threading.Barrier(2, timeout=20)
    calls = []

    def meeting_invoke(self):
        calls.append(threading.current_thread().name)
        if len(calls) <= 2:
            both_inside.wait()
        return original_invoke(self)

    monkeypatch.setattr(interpreter_class, "invoke", meeting_invoke)
    out, _ = run(tmp_path / "many", "--batch-size", "2", "--interpreters", "2")
    monkeypatch.undo()

    assert len(set(calls[:2])) == 2
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    for row, path in zip(rows, paths, strict=True):
        assert row["prediction"] == classifier.classify(path).class_name


def test_save_decodes_each_file_once(tmp_path, media_root, monkeypatch):
    paths = _many_images(tmp_path / "many", 5)
    classifier = get_classifier()
    original_prepare = classifier.prepare
    decoded = []

    def counting_prepare(source, **kwargs):
        decoded.append(source)
        return original_prepare(source, **kwargs)

    monkeypatch.setattr(classifier, "prepare", counting_prepare)
    out, _ = run(tmp_path / "many", "--save", "--format", "json", "--batch-size", "2")

    assert len(decoded) == len(paths)
    items = json.loads(out)
    assert [item["path"] for item in items] == [str(p) for p in paths]
    saved = {p.pk: p for p in Prediction.objects.all()}
    assert len(saved) == len(paths)
    for item in items:
        assert saved[item["id"]].class_name == item["prediction"]
        assert saved[item["id"]].source == "cli"


@pytest.mark.parametrize("option", ["--interpreters", "--batch-size"])
def test_counts_below_one_are_refused(image_folder, option):
    with pytest.raises(CommandError, match=f"{option} must be at least 1"):
        run(image_folder, option, "0")


def test_csv_guards_file_names_against_spreadsheet_formulas(tmp_path):
    # A folder of downloaded files: their names are chosen by whoever made them.
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "a;=1+1;b.png").write_bytes(make_image_bytes())
    out, _ = run(folder)
    for delimiter in (",", ";"):
        cells = [cell for row in csv.reader(io.StringIO(out), delimiter=delimiter) for cell in row]
        assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@"))]
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert row["path"] == str(folder / "a;'=1+1;b.png")


def test_an_empty_folder_says_no_images_were_found(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    stdout = io.StringIO()
    with pytest.raises(CommandError, match="no images found"):
        call_command("classify", str(tmp_path / "empty"), stdout=stdout, stderr=io.StringIO())
    assert stdout.getvalue() == ""


def test_missing_paths_are_reported_before_the_model_loads(image_folder, tmp_path, monkeypatch):
    loads = []

    def recording_get_classifier():
        loads.append(True)
        return get_classifier()

    monkeypatch.setattr(classify, "get_classifier", recording_get_classifier)
    monkeypatch.setattr(batch, "get_classifier", recording_get_classifier)
    with pytest.raises(CommandError, match=r"no such file or directory: .*typo\.png"):
        run(image_folder, tmp_path / "typo.png", "--save")
    assert loads == []
    assert Prediction.objects.count() == 0


def test_the_byte_limit_applies_without_save(tmp_path, settings, monkeypatch):
    # The same checks as an upload, saved or not: an oversized file is refused unread.
    folder = tmp_path / "sizes"
    folder.mkdir()
    (folder / "small.png").write_bytes(make_image_bytes(size=(32, 32)))
    big = make_image_bytes(size=(400, 400))
    (folder / "big.png").write_bytes(big)
    settings.MAX_UPLOAD_BYTES = len(big) - 1
    classifier = get_classifier()
    original_prepare, prepared_sizes = classifier.prepare, []

    def recording_prepare(source, **kwargs):
        prepared_sizes.append(len(source))
        return original_prepare(source, **kwargs)

    monkeypatch.setattr(classifier, "prepare", recording_prepare)
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 input"):
        call_command("classify", str(folder), stdout=stdout, stderr=stderr)
    assert f"skipped {folder / 'big.png'}: the file is larger than the limit" in stderr.getvalue()
    assert [r["path"] for r in csv.DictReader(io.StringIO(stdout.getvalue()))] == [str(folder / "small.png")]
    assert len(big) not in prepared_sizes


def test_a_file_named_explicitly_is_recorded_by_its_name(image_folder, media_root):
    run(image_folder / "nested" / "deeper" / "c.png", "--save")
    assert list(Prediction.objects.values_list("original_filename", flat=True)) == ["c.png"]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("nested/deeper/c.png", "nested/deeper/c.png"),
        ("a/../b/./c.png", "a/b/c.png"),
        ("sub\\dir\\x.png", "sub/dir/x.png"),
        ("bidi\u202e/x.png", "bidi/x.png"),
        ("/".join(["d" * 100] * 4) + "/x.png", "/".join(["d" * 100] * 2) + "/x.png"),
        ("", "upload"),
    ],
)
def test_relative_names_are_sanitised_part_by_part(raw, clean):
    assert filenames.sanitise_relative_name(raw) == clean


def _manage_py_classify(*args):
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "galaxysite.test_settings"}
    return subprocess.run(
        [sys.executable, "manage.py", "classify", *map(str, args)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_verbosity_0_is_quiet_on_stderr(image_folder):
    # In a process of its own: the TFLite runtime's delegate line is written by C++ to file
    # descriptor 2, which no Python-level capture sees; and it is printed once per process.
    loud = _manage_py_classify(image_folder / "a.png")
    quiet = _manage_py_classify(image_folder / "a.png", "-v", "0")
    assert loud.returncode == quiet.returncode == 0
    assert "1/1" in loud.stderr
    assert quiet.stderr == ""
    assert quiet.stdout == loud.stdout
    assert len(list(csv.DictReader(io.StringIO(quiet.stdout)))) == 1
