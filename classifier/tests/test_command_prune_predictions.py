"""manage.py prune_predictions: a dry run by default; --yes deletes old records and their files."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from classifier.models import Prediction
from classifier.predictions import retention, services
from classifier.tests.factories import PredictionFactory
from classifier.tests.utils import make_image_bytes, media_files

# Committed for real: the image files go only when the delete's transaction commits.
pytestmark = pytest.mark.django_db(transaction=True)


def aged(days: float, **kwargs) -> Prediction:
    prediction = PredictionFactory(**kwargs)
    Prediction.objects.filter(pk=prediction.pk).update(created_at=timezone.now() - timedelta(days=days))
    return prediction


def run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("prune_predictions", *args, stdout=out)
    return out.getvalue()


def test_the_default_is_a_dry_run_that_reports_and_deletes_nothing(media_root):
    old = [aged(40), aged(31)]
    aged(5)
    output = run("--older-than", "30")
    assert "Dry run: would delete 2 predictions" in output
    assert "2 image files" in output
    assert Prediction.objects.count() == 3
    assert len(media_files(media_root)) == 3
    assert all((media_root / p.image.name).is_file() for p in old)


def test_yes_deletes_the_old_records_and_their_files_only(media_root):
    old = [aged(40), aged(31)]
    recent = aged(29)
    output = run("--older-than", "30", "--yes")
    assert "Deleted 2 predictions" in output
    assert list(Prediction.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not any((media_root / p.image.name).exists() for p in old)
    assert media_files(media_root) == [media_root / recent.image.name]


def test_a_file_shared_with_a_newer_record_is_kept(media_root):
    old = aged(60, seed=7)
    newer = aged(1, seed=7, image=old.image.name)  # the same content, so the same stored file
    assert old.image.name == newer.image.name
    assert "0 image files" in run("--older-than", "30")
    run("--older-than", "30", "--yes")
    assert list(Prediction.objects.values_list("pk", flat=True)) == [newer.pk]
    assert (media_root / newer.image.name).read_bytes() == newer.image.open("rb").read()


def test_it_deletes_in_batches_until_none_is_left(media_root):
    for days in range(31, 38):
        aged(days)
    aged(2)
    assert retention.prediction_prune(cutoff=retention.prune_cutoff(older_than_days=30), batch_size=3) == 7
    assert Prediction.objects.count() == 1
    assert len(media_files(media_root)) == 1


@pytest.mark.parametrize(
    "args", [["--older-than", "0"], ["--older-than", "-3"], ["--older-than", "9", "--batch-size", "0"]]
)
def test_nonsense_limits_are_refused(args):
    aged(40)
    with pytest.raises(CommandError):
        run(*args, "--yes")
    assert Prediction.objects.count() == 1


def test_pruning_alongside_uploads_of_the_same_images_never_loses_a_live_file(media_root):
    """Uploads of the very images being pruned keep arriving while the prune runs in batches."""
    contents = [make_image_bytes(color=(i, 2 * i, 3 * i)) for i in range(6)]
    for content in contents:
        [prediction] = services.prediction_create_batch(
            uploads=[SimpleUploadedFile("old.png", content)], source=Prediction.Source.API
        )
        Prediction.objects.filter(pk=prediction.pk).update(created_at=timezone.now() - timedelta(days=90))
    errors: list[BaseException] = []

    def prune() -> None:
        try:
            retention.prediction_prune(cutoff=retention.prune_cutoff(older_than_days=30), batch_size=1)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    pruner = threading.Thread(target=prune)
    pruner.start()
    for round_ in range(3):
        for content in contents:
            services.prediction_create_batch(
                uploads=[SimpleUploadedFile(f"new-{round_}.png", content)], source=Prediction.Source.WEB
            )
    pruner.join(60)
    assert not errors
    assert not Prediction.objects.filter(created_at__lt=timezone.now() - timedelta(days=30)).exists()
    survivors = list(Prediction.objects.all())
    assert len(survivors) == 3 * len(contents)
    for prediction in survivors:
        assert (media_root / prediction.image.name).is_file(), prediction
