"""manage.py classify takes the .zip that submit_job takes (issue 20), read through the job
intake's archive reader (classifier.jobs.archives): the same refusals, the same member paths."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import zipfile

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from classifier.models import Prediction
from classifier.tests.jobs_support import distinct_images, make_zip

pytestmark = pytest.mark.django_db


def run(*args: object) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("classify", *map(str, args), stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def survey_zip(tmp_path):
    a, b, c = distinct_images(3)
    path = tmp_path / "survey.zip"
    path.write_bytes(make_zip([("a.png", a), ("field/b.png", b), ("field/deep/c.png", c)]))
    return path


def test_a_zip_is_classified_member_by_member(survey_zip):
    out, _ = run(survey_zip, "--format", "json")
    rows = json.loads(out)
    assert [row["path"] for row in rows] == [
        str(survey_zip / "a.png"),
        str(survey_zip / "field/b.png"),
        str(survey_zip / "field/deep/c.png"),
    ]
    assert all(0 <= row["class_index"] < 10 for row in rows)


def test_zip_members_are_saved_under_their_paths_inside_it(survey_zip, tmp_path):
    folder = tmp_path / "loose"
    folder.mkdir()
    (folder / "d.png").write_bytes(distinct_images(4)[3])
    out, _ = run(survey_zip, folder, "--save")
    assert len(list(csv.DictReader(io.StringIO(out)))) == 4
    names = set(Prediction.objects.values_list("original_filename", flat=True))
    assert names == {"a.png", "field/b.png", "field/deep/c.png", "d.png"}
    assert set(Prediction.objects.values_list("source", flat=True)) == {"cli"}


def test_a_bad_member_is_skipped_with_its_reason_and_the_rest_classified(tmp_path):
    path = tmp_path / "mixed.zip"
    path.write_bytes(
        make_zip([("good.png", distinct_images(1)[0]), ("inner.zip", make_zip([])), ("notes.png", b"text")])
    )
    with pytest.raises(CommandError, match="2 input"):
        run(path)


def test_a_bad_member_is_reported_on_stderr(tmp_path):
    path = tmp_path / "mixed.zip"
    path.write_bytes(make_zip([("good.png", distinct_images(1)[0]), ("inner.zip", make_zip([]))]))
    output = tmp_path / "out.csv"
    result = subprocess.run(
        [sys.executable, "manage.py", "classify", str(path), "--output", str(output)],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
        env={"DJANGO_SETTINGS_MODULE": "galaxysite.test_settings", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert f"skipped {path / 'inner.zip'}: nested archives are not expanded" in result.stderr
    rows = list(csv.DictReader(output.open()))
    assert [row["path"] for row in rows] == [str(path / "good.png")]


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ([("../escape.png", b"x")], "escape"),
        ([("/abs.png", b"x")], "absolute"),
        ([], "no files"),
    ],
)
def test_an_unsafe_zip_is_refused_whole_before_the_model_loads(tmp_path, entries, reason):
    path = tmp_path / "bad.zip"
    path.write_bytes(make_zip(entries))
    with pytest.raises(CommandError) as refused:
        run(path)
    assert str(refused.value).startswith(f"{path}: ")
    assert reason in str(refused.value)
    assert Prediction.objects.count() == 0


def test_an_encrypted_member_refuses_the_zip_as_submit_job_does(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("g.png", distinct_images(1)[0])
    data = bytearray(buffer.getvalue())
    # Set the "encrypted" flag bit in the local and central headers, as zip -P does.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature) + offset
        data[at] |= 0x1
    path = tmp_path / "locked.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(CommandError, match="encrypted"):
        run(path)
    with pytest.raises(CommandError, match="encrypted"):
        call_command("submit_job", str(path), stdout=io.StringIO(), stderr=io.StringIO())


def test_format_has_help_text():
    result = subprocess.run(
        [sys.executable, "manage.py", "classify", "--help"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
        env={"DJANGO_SETTINGS_MODULE": "galaxysite.test_settings", "PATH": "/usr/bin:/bin"},
    )
    usage = " ".join(result.stdout.split())
    assert "--format {csv,json} csv (default): one row per image" in usage
    assert ".zip" in usage
