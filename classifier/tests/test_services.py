"""classifier.predictions.services: the one write path for predictions."""

import io
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from PIL import Image, ImageOps

from classifier.core.exceptions import ImageValidationError
from classifier.models import Prediction
from classifier.predictions import filenames, services
from classifier.predictions.inference import get_classifier
from classifier.tests.factories import PredictionFactory
from classifier.tests.utils import make_image_bytes, media_files

pytestmark = pytest.mark.django_db


def create(content, name="image.png", **kwargs):
    kwargs.setdefault("source", Prediction.Source.WEB)
    return services.prediction_create_batch(uploads=[SimpleUploadedFile(name, content)], **kwargs)


def gradient(size=(120, 80)):
    x = np.linspace(0, 255, size[0], dtype=np.uint8)
    y = np.linspace(0, 255, size[1], dtype=np.uint8)
    rgb = np.stack(np.broadcast_arrays(x[None, :], y[:, None], (x[None, :] // 2 + y[:, None] // 2)), axis=-1)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def saved(image, fmt, **kwargs):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_exif_rotation_is_applied():
    upright = gradient((80, 120))
    # Stored sideways with orientation 6 ("rotate 90 clockwise to view").
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = saved(sideways, "JPEG", exif=exif, quality=95)
    [rotated] = create(stored, "rotated.jpg")
    # The reference: the same decoded pixels turned upright by Pillow, stored losslessly, so
    # both uploads give the model the same image when the rotation is applied.
    turned = ImageOps.exif_transpose(Image.open(io.BytesIO(stored)))
    [reference] = create(saved(turned, "PNG"), "upright.png")
    assert (rotated.width, rotated.height) == (80, 120)
    assert rotated.class_index == reference.class_index
    np.testing.assert_allclose(rotated.probabilities, reference.probabilities, atol=0.02)


@pytest.mark.parametrize(
    ("label", "make"),
    [
        ("grayscale", lambda: saved(gradient().convert("L"), "PNG")),
        ("rgba", lambda: saved(gradient().convert("RGBA"), "PNG")),
        ("palette-transparent", lambda: saved(gradient().convert("P"), "PNG", transparency=0)),
        (
            "16-bit",
            lambda: saved(
                Image.fromarray((np.arange(120 * 80).reshape(80, 120) * 6).astype(np.uint16)), "PNG"
            ),
        ),
        ("cmyk", lambda: saved(gradient().convert("CMYK"), "JPEG")),
        ("tiff", lambda: saved(gradient(), "TIFF")),
        ("webp", lambda: saved(gradient(), "WEBP")),
        (
            "animated-gif",
            lambda: saved(gradient(), "GIF", save_all=True, append_images=[gradient().rotate(90)]),
        ),
    ],
)
def test_odd_images_are_accepted(label, make, media_root):
    [prediction] = create(make(), f"{label}.img")
    assert (prediction.width, prediction.height) == (120, 80)
    assert sum(prediction.probabilities) == pytest.approx(1.0)
    assert (media_root / prediction.image.name).is_file()


def test_16_bit_png_is_scaled_not_clipped():
    deep = Image.fromarray(np.full((80, 120), 65535, dtype=np.uint16))
    white = Image.new("RGB", (120, 80), (255, 255, 255))
    [from_deep] = create(saved(deep, "PNG"), "deep.png")
    [from_white] = create(saved(white, "PNG"), "white.png")
    np.testing.assert_allclose(from_deep.probabilities, from_white.probabilities, atol=1e-6)


def test_huge_exif_is_accepted():
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription
    [prediction] = create(saved(gradient(), "JPEG", exif=exif), "exif.jpg")
    assert prediction.width == 120


def test_stored_extension_follows_the_content_not_the_name():
    [prediction] = create(make_image_bytes(fmt="PNG"), "looks-like.html")
    assert prediction.image.name.endswith(".png")
    assert prediction.original_filename == "looks-like.html"


def test_validation_errors_list_each_bad_file_and_save_nothing(media_root):
    uploads = [
        SimpleUploadedFile("ok.png", make_image_bytes()),
        SimpleUploadedFile("bad1.jpg", b"nope"),
        SimpleUploadedFile("bad2.png", b""),
    ]
    with pytest.raises(ImageValidationError) as caught:
        services.prediction_create_batch(uploads=uploads, source="web")
    assert [e["filename"] for e in caught.value.errors] == ["bad1.jpg", "bad2.png"]
    assert not caught.value.too_large
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []


def test_unknown_source_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown prediction source"):
        create(make_image_bytes(), source="fax")


def test_validated_uploads_are_classified_and_recorded(media_root):
    uploads = [
        SimpleUploadedFile("red.png", make_image_bytes(color=(220, 30, 30))),
        SimpleUploadedFile("blue.png", make_image_bytes(color=(30, 30, 220))),
    ]
    accepted = services.validate_uploads(uploads)
    assert [upload.filename for upload in accepted] == ["red.png", "blue.png"]
    expected = get_classifier().classify_prepared([upload.prepared for upload in accepted])

    predictions = services.prediction_create_validated(accepted=accepted, source="cli")

    assert [p.original_filename for p in predictions] == ["red.png", "blue.png"]
    for prediction, result in zip(predictions, expected, strict=True):
        prediction.refresh_from_db()
        assert prediction.class_index == result.class_index
        assert prediction.probabilities == pytest.approx(list(result.probabilities))
    assert len(media_files(media_root)) == 2


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("galaxy.png", "galaxy.png"),
        ("/abs/path/to/galaxy.png", "galaxy.png"),
        ("..\\..\\windows\\galaxy.png", "galaxy.png"),
        ("..", "upload"),
        ("", "upload"),
        (None, "upload"),
        ("tab\there\r\n.png", "tabhere.png"),
        ("bidi\u202egnp.exe", "bidignp.exe"),
        ("x" * 300, "x" * 255),
        ("y" * 300 + ".jpeg", "y" * 250 + ".jpeg"),
    ],
)
def test_sanitise_filename(raw, clean):
    assert filenames.sanitise_filename(raw) == clean


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_each_get_their_own_result(media_root):
    images = [make_image_bytes(size=(100 + i, 90), color=(20 * i, 255 - 20 * i, 7 * i)) for i in range(8)]
    classifier = get_classifier()
    expected = [classifier.classify(image) for image in images]
    barrier = threading.Barrier(len(images))

    def classify(index):
        barrier.wait()
        try:
            [prediction] = create(images[index], f"img{index}.png", source="api")
            return prediction.pk
        finally:
            connection.close()

    with ThreadPoolExecutor(len(images)) as pool:
        pks = list(pool.map(classify, range(len(images))))

    assert Prediction.objects.count() == len(images)
    for index, pk in enumerate(pks):
        record = Prediction.objects.get(pk=pk)
        assert record.original_filename == f"img{index}.png"
        assert record.class_index == expected[index].class_index
        np.testing.assert_allclose(record.probabilities, expected[index].probabilities, atol=1e-6)
    assert len(media_files(media_root)) == len(images)


def test_delete_many_removes_only_unshared_files(media_root, django_capture_on_commit_callbacks):
    shared_a = PredictionFactory(seed=1)
    shared_b = PredictionFactory(seed=1, image=shared_a.image.name)
    alone = PredictionFactory(seed=2)
    with django_capture_on_commit_callbacks(execute=True):
        deleted = services.prediction_delete_many(
            queryset=Prediction.objects.filter(pk__in=[shared_a.pk, alone.pk])
        )
    assert deleted == 2
    assert media_files(media_root) == [media_root / shared_b.image.name]


def test_reset_deletes_everything_and_restarts_ids(media_root, django_capture_on_commit_callbacks):
    PredictionFactory.create_batch(3)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.predictions_reset() == 3
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []
    assert PredictionFactory().pk == 1
