"""The pages in Spanish: the shipped catalog is complete and every main page uses it.

English is the source language. A reader gets Spanish from the browser's
Accept-Language header, or from the language switcher (Django's set_language
view), which remembers the choice in the language cookie.

After changing any marked string, refresh and compile the catalog (IGNORED below, as --ignore):
    manage.py makemessages -l es --no-obsolete --ignore=ml --ignore=bench --ignore=notebooks \
        --ignore=docs --ignore=.venv --ignore=.venv-tflite
    manage.py compilemessages -l es --ignore=ml --ignore=bench --ignore=notebooks --ignore=docs \
        --ignore=.venv --ignore=.venv-tflite
and commit both locale/es/LC_MESSAGES/django.po and django.mo.
"""

from __future__ import annotations

import gettext as gnu_gettext
import io
import random
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation
from PIL import Image

from classifier.core import galaxy10
from classifier.models import Prediction
from classifier.templatetags import galaxy10_i18n
from classifier.tests.factories import PredictionFactory
from classifier.tests.utils import make_image_bytes

pytestmark = pytest.mark.django_db

CATALOG_DIR = Path(settings.BASE_DIR) / "locale" / "es" / "LC_MESSAGES"
PO_FILE = CATALOG_DIR / "django.po"
MO_FILE = CATALOG_DIR / "django.mo"
# The folders the catalog command above leaves out (ml/, bench/ and notebooks/ hold no page
# text); the check below runs makemessages on everything else, as that command does.
IGNORED = ["ml", "bench", "notebooks", "docs", ".venv", ".venv-tflite"]
# Not sources: never copied for the check.
NOT_SOURCES = [".git", "locale", "media", "staticfiles", "var", "node_modules", "__pycache__", "*.sqlite3"]


# --- the catalog -------------------------------------------------------------------------------


PO_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def _unquote(line: str) -> str:
    quoted = line[line.index('"') + 1 : line.rindex('"')]
    return re.sub(r"\\(.)", lambda match: PO_ESCAPES.get(match.group(1), match.group(1)), quoted)


def parse_po(path: Path) -> list[dict]:
    """The entries of a .po file: msgctxt, msgid, msgid_plural, msgstr (a dict for plurals), flags."""
    entries: list[dict] = []
    entry: dict = {}
    field: str | int | None = None

    def finish() -> None:
        if "msgid" in entry:
            entries.append(dict(entry))
        entry.clear()

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#~"):
            entry["obsolete"] = True
            line = line[2:].strip()
        if not line:
            finish()
        elif line.startswith("#,"):
            entry.setdefault("flags", set()).update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            if isinstance(field, int):
                entry["msgstr"][field] += _unquote(line)
            else:
                entry[field] += _unquote(line)
        else:
            keyword = line.split(" ", 1)[0]
            plural_form = re.fullmatch(r"msgstr\[(\d+)\]", keyword)
            if plural_form:
                field = int(plural_form.group(1))
                entry.setdefault("msgstr", {})[field] = _unquote(line)
            else:
                field = keyword
                entry[field] = _unquote(line)
    finish()
    return entries


def catalog_entries() -> list[dict]:
    return [e for e in parse_po(PO_FILE) if e["msgid"]]


def test_the_spanish_catalog_is_shipped_compiled():
    assert PO_FILE.is_file()
    assert MO_FILE.is_file(), "run manage.py compilemessages and commit the .mo file"
    assert len(catalog_entries()) > 150


def catalog_problems(path: Path) -> list[str]:
    """Every entry that would show English (or nothing) to a Spanish reader."""
    entries = parse_po(path)
    header = next(e for e in entries if e["msgid"] == "")
    problems = ["fuzzy header"] if "fuzzy" in header.get("flags", set()) else []
    for entry in entries:
        if not entry["msgid"]:
            continue
        name = f"{entry.get('msgctxt', '')}|{entry['msgid']}"
        translations = entry["msgstr"] if isinstance(entry["msgstr"], dict) else {0: entry["msgstr"]}
        if entry.get("obsolete"):
            problems.append(f"obsolete: {name}")
        if "fuzzy" in entry.get("flags", set()):
            problems.append(f"fuzzy: {name}")
        if "msgid_plural" in entry and len(translations) != 3:
            problems.append(f"not all three Spanish plural forms: {name}")
        if not all(text.strip() for text in translations.values()):
            problems.append(f"untranslated: {name}")
    return problems


