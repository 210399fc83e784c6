"""manage.py reset_predictions [--yes|--noinput]."""

import io
import os
import subprocess
import sys
from pathlib import Path

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


class Terminal(io.StringIO):
    """Typed answers on a stdin that says it is a terminal."""

    def isatty(self):
        return True


def test_asks_and_keeps_everything_unless_confirmed(monkeypatch, media_root):
    PredictionFactory.create_batch(2)
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="cancelled"):
        call_command("reset_predictions", stdout=io.StringIO())
    assert Prediction.objects.count() == 2
    assert len(media_files(media_root)) == 2


def test_confirmation_proceeds(monkeypatch):
    PredictionFactory.create_batch(2)
    prompts = []
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or "yes")
    call_command("reset_predictions", stdout=io.StringIO())
    assert "all 2 predictions" in prompts[0]
    assert Prediction.objects.count() == 0


@pytest.mark.parametrize("stdin", [io.StringIO("yes\n"), None], ids=["not-a-terminal", "no-stdin"])
def test_without_a_terminal_it_says_to_use_yes_and_deletes_nothing(monkeypatch, media_root, stdin):
    # A piped "yes" is not a confirmation: a script must say --yes.
    PredictionFactory.create_batch(2)
    monkeypatch.setattr(sys, "stdin", stdin)
    with pytest.raises(CommandError, match="--yes"):
        call_command("reset_predictions", stdout=io.StringIO())
    assert Prediction.objects.count() == 2
    assert len(media_files(media_root)) == 2


def test_a_terminal_closed_before_the_answer_is_a_clear_error(monkeypatch):
    PredictionFactory()
    monkeypatch.setattr(sys, "stdin", Terminal(""))
    with pytest.raises(CommandError, match="--yes"):
        call_command("reset_predictions", stdout=io.StringIO())
    assert Prediction.objects.count() == 1


def test_manage_py_with_stdin_closed_exits_non_zero_without_a_traceback():
    # As a cron job or `docker compose exec -T` runs it: no terminal on stdin.
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "galaxysite.test_settings"}
    done = subprocess.run(
        [sys.executable, "manage.py", "reset_predictions"],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "Rerun with --yes" in done.stderr
    assert "Traceback" not in done.stderr
    assert "EOFError" not in done.stderr
