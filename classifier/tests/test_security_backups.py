"""Backups are readable by their owner alone, and can be encrypted with GPG (issue 21, item 14).

A backup holds every record, password hashes and the API tokens in plain text: it is written
0600 in a 0700 folder whatever the umask, and `--encrypt` encrypts it to the key named by
DJANGO_BACKUP_GPG_RECIPIENT (docs/operations.md, "Backup and restore").
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from rest_framework.authtoken.models import Token

from classifier.tests.factories import PredictionFactory
from classifier.tests.test_settings import PRODUCTION_ENV, ROOT

pytestmark = pytest.mark.django_db(transaction=True)

PASSPHRASE = "backup-key-passphrase-for-tests"
GPG = shutil.which("gpg")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def backups_in(directory: Path) -> list[Path]:
    """The backups, without the .metadata file dbbackup writes beside each."""
    return sorted(path for path in directory.iterdir() if not path.name.endswith(".metadata"))


def point_storage_at(monkeypatch, directory: Path) -> None:
    from dbbackup import settings as dbbackup_settings

    options = {**dbbackup_settings.STORAGE_OPTIONS, "location": str(directory)}
    monkeypatch.setattr(dbbackup_settings, "STORAGE_OPTIONS", options)


@pytest.fixture
def loose_umask():
    """The usual umask, under which a plain FileSystemStorage writes 0644 files."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def backup_dir(tmp_path, monkeypatch):
    """The settings' backup storage, pointed at a folder made world-readable beforehand (as
    one made by hand, or by an older release, would be)."""
    from dbbackup import settings as dbbackup_settings

    assert dbbackup_settings.STORAGE == "classifier.ops.backups.PrivateFileSystemStorage"
    directory = tmp_path / "backups"
    directory.mkdir()
    directory.chmod(0o755)
    point_storage_at(monkeypatch, directory)
    return directory


@pytest.fixture(autouse=True)
def _needs_the_dump_tools():
    if connection.vendor == "postgresql" and not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump and pg_restore are needed to back up PostgreSQL")


@pytest.fixture
def gpg_home(monkeypatch):
    """A keyring of its own (GNUPGHOME, as gpg and python-gnupg read it) holding a new key
    pair whose private key is protected by PASSPHRASE; returns the key's fingerprint."""
    if GPG is None:
        pytest.skip("the gpg binary is not installed (Debian package gnupg; `make chromium` installs it)")
    gnupg = pytest.importorskip("gnupg", reason="python-gnupg is not installed (requirements.txt)")
    # Short: gpg-agent's socket lives in it, and a socket path may not exceed 107 bytes.
    home = tempfile.mkdtemp(prefix="gpg")
    monkeypatch.setenv("GNUPGHOME", home)
    gpg = gnupg.GPG(gnupghome=home)
    key = gpg.gen_key(
        gpg.gen_key_input(
            key_type="EDDSA",
            key_curve="ed25519",
            subkey_type="ECDH",
            subkey_curve="cv25519",
            name_email="backups@galaxy.example",
            passphrase=PASSPHRASE,
        )
    )
    assert key.fingerprint, key.stderr
    yield key.fingerprint
    gpgconf = shutil.which("gpgconf")
    if gpgconf:
        subprocess.run([gpgconf, "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": home}, check=False)
    shutil.rmtree(home, ignore_errors=True)


def test_backups_are_owner_only_whatever_the_umask(backup_dir, loose_umask, media_root):
    PredictionFactory()
    call_command("dbbackup", "--quiet")
    call_command("mediabackup", "--quiet")

    assert len(backups_in(backup_dir)) == 2
    # The backups and dbbackup's .metadata files beside them.
    assert {oct(mode(path)) for path in backup_dir.iterdir()} == {oct(0o600)}
    assert oct(mode(backup_dir)) == oct(0o700)


