"""The model page (/model/): the served model, its metrics in plain words with their
uncertainty, its figures drawn from the manifest's numbers, and its card as HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.staticfiles import finders
from django.urls import reverse
from django.utils import translation

from classifier.core.manifest import ModelManifest
from classifier.core.manifest_sections import MetricsSection
from classifier.core.statistics import wilson_interval
from classifier.predictions.inference import get_classifier
from classifier.templatetags.classifier_tags import percent
from classifier.web.model_card import MODEL_CARD_FILENAME, render_model_card
from classifier.web.model_page import (
    configuration_sections,
    evaluation_sets,
    format_setting,
    model_page_context,
)
from ml import metrics as ml_metrics

pytestmark = pytest.mark.django_db

MODEL_URL = reverse("classifier:model")


def shipped_manifest() -> dict:
    return json.loads(Path(django_settings.MODEL_MANIFEST).read_text(encoding="utf-8"))


def without_model_card(html: str) -> str:
    """The page's own text: the card is the training pipeline's English, not the page's."""
    return re.sub(r'<div class="model-card" id="model-card" lang="en">.*?</div>', "", html, flags=re.S)


def test_model_page_shows_the_served_model(client):
    served = get_classifier()

    response = client.get(MODEL_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert f'<dd id="model-version">{served.model_version}</dd>' in html
    assert served.model_sha256 in html
    assert served.backend_name in html
    assert 'id="metrics"' in html


def test_model_page_is_503_when_the_model_is_missing(client, settings, tmp_path):
    settings.MODEL_PATH = tmp_path / "absent.tflite"
    settings.MODEL_MANIFEST = tmp_path / "absent.json"

    response = client.get(MODEL_URL)

    assert response.status_code == 503
    assert "absent.json" in response.content.decode()


def test_no_static_url_serves_the_model_or_its_manifest():
    # Everything the static finders can serve, in every configured location: the model folder
    # (ml/models/) must not be among them, by any name or path.
    served = {Path(path).name for finder in finders.get_finders() for path, _storage in finder.list([])}
    model_files = {Path(django_settings.MODEL_PATH).name, Path(django_settings.MODEL_MANIFEST).name}

    assert "site.css" in served, "the finders list nothing: the check would be empty"
    assert served & model_files == set()
    model_dir = Path(django_settings.MODEL_PATH).resolve().parent
    for entry in getattr(django_settings, "STATICFILES_DIRS", []):
        location = Path(entry[1] if isinstance(entry, tuple) else entry).resolve()
        assert not model_dir.is_relative_to(location)


# --- the model card ----------------------------------------------------------------------------


def test_the_shipped_model_card_is_rendered_as_html(client):
    card = (Path(django_settings.MODEL_PATH).parent / MODEL_CARD_FILENAME).read_text(encoding="utf-8")
    first_heading = re.search(r"^## (.+)$", card, flags=re.M).group(1)

    html = client.get(MODEL_URL).content.decode()

    rendered = html[html.index('<div class="model-card"') :]
    # One level below the page's "Model card" h2: "##" in the card is an h4.
    assert f"<h4>{first_heading}</h4>" in rendered
    assert "<h1" not in rendered
    assert "<h2" not in rendered
    assert "<table>" in rendered
    assert "<th>" in rendered
    # No Markdown syntax left over: table rules, heading marks, backticks.
    assert "|---" not in rendered
    assert "\n## " not in rendered
    assert "`" not in rendered.split("</div>")[0]


def test_fenced_code_and_tables_render():
    html = render_model_card("| a | b |\n|---|---|\n| 1 | 2 |\n\n```\nmake model\n```\n")

    assert "<table>" in html
    assert "<td>1</td>" in html
    assert "<pre><code>make model\n</code></pre>" in html


@pytest.mark.parametrize(
    ("markdown_text", "forbidden"),
    [
        ("Hello <script>alert(1)</script>", ["<script", "alert(1)</script>"]),
        ('<img src="x" onerror="alert(1)">', ["onerror", "<img"]),
        ("[click](javascript:alert(1))", ["javascript:"]),
        ('<a href="https://example.org" onclick="steal()">x</a>', ["onclick", "steal()"]),
        ("<iframe src='https://example.org'></iframe>", ["<iframe"]),
    ],
    ids=["script", "onerror", "javascript-url", "onclick", "iframe"],
)
def test_the_sanitiser_removes_active_content(markdown_text, forbidden):
    html = render_model_card(markdown_text)

    assert [text for text in forbidden if text in html] == []


def test_a_hostile_model_card_is_sanitised_on_the_page(client, model_copy):
    model_path, _manifest = model_copy
    (model_path.parent / MODEL_CARD_FILENAME).write_text(
        "# Card\n\n<script>document.title='owned'</script>\n\n"
        '<img src=x onerror="alert(1)">\n\n| a |\n|---|\n| **bold** |\n',
        encoding="utf-8",
    )

    html = client.get(MODEL_URL).content.decode()

    card = html[html.index('<div class="model-card"') :]
    assert "<script>document.title" not in card
    assert "onerror" not in card
    assert "<td><strong>bold</strong></td>" in card


def test_a_model_without_a_card_says_so(client, model_copy):
    html = client.get(MODEL_URL).content.decode()

    assert "No model card was shipped with this model." in html
    assert 'id="model-card"' not in html


# --- metrics in plain words --------------------------------------------------------------------


@pytest.mark.parametrize(("successes", "n"), [(0, 10), (19, 30), (30, 30), (1, 3), (67, 99), (267, 406)])
def test_the_wilson_interval_is_astropys(successes, n):
    from astropy.stats import binom_conf_interval

    expected = binom_conf_interval(successes, n, confidence_level=0.95, interval="wilson")
    assert wilson_interval(successes, n) == pytest.approx(tuple(expected), abs=1e-3)


def test_the_wilson_interval_of_a_textbook_case():
    # 0 of 10: the Wilson upper bound is z²/(n+z²) = 0.2775 (Brown, Cai & DasGupta 2001).
    low, high = wilson_interval(0, 10)

    assert low == 0.0
    assert high == pytest.approx(0.2775, abs=1e-4)


def test_the_headline_gives_the_share_the_count_and_the_interval(client):
    dev = next(values for values in shipped_manifest()["metrics"].values() if "top1" in values)
    n = dev["n"]
    low, high = ml_metrics.wilson_interval(round(dev["top1"] * n), n)

    html = client.get(MODEL_URL).content.decode()

    headline = re.search(r'<p class="lead" id="headline-metric">(.*?)</p>', html, flags=re.S).group(1)
    expected = (
        f"the first guess was right for {dev['top1'] * 100:.0f}% of {n} images "
        f"(95% interval {low * 100:.0f}%\N{EN DASH}{high * 100:.0f}%)"
    )
    assert expected in headline


def test_every_metric_is_spelled_out(client):
    html = client.get(MODEL_URL).content.decode()

    glossary = re.search(r'<dl class="glossary" id="metric-glossary">(.*?)</dl>', html, flags=re.S).group(1)
    for term in ("Right first guess (top-1)", "Right broad group (4-group)", "Calibration error (ECE)"):
        assert term in glossary
    assert "Soft cross entropy" in glossary
    assert "smooth / face-on disk / edge-on disk / disturbed or merging" in glossary
    assert "how far confidence is from accuracy" in glossary.lower()


def test_evaluation_sets_are_read_from_the_manifest_with_their_intervals():
    metrics = MetricsSection.parse(
        {
            "galaxy10_decals_dev": {"n": 30, "top1": 19 / 30, "group4": 0.8, "ece": 0.1},
            "test/gz2": {"images": 200, "top1": 0.5, "per_class_recall": [0.5] * 9 + [None]},
            "test/gz1": {"images": 661, "coarse_accuracy": 0.79, "group_abs_error": 0.2},
            "export_check": {"max_abs_diff_vs_torch_on_dev_images": 0.005},
            "uncounted": {"top1": 0.5},
        }
    )

    sets = evaluation_sets(metrics)

    assert [s.key for s in sets] == ["galaxy10_decals_dev", "test/gz2", "test/gz1"]
    dev, gz2, gz1 = sets
    assert (dev.top1.low, dev.top1.high) == pytest.approx(ml_metrics.wilson_interval(19, 30))
    assert dev.top2 is None
    assert dev.ece == 0.1
    assert gz2.n == 200
    assert gz2.per_class_recall == [0.5] * 9 + [None]
    assert gz1.top1 is None
    assert gz1.coarse_accuracy == 0.79
    with translation.override("en"):
        assert gz2.label == "gz2, test split"


def test_the_context_is_read_from_the_typed_manifest(tmp_path):
    manifest = ModelManifest.from_dict(shipped_manifest())

    context = model_page_context(manifest=manifest, model_dir=tmp_path)

    assert context["main_set"].key == "galaxy10_decals_dev"
    assert context["input_size"] == manifest.preprocessing.size
    assert [c.name for c in context["export_candidates"]] == ["int8", "float16"]
    assert [c.shipped for c in context["export_candidates"]] == [True, False]
    assert [s.name for s in context["data_sources"]] == [s.name for s in manifest.provenance.sources]
    assert context["epochs"] == len(manifest.training.history)
    assert context["model_card"] == ""


def test_a_manifest_without_metrics_or_training_still_renders(client, model_copy):
    _model, manifest_path = model_copy
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for section in ("metrics", "training", "provenance", "figures", "created_at"):
        manifest.pop(section)
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")

    response = client.get(MODEL_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "The manifest lists no metrics." in html
    assert "The manifest has no training details." in html


# --- figures drawn from the numbers ------------------------------------------------------------


def test_the_confusion_matrix_is_a_table_of_the_manifests_counts(client):
    dev = next(values for values in shipped_manifest()["metrics"].values() if "confusion_matrix" in values)

    html = client.get(MODEL_URL).content.decode()

    table = re.search(r'<table class="confusion-table" id="confusion-1">(.*?)</table>', html, flags=re.S)
    rows = re.findall(r"<tr><th scope=\"row\">.*?</tr>", table.group(1))
    cell = re.compile(r'<td class="heat-\d+(?: diagonal)?">(\d+)</td>')
    cells = [[int(c) for c in cell.findall(row)] for row in rows]
    assert cells == dev["confusion_matrix"]


def test_the_reliability_diagram_is_drawn_from_the_manifests_bins(client):
    reliability = next(
        values["reliability"] for values in shipped_manifest()["metrics"].values() if "reliability" in values
    )

    html = client.get(MODEL_URL).content.decode()

    svg = re.search(r'<svg class="reliability-chart".*?</svg>', html, flags=re.S).group(0)
    heights = [float(h) for h in re.findall(r'<rect class="rel-bar" [^>]*height="([\d.]+)"', svg)]
    bins = zip(reliability["accuracy"], reliability["counts"], strict=True)
    expected = [round(accuracy * 100, 2) for accuracy, count in bins if count]
    assert heights == pytest.approx(expected, abs=0.01)
    assert "<img" not in html[html.index('id="reliability-heading"') : html.index('id="data-heading"')]


def test_no_figure_with_english_words_is_shown(client):
    html = client.get(MODEL_URL, HTTP_ACCEPT_LANGUAGE="es").content.decode()

    for path in shipped_manifest().get("figures", {}).values():
        assert Path(path).name not in html


# --- the training configuration ----------------------------------------------------------------


def test_the_training_configuration_is_collapsed_and_the_seed_unseparated(client):
    seed = shipped_manifest()["training"]["config"]["seed"]

    for language in ("en", "es"):
        html = client.get(MODEL_URL, HTTP_ACCEPT_LANGUAGE=language).content.decode()

        details = re.search(r"<details id=\"training-configuration\">(.*?)</details>", html, flags=re.S)
        assert details is not None, "the configuration is not in a closed <details> block"
        assert f"<td>{seed}</td>" in details.group(1)
        for separator in (",", ".", "\N{NO-BREAK SPACE}", " "):
            assert f"{seed:,}".replace(",", separator) not in html


def test_settings_keep_integers_whole_and_decimals_in_the_readers_locale():
    with translation.override("es"):
        assert format_setting(20261126) == "20261126"
        assert format_setting(0.0006) == "0,0006"
        assert format_setting([0.8, 0.1, 0.1]) == "0,8; 0,1; 0,1"
        assert format_setting(True) == "sí"
    with translation.override("en"):
        assert format_setting(0.0006) == "0.0006"
        assert format_setting(1e-05) == "1e-05"


def test_configuration_sections_follow_the_toml_tables():
    sections = configuration_sections({"seed": 7, "train": {"epochs": 3, "optimiser": {"lr": 0.1}}})

    assert [(s.name, s.rows) for s in sections] == [
        ("", [("seed", "7")]),
        ("train", [("epochs", "3"), ("optimiser.lr", "0.1")]),
    ]


# --- numbers in the reader's locale ------------------------------------------------------------


def test_percentages_follow_the_locale_like_sizes_do():
    with translation.override("en"):
        assert percent(0.6767) == "67.7%"
        assert percent(0.6666, 0) == "67%"
    with translation.override("es"):
        assert percent(0.6767) == "67,7%"


def test_the_spanish_model_page_has_spanish_numbers(client):
    html = without_model_card(client.get(MODEL_URL, HTTP_ACCEPT_LANGUAGE="es").content.decode())

    numbers = re.findall(r"\d+[.,]\d+%", html)
    assert numbers, "no percentage on the page"
    assert [n for n in numbers if "." in n] == []
    assert re.search(r"\d+,\d\sMB", html), "the export sizes are not in Spanish format"
