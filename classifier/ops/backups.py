"""Where django-dbbackup writes: a folder and files that only the backups' owner can read.

A backup holds every record, the users' password hashes and their API tokens in plain text
(docs/operations.md, "Backup and restore"; encrypt them with GPG for copies that leave the
machine).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from shutil import copyfileobj
from tempfile import NamedTemporaryFile
from typing import IO, Any

from dbbackup.db.sqlite import SqliteBackupConnector
from django.core.files.storage import FileSystemStorage

BACKUP_FILE_MODE = 0o600
BACKUP_FOLDER_MODE = 0o700


class PrivateFileSystemStorage(FileSystemStorage):
    """FileSystemStorage whose files are 0600 and folders 0700, whatever the umask."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("file_permissions_mode", BACKUP_FILE_MODE)
        options.setdefault("directory_permissions_mode", BACKUP_FOLDER_MODE)
        super().__init__(**options)

    def _save(self, name: str, content: Any) -> str:
        # FileSystemStorage creates a file with the umask's mode and narrows it only once it is
        # written: the folder is closed first, so that nobody else can open the file meanwhile,
        # an existing folder (made by hand, or before this storage) included.
        folder = Path(self.location)
        folder.mkdir(mode=BACKUP_FOLDER_MODE, parents=True, exist_ok=True)
        folder.chmod(BACKUP_FOLDER_MODE)
        return super()._save(name, content)


class SqliteOnlineConnector(SqliteBackupConnector):
    """django-dbbackup's SQLite connector with a restore through SQLite's online backup API.

    The stock restore writes the dump over the database file. In write-ahead-log mode
    (galaxysite/settings/base.py) that leaves the ``-wal`` and ``-shm`` files of every open
    connection describing another database, and the next query fails with "disk I/O error".
    Copying page by page into the live connection lets SQLite itself replace the content,
    log included, and any other connection sees the restored database at its next read.
    """

    def restore_dump(self, dump: IO[bytes]) -> None:
        with NamedTemporaryFile(suffix=".sqlite3") as copy:
            copyfileobj(dump, copy)
            copy.flush()
            self.connection.ensure_connection()
            source = sqlite3.connect(copy.name)
            try:
                source.backup(self.connection.connection)
            finally:
                source.close()