def test_every_spanish_message_is_translated_and_none_is_fuzzy():
    assert catalog_problems(PO_FILE) == []


def test_the_catalog_check_finds_fuzzy_empty_and_obsolete_entries(tmp_path):
    po = tmp_path / "django.po"
    po.write_text(
        '#, fuzzy\nmsgid ""\nmsgstr ""\n"Language: es\\n"\n\n'
        'msgid "Done"\nmsgstr "Hecho"\n\n'
        '#, fuzzy\nmsgid "Galaxy"\nmsgstr "Galaxia"\n\n'
        'msgctxt "Galaxy10 class name"\nmsgid "Merging"\nmsgstr ""\n\n'
        'msgid "%(n)s star"\nmsgid_plural "%(n)s stars"\nmsgstr[0] "%(n)s estrella"\n'
        'msgstr[1] ""\nmsgstr[2] "%(n)s estrellas"\n\n'
        '#~ msgid "Old"\n#~ msgstr "Viejo"\n',
        encoding="utf-8",
    )

    assert catalog_problems(po) == [
        "fuzzy header",
        "fuzzy: |Galaxy",
        "untranslated: Galaxy10 class name|Merging",
        "untranslated: |%(n)s star",
        "obsolete: |Old",
    ]


def test_the_compiled_catalog_matches_the_po_file():
    with MO_FILE.open("rb") as handle:
        compiled = gnu_gettext.GNUTranslations(handle)
    stale = []
    for entry in catalog_entries():
        msgid = entry["msgid"]
        if "msgctxt" in entry:
            msgid = f"{entry['msgctxt']}\x04{msgid}"
        if "msgid_plural" in entry:
            # Spanish plural forms: 0 for one, 1 for whole millions ("de"), 2 for the rest.
            expected = [entry["msgstr"][form] for form in (0, 1, 2)]
            actual = [compiled.ngettext(msgid, entry["msgid_plural"], n) for n in (1, 1_000_000, 2)]
        else:
            expected = entry["msgstr"]
            actual = compiled.gettext(msgid)
        if actual != expected:
            stale.append(entry["msgid"])
    assert stale == [], "django.mo is stale: run manage.py compilemessages -l es"


def test_the_catalog_holds_every_marked_string(settings, tmp_path, monkeypatch):
    """makemessages, run afresh on a copy of the whole project with the documented ignores,
    finds exactly the shipped messages: a string marked anywhere and not translated fails."""
    # Skipping would let a missing entry pass unseen: `make chromium` installs gettext.
    assert shutil.which("xgettext"), "GNU gettext is needed to check the catalog: run make chromium"
    # A copy, because makemessages writes into the nearest locale folder: the real one here.
    project = tmp_path / "project"
    shutil.copytree(
        Path(settings.BASE_DIR),
        project,
        ignore=shutil.ignore_patterns(*IGNORED, *NOT_SOURCES),
        symlinks=True,
    )
    (project / "locale").mkdir()
    settings.LOCALE_PATHS = [project / "locale"]
    monkeypatch.chdir(project)

    call_command("makemessages", locale=["es"], ignore_patterns=IGNORED, no_obsolete=True, verbosity=0)

    fresh = {
        (e.get("msgctxt"), e["msgid"])
        for e in parse_po(project / "locale" / "es" / "LC_MESSAGES" / "django.po")
    }
    shipped = {(e.get("msgctxt"), e["msgid"]) for e in parse_po(PO_FILE)}
    assert fresh - shipped == set(), "run makemessages -l es and translate the new messages"
    assert shipped - fresh == set(), "the catalog has messages no file uses any more"


