"""Makes this interpreter import only what a deployed image has: the packages of requirements.lock.

Put on PYTHONPATH by ``running_gunicorn(..., runtime_only=True)``. The test virtualenv also holds
the test tools, and libraries import some of them when they find them: DRF's compat module imports
requests, markdown and pygments, drf-spectacular imports django.test (and with it jinja2). A worker
measured with them is about 17 MB larger than the one the Docker image runs, so a memory test would
measure the test tools. A module of an installed distribution that requirements.lock does not name
raises ImportError here, which those optional imports expect.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
from pathlib import Path


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked(lock: Path) -> set[str]:
    names = set()
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if match:
            names.add(_normalise(match.group(1)))
    return names


class _RuntimeOnly:
    def __init__(self, allowed: set[str]) -> None:
        self._owners = importlib.metadata.packages_distributions()
        self._allowed = allowed

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        # Only top-level names are checked: a submodule's package was checked when it loaded.
        owners = self._owners.get(name) if "." not in name else None
        if owners and not any(_normalise(owner) in self._allowed for owner in owners):
            raise ModuleNotFoundError(f"{name} is not in requirements.lock", name=name)


sys.meta_path.insert(0, _RuntimeOnly(_locked(Path(os.environ["RUNTIME_ONLY_LOCK"]))))
