"""manage.py submit_job: files, folders or a .zip, with a catalogue; prints the job id."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from classifier.models import Job
from classifier.tests.jobs_support import distinct_images, make_zip

pytestmark = pytest.mark.django_db


def test_folder_keeps_subfolders_and_reads_a_catalogue(tmp_path):
    folder = tmp_path / "survey"
    (folder / "north").mkdir(parents=True)
    images = distinct_images(2)
    (folder / "north" / "a.png").write_bytes(images[0])
    (folder / "b.png").write_bytes(images[1])
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text("file,id\nnorth/a.png,G1\nb.png,G2\n")
    out = io.StringIO()
    call_command("submit_job", str(folder), str(catalogue), stdout=out)
    job = Job.objects.get(pk=int(out.getvalue()))
    assert job.total == 2
    assert dict(job.members.values_list("path", "catalogue__id")) == {"north/a.png": "G1", "b.png": "G2"}


def test_zip(tmp_path):
    archive = tmp_path / "survey.zip"
    archive.write_bytes(make_zip([(f"g{i}.png", data) for i, data in enumerate(distinct_images(3))]))
    out = io.StringIO()
    call_command("submit_job", str(archive), stdout=out)
    assert Job.objects.get(pk=int(out.getvalue())).total == 3


def test_refusals_are_command_errors(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("submit_job", str(tmp_path / "missing"))
    empty = tmp_path / "empty.zip"
    empty.write_bytes(make_zip([]))
    with pytest.raises(CommandError, match="no files to classify"):
        call_command("submit_job", str(empty))
    assert Job.objects.count() == 0
