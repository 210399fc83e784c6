"""The README's examples work in a fresh clone (issue 20): the paths its commands name are in the
repository (not ../shared, which a user's clone does not have), and its Galaxy10 snippet turns a
Galaxy10_DECals.h5 into JPEGs that classify takes."""

from __future__ import annotations

import io
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command

ROOT = Path(settings.BASE_DIR)
README = (ROOT / "README.md").read_text(encoding="utf-8")
GIT = shutil.which("git")
BASH = shutil.which("bash") or "/bin/bash"


def tracked(path: str) -> bool:
    """Whether git tracks the file, or files under the folder: what a clone has."""
    if GIT is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: what a clone holds cannot be listed")
    result = subprocess.run(
        [GIT, "ls-files", "--", path], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return bool(result.stdout.strip())


def classify_commands() -> list[list[str]]:
    lines = re.findall(r"^\s*\.venv/bin/python manage\.py classify (.+?)(?:\s+#.*)?$", README, re.M)
    return [shlex.split(line.rstrip("\\ ")) for line in lines]


def test_no_command_example_points_at_the_maintainers_data():
    blocks = re.findall(r"^(?: {4}|\s*\.venv/bin/python ).*$", README, re.M)
    assert not [line for line in blocks if "../shared" in line and "manage.py" in line]


def test_the_classify_examples_name_files_of_the_repository():
    commands = classify_commands()
    assert commands, "the README shows manage.py classify"
    paths = [arg for args in commands for arg in args if "/" in arg and not arg.startswith("-")]
    assert paths
    for path in paths:
        assert tracked(path), f"{path} (in the README) is not in the repository"


def test_the_example_folder_classifies(tmp_path):
    out = io.StringIO()
    call_command(
        "classify",
        str(ROOT / "static/classifier/examples"),
        "--format",
        "json",
        stdout=out,
        stderr=io.StringIO(),
    )
    assert '"class_index"' in out.getvalue()


def galaxy10_snippet() -> str:
    [block] = [b for b in re.findall(r"```sh\n(.*?)```", README, re.S) if "Galaxy10_DECals.h5" in b]
    return textwrap.dedent(block)


def test_the_galaxy10_snippet_writes_jpegs_that_classify_takes(tmp_path):
    h5py = pytest.importorskip("h5py", reason="h5py comes with the training stack (requirements-train.txt)")
    rng = np.random.default_rng(7)
    with h5py.File(tmp_path / "Galaxy10_DECals.h5", "w") as galaxy10:
        # The real file's layout: images (N, 256, 256, 3) uint8, ans (N,) uint8, ra, dec (N,).
        galaxy10["images"] = rng.integers(0, 255, size=(100, 256, 256, 3), dtype=np.uint8)
        galaxy10["ans"] = rng.integers(0, 10, size=100, dtype=np.uint8)
        galaxy10["ra"] = rng.uniform(0, 360, size=100)
        galaxy10["dec"] = rng.uniform(-20, 60, size=100)
    script = galaxy10_snippet().replace("python -", f"{shlex.quote(sys.executable)} -", 1)
    subprocess.run([BASH, "-ec", script], cwd=tmp_path, check=True, timeout=300)
    written = sorted((tmp_path / "galaxies").glob("*.jpg"))
    assert len(written) == 100
    assert re.fullmatch(r"g10_00000_class\d\.jpg", written[0].name)
    out = io.StringIO()
    call_command("classify", *map(str, written[:3]), "--format", "json", stdout=out, stderr=io.StringIO())
    assert out.getvalue().count('"class_index"') == 3
