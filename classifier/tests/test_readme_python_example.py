"""The README's Python (requests) example, copied out of the README and run against a live server."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from classifier.models import Prediction
from classifier.tests.utils import make_image_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def readme_example() -> str:
    """The README's one ```python block."""
    text = (Path(settings.BASE_DIR) / "README.md").read_text(encoding="utf-8")
    [block] = re.findall(r"^```python\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)
    return block


def test_readme_example_classifies_a_folder_into_a_csv(live_server, tmp_path):
    script = tmp_path / "classify_folder.py"
    script.write_text(readme_example(), encoding="utf-8")
    folder = tmp_path / "galaxies"
    folder.mkdir()
    for index in range(35):  # more than one request's worth
        (folder / f"g{index:02}.png").write_bytes(make_image_bytes(color=(index * 7, 60, 200)))
    (folder / "notes.txt").write_text("not an image: skipped by its suffix")
    subprocess.run(
        [sys.executable, str(script), str(folder), f"{live_server.url}/api/predictions/"],
        cwd=tmp_path,
        check=True,
        timeout=300,
    )
    with (tmp_path / "results.csv").open(newline="") as results:
        rows = list(csv.DictReader(results))
    assert [row["file"] for row in rows] == [f"g{index:02}.png" for index in range(35)]
    stored = {p.pk: p for p in Prediction.objects.all()}
    assert len(stored) == 35
    for row in rows:
        prediction = stored[int(row["id"])]
        assert row["prediction"] == prediction.class_name
        assert float(row["confidence"]) == pytest.approx(prediction.confidence, abs=5e-5)  # 4 decimals


def test_readme_example_leaves_results_csv_alone_when_a_request_fails(live_server, tmp_path):
    """The example used to open results.csv for writing first: a refused first request left an
    empty file where the previous run's results had been."""
    script = tmp_path / "classify_folder.py"
    script.write_text(readme_example(), encoding="utf-8")
    folder = tmp_path / "galaxies"
    folder.mkdir()
    (folder / "a_good.png").write_bytes(make_image_bytes(color=(10, 60, 200)))
    (folder / "b_broken.png").write_bytes(b"not an image")
    previous = "file,prediction,class_index,confidence,id\nold.png,Disturbed,0,0.5,1\n"
    (tmp_path / "results.csv").write_text(previous)
    result = subprocess.run(
        [sys.executable, str(script), str(folder), f"{live_server.url}/api/predictions/"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode != 0
    assert result.stderr.startswith("400: ")
    assert (tmp_path / "results.csv").read_text() == previous
    assert Prediction.objects.count() == 0
