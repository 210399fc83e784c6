"""manage.py reset_predictions [--yes|--noinput]."""

import io

import pytest
from django.core.management import CommandError, call_command

from classifier.models import Prediction
from classifier.tests.factories import PredictionFactory
from classifier.tests.utils import media_files

pytestmark = pytest.mark.django_db(transaction=True)


def test_yes_deletes_records_images_and_restarts_ids(media_root):
    PredictionFactory.create_batch(4)
    assert len(media_files(media_root)) == 4
    out = io.StringIO()
    call_command("reset_predictions", "--yes", stdout=out)
    assert "Deleted 4 predictions" in out.getvalue()
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []
    assert PredictionFactory().pk == 1


def test_noinput_alias(media_root):
    PredictionFactory()
    call_command("reset_predictions", "--noinput", stdout=io.StringIO())
    assert Prediction.objects.count() == 0


def test_asks_and_keeps_everything_unless_confirmed(monkeypatch, media_root):
    PredictionFactory.create_batch(2)
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="cancelled"):
        call_command("reset_predictions", stdout=io.StringIO())
    assert Prediction.objects.count() == 2
    assert len(media_files(media_root)) == 2


def test_confirmation_proceeds(monkeypatch):
    PredictionFactory.create_batch(2)
    prompts = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or "yes")
    call_command("reset_predictions", stdout=io.StringIO())
    assert "all 2 predictions" in prompts[0]
    assert Prediction.objects.count() == 0