def test_a_new_backup_folder_is_made_owner_only(tmp_path, monkeypatch, loose_umask):
    directory = tmp_path / "not-yet" / "backups"
    point_storage_at(monkeypatch, directory)
    call_command("dbbackup", "--quiet")
    assert len(backups_in(directory)) == 1
    assert {oct(mode(path)) for path in directory.iterdir()} == {oct(0o600)}
    assert oct(mode(directory)) == oct(0o700)


def test_encrypted_backup_round_trip(backup_dir, loose_umask, gpg_home, monkeypatch, user):
    from dbbackup import settings as dbbackup_settings

    token = Token.objects.create(user=user)
    monkeypatch.setattr(dbbackup_settings, "GPG_RECIPIENT", gpg_home)

    call_command("dbbackup", "--quiet")
    [plain] = backups_in(backup_dir)
    if connection.vendor == "sqlite":
        # What the attack found: the token in the clear (pg_dump's format compresses it away).
        assert token.key.encode() in plain.read_bytes()
    for path in backup_dir.iterdir():
        path.unlink()

    call_command("dbbackup", "--encrypt", "--quiet")
    [encrypted] = backups_in(backup_dir)
    assert encrypted.name.endswith(".gpg")
    assert oct(mode(encrypted)) == oct(0o600)
    data = encrypted.read_bytes()
    assert token.key.encode() not in data
    assert b"authtoken_token" not in data
    assert b"CREATE TABLE" not in data

    Token.objects.all().delete()
    user.delete()
    call_command(
        "dbrestore", "--decrypt", "--passphrase", PASSPHRASE, "--noinput", "--quiet", "-i", encrypted.name
    )
    connection.close()  # the database was replaced under the connection
    restored = Token.objects.select_related("user").get()
    assert (restored.key, restored.user.username) == (token.key, user.username)


def test_a_wrong_passphrase_restores_nothing(backup_dir, gpg_home, monkeypatch, user):
    from dbbackup import settings as dbbackup_settings
    from dbbackup.utils import DecryptionError

    Token.objects.create(user=user)
    monkeypatch.setattr(dbbackup_settings, "GPG_RECIPIENT", gpg_home)
    call_command("dbbackup", "--encrypt", "--quiet")
    Token.objects.all().delete()
    with pytest.raises(DecryptionError):
        call_command("dbrestore", "--decrypt", "--passphrase", "wrong", "--noinput", "--quiet")
    assert not Token.objects.exists()


def test_manage_py_dbbackup_encrypts_to_the_configured_key(tmp_path, gpg_home, loose_umask):
    """The real command in a process of its own, configured by the environment alone."""
    database = tmp_path / "db.sqlite3"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE authtoken_token (key TEXT)")
        db.execute("INSERT INTO authtoken_token VALUES ('plaintext-token-0123456789')")
    backups = tmp_path / "backups"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DJANGO_") and key not in {"DATABASE_URL", "CELERY_BROKER_URL"}
    }
    env.update(
        PRODUCTION_ENV,
        DJANGO_SETTINGS_MODULE="galaxysite.settings",
        DJANGO_ENV_FILE=str(ROOT / "no-such.env"),
        DATABASE_URL=f"sqlite:///{database}",
        DJANGO_BACKUP_DIR=str(backups),
        DJANGO_BACKUP_GPG_RECIPIENT="backups@galaxy.example",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "dbbackup", "--encrypt"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [backup] = backups_in(backups)
    assert backup.name.endswith(".gpg")
    assert {oct(mode(path)) for path in backups.iterdir()} == {oct(0o600)}
    assert oct(mode(backups)) == oct(0o700)
    assert b"plaintext-token" not in backup.read_bytes()
    decrypted = subprocess.run(
        [
            GPG,
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            PASSPHRASE,
            "--decrypt",
            str(backup),
        ],
        capture_output=True,
        check=False,
    )
    assert decrypted.returncode == 0, decrypted.stderr
    assert b"plaintext-token-0123456789" in decrypted.stdout