def test_every_galaxy10_text_is_in_the_catalog_under_its_context():
    # Marked where galaxy10.py defines them; the shipped catalog must hold each one, in the
    # context the pages look it up with, or the pages fall back to English silently.
    shipped = {(e.get("msgctxt"), e["msgid"]): e["msgstr"] for e in catalog_entries()}
    expected = [
        *((galaxy10.CLASS_NAME_CONTEXT, c.name) for c in galaxy10.GALAXY10_CLASSES),
        *((galaxy10.CLASS_DESCRIPTION_CONTEXT, c.description) for c in galaxy10.GALAXY10_CLASSES),
        *((galaxy10.GROUP_CONTEXT, group) for group in galaxy10.GROUPS),
    ]
    assert [key for key in expected if not shipped.get(key)] == []


def test_every_class_name_has_its_own_spanish_name():
    with translation.override("es"):
        spanish = [galaxy10_i18n.galaxy_class_name(name) for name in galaxy10.CLASS_NAMES]
    assert len(set(spanish)) == galaxy10.NUM_CLASSES
    assert not set(spanish) & set(galaxy10.CLASS_NAMES)


# --- the pages ---------------------------------------------------------------------------------


@pytest.fixture
def spanish_client(client):
    """A browser that asks for Spanish first."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "es-ES,es;q=0.9,en;q=0.5"
    return client


def page_html(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def assert_spanish(html: str, *, present: list[str], absent: list[str]) -> None:
    assert '<html lang="es">' in html
    missing = [text for text in present if text not in html]
    leftover = [text for text in absent if text in html]
    assert missing == []
    assert leftover == []


def test_upload_page_follows_the_browsers_language(spanish_client):
    html = page_html(spanish_client, reverse("classifier:upload"))

    assert_spanish(
        html,
        present=[
            "<h1>Clasificar imágenes de galaxias</h1>",
            "Arrastre y suelte imágenes aquí, o elija archivos.",
            "Imágenes de galaxias",
            "Saltar al contenido principal",
            '"classifying": "Clasificando… puede tardar unos segundos."',
            '"sending": "Subiendo… {percent}%"',
        ],
        absent=["Classify galaxy images", "Drag and drop", "Skip to main content", "Uploading…"],
    )


def test_english_stays_the_default(client):
    html = page_html(client, reverse("classifier:upload"))

    assert '<html lang="en">' in html
    assert "<h1>Classify galaxy images</h1>" in html
    assert "Clasificar" not in html


def test_classes_page_in_spanish_from_the_language_cookie(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "es"

    html = page_html(client, reverse("classifier:classes"))

    assert_spanish(
        html,
        present=[
            "Las 10 clases de Galaxy10 DECaLS",
            "Perturbadas o en fusión",
            "Espiral barrada",
            "De canto con bulbo",
            "Fusión",
            "Perturbada",
            "Galaxia espiral barrada vista de frente",
            "Índice de clase 5",
        ],
        absent=[c.name for c in galaxy10.GALAXY10_CLASSES]
        + [c.description for c in galaxy10.GALAXY10_CLASSES]
        + ["Class index", "Disturbed or merging"],
    )


def test_model_page_in_spanish(spanish_client):
    html = page_html(spanish_client, reverse("classifier:model"))
    # The model card is the training pipeline's own English text (marked lang="en"); the rest
    # of the page, figures included, must be Spanish.
    page = re.sub(r'<div class="model-card" id="model-card" lang="en">.*?</div>', "", html, flags=re.S)

    assert_spanish(
        page,
        present=[
            "<h1>El modelo</h1>",
            "Modelo en servicio",
            "Ficha del modelo",
            "Versión",
            "Matriz de confusión",
            "Fiabilidad",
            "Exhaustividad por clase",
            "Primera respuesta correcta",
            "Error de calibración",
            "Configuración del entrenamiento",
        ],
        absent=[
            "<h1>The model</h1>",
            "Served model",
            "Model card",
            "Confusion matrix",
            "Reliability",
            "per class recall",
            "Per class",
            "Right first guess",
            "Calibration error",
            ">Confidence<",
            ">Accuracy<",
            "test split",
            "Training configuration",
            ".png",
        ],
    )


def test_admin_in_spanish(spanish_client, staff):
    PredictionFactory(
        class_index=5, class_name="Barred Spiral", confidence=0.625, source=Prediction.Source.API
    )
    spanish_client.force_login(staff)

    html = page_html(spanish_client, reverse("admin:classifier_prediction_changelist"))

    assert '<html lang="es" dir="ltr">' in html
    present = [
        "Clasificador de galaxias",
        "Por fuente",
        "Por versión del modelo",
        "Por clase",
        '<td class="field-galaxy_class">Espiral barrada</td>',
        '<td class="field-confidence_percent">62,5%</td>',
        "Nombre del archivo original",
    ]
    absent = [
        "Galaxy classifier",
        "Por source",
        "Por model version",
        "Por class",
        ">Barred Spiral<",
        "Original file",
        ">Image<",
    ]
    assert [text for text in present if text not in html] == []
    assert [text for text in absent if text in html] == []


def test_history_page_in_spanish_for_a_logged_in_user(spanish_client, user):
    PredictionFactory(class_index=5, class_name="Barred Spiral", source=Prediction.Source.WEB)
    spanish_client.force_login(user)

    html = page_html(spanish_client, reverse("classifier:history"))

    assert_spanish(
        html,
        present=[
            "<h1>Historial de predicciones</h1>",
            "1 predicción",
            "Espiral barrada",
            "Página web",
            '<option value="" selected>Cualquier clase</option>',
            '<option value="9">De canto con bulbo</option>',
            "Más recientes primero",
            "Exportar CSV",
            "Cerrar sesión (reader)",
        ],
        absent=["Prediction history", "Barred Spiral", "Web page", "Any class", "Export CSV", "Log out"],
    )


def test_history_filter_by_class_still_uses_the_class_index(spanish_client, user):
    PredictionFactory(class_index=5, class_name="Barred Spiral", original_filename="barred.png")
    PredictionFactory(class_index=2, class_name="Round Smooth", original_filename="round.png")
    spanish_client.force_login(user)

    html = page_html(spanish_client, f"{reverse('classifier:history')}?class_index=5")

    assert '<option value="5" selected>Espiral barrada</option>' in html
    assert "barred.png" in html
    assert "round.png" not in html


def test_prediction_detail_in_spanish(spanish_client, user):
    probabilities = [0.02] * 10
    probabilities[5] = 0.40
    probabilities[6] = 0.44
    prediction = PredictionFactory(
        probabilities=probabilities,
        class_index=6,
        class_name="Unbarred Tight Spiral",
        confidence=0.44,
        original_filename="ngc1300.png",
    )
    spanish_client.force_login(user)

    html = page_html(spanish_client, prediction.get_absolute_url())

    assert_spanish(
        html,
        present=[
            '<h2 class="prediction-class" id="prediction-class">Espiral cerrada sin barra</h2>',
            "Confianza: <strong>44,0%</strong>",
            "El modelo tiene dudas",
            "<strong>Espiral barrada</strong> (40,0%)",
            "Imagen subida ngc1300.png, clasificada como Espiral cerrada sin barra",
            "Probabilidad de cada clase",
            "Versión del modelo",
            "cuyos brazos espirales están muy enrollados",
        ],
        absent=["Unbarred Tight Spiral", "Barred Spiral", "Confidence:", "The model is unsure", "Details"],
    )


def test_results_grid_in_spanish(spanish_client, user):
    first = PredictionFactory(class_index=2, class_name="Round Smooth", confidence=0.9)
    second = PredictionFactory(class_index=9, class_name="Edge-on with Bulge", confidence=0.8)
    spanish_client.force_login(user)

    html = page_html(spanish_client, f"{reverse('classifier:results')}?ids={first.pk},{second.pk},999999")

    assert_spanish(
        html,
        present=[
            "2 resultados",
            "Suave redonda",
            "De canto con bulbo",
            "No se muestra un resultado solicitado",
        ],
        absent=["Round Smooth", "Edge-on with Bulge", "2 results", "not shown"],
    )


def test_login_page_in_spanish(spanish_client):
    html = page_html(spanish_client, f"{reverse('login')}?next=/history/")

    assert_spanish(
        html,
        present=["<h1>Iniciar sesión</h1>", "Nombre de usuario", "Contraseña", "Inicie sesión para ver"],
        absent=["Username", "Password", "Please log in"],
    )


# --- switching language ------------------------------------------------------------------------


def test_every_page_offers_the_language_switcher(client):
    html = page_html(client, reverse("classifier:classes"))

    assert f'<form action="{reverse("set_language")}" method="post"' in html
    assert '<label for="language-select" class="visually-hidden">Language</label>' in html
    assert '<option value="es" lang="es">Español</option>' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_set_language_switches_to_spanish_and_back(client):
    classes_url = reverse("classifier:classes")

    response = client.post(reverse("set_language"), {"language": "es", "next": classes_url})

    assert response.status_code == 302
    assert response["Location"] == classes_url
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "es"
    html = page_html(client, classes_url)
    assert "Las 10 clases de Galaxy10 DECaLS" in html
    assert '<option value="es" lang="es" selected>Español</option>' in html

    client.post(reverse("set_language"), {"language": "en", "next": classes_url})

    html = page_html(client, classes_url)
    assert "The 10 Galaxy10 DECaLS classes" in html
    assert "Las 10 clases" not in html


def test_set_language_refuses_an_unknown_language(client):
    client.post(reverse("set_language"), {"language": "xx", "next": "/"})

    assert settings.LANGUAGE_COOKIE_NAME not in client.cookies
    assert '<html lang="en">' in page_html(client, reverse("classifier:upload"))


# --- refused uploads ---------------------------------------------------------------------------


def _noisy_jpeg(size: int = 128) -> bytes:
    rng = random.Random(7)
    image = Image.frombytes("RGB", (size, size), bytes(rng.randrange(256) for _ in range(size * size * 3)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


REFUSALS = [
    pytest.param(b"", "el archivo está vacío", "the file is empty", id="empty"),
    pytest.param(
        b"these are notes, not an image",
        "no es un formato de imagen reconocido",
        "not a recognised image format",
        id="not-an-image",
    ),
    pytest.param(
        make_image_bytes(fmt="PPM"),
        "no se aceptan imágenes PPM (se aceptan: JPEG, PNG, GIF, WEBP, TIFF, BMP, FITS)",
        "PPM images are not accepted (accepted: JPEG, PNG, GIF, WEBP, TIFF, BMP, FITS)",
        id="unaccepted-format",
    ),
    pytest.param(
        # Half a JPEG: the header reads, the pixels do not.
        _noisy_jpeg()[:2600],
        "no se ha podido decodificar la imagen: ",
        "the image could not be decoded: ",
        id="truncated",
    ),
]


@pytest.mark.parametrize(("content", "spanish", "english"), REFUSALS)
def test_a_refused_file_is_explained_in_the_readers_language(client, content, spanish, english):
    upload_url = reverse("classifier:upload")

    def post(**headers: str):
        bad = SimpleUploadedFile("bad.png", content, content_type="image/png")
        return client.post(upload_url, {"images": [bad]}, **headers)

    in_spanish = post(HTTP_ACCEPT_LANGUAGE="es")
    as_json = post(HTTP_ACCEPT_LANGUAGE="es", HTTP_ACCEPT="application/json")
    in_english = post()

    assert in_spanish.status_code == 400
    html = in_spanish.content.decode()
    assert f'<span class="file-name">bad.png</span>: <span class="file-error">{spanish}' in html
    assert "Un archivo no se ha podido clasificar, así que no se ha guardado nada." in html
    assert english not in html
    assert as_json.json()["errors"][0]["error"].startswith(spanish)
    assert english in in_english.content.decode()
    assert Prediction.objects.count() == 0


def test_size_and_count_limits_are_explained_in_spanish(spanish_client, settings):
    settings.MAX_UPLOAD_BYTES = 1000
    big = SimpleUploadedFile("big.jpg", _noisy_jpeg(), content_type="image/jpeg")

    too_large = spanish_client.post(reverse("classifier:upload"), {"images": [big]})

    assert too_large.status_code == 413
    # Counts follow the reader's locale (a non-breaking space groups Spanish thousands).
    assert "el archivo supera el límite de 1\N{NO-BREAK SPACE}000 bytes" in too_large.content.decode()

    settings.MAX_UPLOAD_BYTES = 10 * 1024 * 1024
    settings.MAX_FILES_PER_REQUEST = 1
    files = [SimpleUploadedFile(f"g{i}.png", make_image_bytes(), content_type="image/png") for i in range(2)]

    too_many = spanish_client.post(reverse("classifier:upload"), {"images": files})

    assert too_many.status_code == 400
    assert "se enviaron 2 archivos; se permiten como máximo 1" in too_many.content.decode()


def test_too_many_pixels_is_explained_in_spanish(spanish_client, settings):
    settings.MAX_IMAGE_PIXELS = 1000
    upload = SimpleUploadedFile("wide.png", make_image_bytes(size=(100, 20)), content_type="image/png")

    response = spanish_client.post(reverse("classifier:upload"), {"images": [upload]})

    assert response.status_code == 400
    expected = (
        "la imagen mide 100\N{MULTIPLICATION SIGN}20 píxeles, "
        "más que el límite de 1\N{NO-BREAK SPACE}000 píxeles"
    )
    assert expected in response.content.decode()
    # The API and the command line keep the English text and its separators.
    api = spanish_client.post(reverse("api:prediction-list"), {"image": upload.open()}, format="multipart")
    assert "more than the limit of 1,000 pixels" in api.content.decode()


@pytest.mark.parametrize(
    ("content", "spanish"),
    [
        (b"plain text", "no es un formato de imagen reconocido"),
        (_noisy_jpeg()[:2600], "no se ha podido decodificar la imagen: "),
    ],
    ids=["not-an-image", "truncated"],
)
def test_refusals_from_the_shared_preprocessing_are_in_the_catalog(content, spanish):
    # classifier.core.preprocessing cannot mark its messages (it is shared with training and does
    # not import Django), so upload_messages marks them; this fails if one is not there.
    from classifier.core.exceptions import FileRefusal
    from classifier.core.preprocessing import ImageDecodeError, PreprocessConfig, preprocess
    from classifier.predictions.upload_messages import PREPROCESSING_TEMPLATES, translate_refusal

    with pytest.raises(ImageDecodeError) as caught:
        preprocess(content, PreprocessConfig())
    assert caught.value.template in PREPROCESSING_TEMPLATES
    refusal = FileRefusal("x.jpg", caught.value.template, caught.value.params)
    assert refusal.message == str(caught.value)
    with translation.override("es"):
        assert translate_refusal(refusal).startswith(spanish)


def test_an_image_of_no_known_format_is_refused_in_spanish_too():
    from classifier.core.decode import ACCEPTED_FORMATS
    from classifier.core.exceptions import FileRefusal
    from classifier.predictions.upload_messages import translate_refusal

    refusal = FileRefusal(
        "x",
        "this images are not accepted (accepted: %(accepted)s)",
        {"accepted": ", ".join(ACCEPTED_FORMATS)},
    )
    assert refusal.message.startswith("this images are not accepted (accepted: JPEG")
    with translation.override("es"):
        assert translate_refusal(refusal) == (
            "no se aceptan imágenes de este formato (se aceptan: JPEG, PNG, GIF, WEBP, TIFF, BMP, FITS)"
        )
