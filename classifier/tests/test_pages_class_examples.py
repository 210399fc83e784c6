"""One real DECaLS example per class on the classes page, credited (issue 20, section 3).

The ten images and CREDITS.csv in static/classifier/examples/ are made by
``python -m ml.class_examples`` from the Galaxy Zoo DECaLS images in ../shared/data; the
tests that re-derive them from that data skip when it is absent.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.urls import reverse
from PIL import Image

from classifier.core.galaxy10 import NUM_CLASSES
from classifier.web.class_examples import credits_path

pytestmark = pytest.mark.django_db

EXAMPLES_DIR = Path(settings.BASE_DIR) / "static" / "classifier" / "examples"
SHARED_DATA = Path(settings.BASE_DIR).parent / "shared" / "data"
VOTES_DIR = SHARED_DATA / "gz_decals_votes"
MEMBERS_CSV = SHARED_DATA / "galaxy10_decals_coords" / "members_on_disk.csv"


def credits() -> list[dict[str, str]]:
    with credits_path().open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_there_are_ten_small_example_jpegs_and_nothing_else():
    rows = credits()
    assert [int(row["class_index"]) for row in rows] == list(range(NUM_CLASSES))
    images = sorted(path.name for path in EXAMPLES_DIR.iterdir() if path.name != "CREDITS.csv")
    assert images == sorted(row["file"] for row in rows)
    for row in rows:
        path = EXAMPLES_DIR / row["file"]
        assert path.stat().st_size <= 15_000, path
        with Image.open(path) as image:
            assert (image.format, image.size) == ("JPEG", (160, 160)), path
        assert row["iauname"].startswith("J")
        assert -90 <= float(row["dec"]) <= 90
        assert 0 <= float(row["ra"]) < 360
        assert row["reason"]


def test_the_classes_page_shows_each_example_and_credits_it(client):
    html = client.get(reverse("classifier:classes")).content.decode()
    for row in credits():
        card = html.split(f'id="class-{row["class_index"]}"', 1)[1].split("</li>", 1)[0]
        assert f'src="/static/classifier/examples/{row["file"]}"' in card
        assert f"the galaxy {row['iauname']}" in card  # the image's alt text
        assert "legacysurvey.org/viewer?ra=" in card
    credit = html.split('id="example-credit"', 1)[1].split("</p>", 1)[0]
    for text in (
        "Galaxy Zoo DECaLS",
        "Walmsley et al. 2022",
        "CC BY 4.0",
        "https://doi.org/10.1093/mnras/stab2093",
    ):
        assert text in credit
    assert 'href="https://creativecommons.org/licenses/by/4.0/"' in credit


def test_the_credit_is_translated(client):
    client.cookies["django_language"] = "es"
    html = client.get(reverse("classifier:classes")).content.decode()
    credit = html.split('id="example-credit"', 1)[1].split("</p>", 1)[0]
    assert "Imágenes de ejemplo" in credit
    assert "Walmsley et al. 2022" in credit


def test_notice_credits_the_example_images():
    notice = (Path(settings.BASE_DIR) / "NOTICE").read_text()
    assert "static/classifier/examples/" in notice
    assert "Walmsley et al. 2022" in notice
    assert "CC BY 4.0" in notice


@pytest.mark.skipif(not VOTES_DIR.is_dir(), reason=f"{VOTES_DIR} is absent: nothing to re-derive from")
def test_the_examples_are_the_galaxies_the_script_chooses_from_the_shared_data():
    class_examples = pytest.importorskip("ml.class_examples")
    chosen = class_examples.choose(SHARED_DATA)
    with MEMBERS_CSV.open(newline="") as handle:
        members = {
            row["iauname"]: int(row["label_index"])
            for row in csv.DictReader(handle)
            if row["file"].startswith("gz_decals_votes/")
        }
    for example, row in zip(chosen, credits(), strict=True):
        assert (example.class_index, example.iauname) == (int(row["class_index"]), row["iauname"])
        # A known Galaxy10 member of the class, or a well-voted galaxy whose votes pick the class.
        if example.iauname in members:
            assert members[example.iauname] == example.class_index
            assert "member" in row["reason"]
        else:
            assert example.class_index not in members.values()
            assert example.votes >= class_examples.MIN_VOTES
            assert example.vote_share >= class_examples.MIN_SHARE
        # The committed image is that galaxy's cutout, only resized and re-encoded.
        fresh = Image.open(io.BytesIO(class_examples.thumbnail(example.source))).convert("RGB")
        committed = Image.open(EXAMPLES_DIR / row["file"]).convert("RGB")
        difference = np.abs(np.asarray(fresh, dtype=float) - np.asarray(committed, dtype=float)).mean()
        assert difference < 2, (row["file"], difference)
