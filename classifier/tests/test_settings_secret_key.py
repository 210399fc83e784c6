"""The secret key and the shared .env (issue 20): placeholders refused at start-up, and a .env
that `make run` and docker compose share, whose secrets are generated once and never clobbered.

Real processes: manage.py with the production settings, and `make env` on a copy of the
Makefile, .env.example and galaxysite/envfile.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make") or "/usr/bin/make"
GOOD_KEY = "Zq8-" + "p3Xr_7vLm2" * 5


def manage_check(*, env_file: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_") and k != "DATABASE_URL"}
    clean["DJANGO_SETTINGS_MODULE"] = "galaxysite.settings"
    clean["DJANGO_ENV_FILE"] = str(env_file or ROOT / "no-such.env")
    clean["DJANGO_ALLOWED_HOSTS"] = "galaxy.example.org"
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("key", ["change-me", "CHANGE-ME", "changeme", "django-insecure-" + "a1b2c3d4e5" * 5])
def test_a_placeholder_key_stops_the_start(key):
    result = manage_check(DJANGO_SECRET_KEY=key)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is a placeholder" in result.stderr
    assert "secrets.token_urlsafe(50)" in result.stderr


@pytest.mark.parametrize("key", ["short-but-not-a-placeholder", "ab" * 30])
def test_a_short_or_simple_key_stops_the_start(key):
    result = manage_check(DJANGO_SECRET_KEY=key)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is too short or too simple" in result.stderr


def test_a_real_key_starts_and_debug_accepts_anything():
    assert manage_check(DJANGO_SECRET_KEY=GOOD_KEY).returncode == 0
    # A developer's DEBUG run is not a deployment: no key rules there.
    assert manage_check(DJANGO_SECRET_KEY="change-me", DJANGO_DEBUG="true").returncode == 0


def test_env_example_has_no_usable_secret():
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^DJANGO_SECRET_KEY=$", example, re.M)
    assert re.search(r"^POSTGRES_PASSWORD=$", example, re.M)
    assert "change-me" not in re.findall(r"^[A-Z_]+=(.*)$", example, re.M)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The files `make env` needs, in a folder of their own (the real .env is left alone)."""
    (tmp_path / "galaxysite").mkdir()
    shutil.copy(ROOT / "galaxysite" / "envfile.py", tmp_path / "galaxysite")
    shutil.copy(ROOT / "Makefile", tmp_path)
    shutil.copy(ROOT / ".env.example", tmp_path)
    return tmp_path


def make_env(folder: Path) -> str:
    result = subprocess.run(
        [MAKE, "--no-print-directory", "env", f"PYTHON={sys.executable}"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def values(env_file: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Z_]+)=(.*)$", env_file.read_text(), re.M))


def test_make_env_creates_a_working_env_once_and_never_clobbers_it(checkout):
    output = make_env(checkout)
    env_file = checkout / ".env"
    assert "Created .env" in output
    first = values(env_file)
    assert len(first["DJANGO_SECRET_KEY"]) >= 50
    assert first["POSTGRES_PASSWORD"]
    assert first["DJANGO_DEBUG"] == "false"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    # The settings start with it (DEBUG off).
    assert manage_check(env_file=env_file).returncode == 0, manage_check(env_file=env_file).stderr

    # Edited by its user, then `make run` again: nothing they set changes.
    env_file.write_text(
        env_file.read_text().replace("DJANGO_ALLOWED_HOSTS=", "DJANGO_ALLOWED_HOSTS=galaxy.test,")
    )
    edited = env_file.read_text()
    assert make_env(checkout) == ""
    assert env_file.read_text() == edited
    assert values(env_file)["DJANGO_SECRET_KEY"] == first["DJANGO_SECRET_KEY"]


def test_a_hand_copied_env_gets_its_secrets_in_place(checkout):
    env_file = checkout / ".env"
    shutil.copy(checkout / ".env.example", env_file)  # what the README used to say
    result = manage_check(env_file=env_file)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr

    assert "Added new DJANGO_SECRET_KEY, POSTGRES_PASSWORD" in make_env(checkout)
    text = env_file.read_text()
    assert text.count("DJANGO_SECRET_KEY=") == 1  # filled in place, not added twice
    assert len(values(env_file)["DJANGO_SECRET_KEY"]) >= 50
    assert manage_check(env_file=env_file).returncode == 0


def test_a_key_already_set_is_kept_even_a_refused_one(checkout):
    """The script never replaces a key (it may sign live sessions); settings say what is wrong."""
    env_file = checkout / ".env"
    env_file.write_text("DJANGO_SECRET_KEY=change-me\nPOSTGRES_PASSWORD=kept\n")
    assert make_env(checkout) == ""
    assert values(env_file) == {"DJANGO_SECRET_KEY": "change-me", "POSTGRES_PASSWORD": "kept"}
    assert "DJANGO_SECRET_KEY is a placeholder" in manage_check(env_file=env_file).stderr


def test_make_env_run_at_once_by_make_run_and_make_worker_agrees_on_one_key(checkout):
    runs = [
        subprocess.Popen(
            [MAKE, "--no-print-directory", "env", f"PYTHON={sys.executable}"],
            cwd=checkout,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0] * 4, outputs
    assert sum("Created .env" in out for out, _ in outputs) == 1
    text = (checkout / ".env").read_text()
    assert text.count("DJANGO_SECRET_KEY=") == 1
    assert len(values(checkout / ".env")["DJANGO_SECRET_KEY"]) >= 50
    assert not list(checkout.glob(".env.*.tmp"))
