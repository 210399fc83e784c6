"""The example galaxy shown for each class on the classes page.

The images and ``CREDITS.csv`` live in static/classifier/examples/ and are made by
``python -m ml.class_examples`` from the Galaxy Zoo DECaLS images (CC-BY-4.0); this module
only reads the credits file, once per process.
"""

from __future__ import annotations

import csv
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings

EXAMPLES_STATIC_DIR = "classifier/examples"
CREDITS_FILENAME = "CREDITS.csv"
VIEWER_URL = "https://www.legacysurvey.org/viewer"

_lock = threading.Lock()
_loaded: dict[str, dict[int, ClassExample]] = {}


@dataclass(frozen=True)
class ClassExample:
    class_index: int
    static_path: str
    iauname: str
    ra: float
    dec: float

    @property
    def viewer_url(self) -> str:
        return f"{VIEWER_URL}?{urlencode({'ra': f'{self.ra:.6f}', 'dec': f'{self.dec:.6f}', 'zoom': 15})}"


def credits_path() -> Path:
    return Path(settings.BASE_DIR) / "static" / EXAMPLES_STATIC_DIR / CREDITS_FILENAME


def _read(path: Path) -> dict[int, ClassExample]:
    # A missing file leaves the page without examples rather than failing it.
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        return {
            int(row["class_index"]): ClassExample(
                class_index=int(row["class_index"]),
                static_path=f"{EXAMPLES_STATIC_DIR}/{row['file']}",
                iauname=row["iauname"],
                ra=float(row["ra"]),
                dec=float(row["dec"]),
            )
            for row in csv.DictReader(handle)
        }


def class_examples() -> dict[int, ClassExample]:
    """The example of each class index that has one."""
    if "examples" not in _loaded:
        with _lock:
            if "examples" not in _loaded:
                _loaded["examples"] = _read(credits_path())
    return _loaded["examples"]
