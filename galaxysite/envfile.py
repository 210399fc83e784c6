"""Create or complete the git-ignored .env that `make run` and `docker compose` share.

    python3 galaxysite/envfile.py .env

Without .env, it is made from .env.example. Then every secret it lacks (absent, commented out
or empty) gets a freshly generated value; a value already set is never changed, so running it
again (every `make run` does) keeps the key that signs existing sessions. .env.example holds no
usable secret on purpose: `cp .env.example .env` followed by `make run` or by this script gives
a working key, and the settings (settings/base.py) refuse the old `change-me` placeholder when DEBUG is off.

Run by path with the system Python: standard library only, and no Django import.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import sys
from pathlib import Path

# Each secret and how to make one: the Django signing key, and the PostgreSQL password that
# docker-compose.yml gives the database and the app (make run does not use it).
SECRETS = {
    "DJANGO_SECRET_KEY": lambda: secrets.token_urlsafe(50),
    "POSTGRES_PASSWORD": lambda: secrets.token_urlsafe(24),
}


def _assignment(name: str) -> re.Pattern[str]:
    # "NAME=value", "NAME=" or "# NAME=..." (the example's commented-out line).
    return re.compile(rf"^(?P<comment>#\s*)?{name}=(?P<value>.*)$", re.MULTILINE)


def _filled(text: str) -> tuple[str, list[str]]:
    """``text`` with every missing secret generated, and the names of those filled."""
    filled = []
    for name, make in SECRETS.items():
        pattern = _assignment(name)
        if any(not m["comment"] and m["value"].strip() for m in pattern.finditer(text)):
            continue
        line = f"{name}={make()}"
        # The first commented or empty line becomes the value, in place, so it keeps its
        # comment above it; without one, the line is appended.
        text, count = pattern.subn(lambda _m, line=line: line, text, count=1)
        if not count:
            text = text.rstrip("\n") + f"\n{line}\n"
        filled.append(name)
    return text, filled


def complete(path: Path, example: Path) -> tuple[bool, list[str]]:
    """Create ``path`` from ``example`` if absent, and fill its missing secrets.

    Returns whether it was created here, and the names filled. Safe when `make run` and
    `make worker` run it at the same moment: the file is created whole or not at all (a link
    to a finished temporary file), and filled under a lock, so both end with the same secrets.
    """
    if not path.exists():
        text, filled = _filled(example.read_text())
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.touch(mode=0o600)
        try:
            temporary.write_text(text)
            os.link(temporary, path)
            return True, filled
        except FileExistsError:
            pass  # made by another run meanwhile: completed below, like any existing file
        finally:
            temporary.unlink(missing_ok=True)
    with path.open("r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        text, filled = _filled(handle.read())
        if filled:
            handle.seek(0)
            handle.write(text)
            handle.truncate()
    return False, filled


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else ".env")
    example = Path(__file__).resolve().parent.parent / ".env.example"
    created, filled = complete(path, example)
    if created:
        sys.stdout.write(
            f"Created {path} from {example.name} with new {', '.join(filled)} (kept out of git).\n"
        )
    elif filled:
        sys.stdout.write(f"Added new {', '.join(filled)} to {path}; nothing else in it was changed.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
