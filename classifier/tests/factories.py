from __future__ import annotations

import hashlib
import io
import random

import factory
from django.core.files.base import ContentFile
from factory.django import DjangoModelFactory
from PIL import Image

from classifier.core.galaxy10 import CLASS_NAMES
from classifier.models import Prediction


def _png(seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.new("RGB", (32, 32), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _probabilities(seed: int) -> list[float]:
    rng = random.Random(seed)
    weights = [rng.random() ** 3 for _ in CLASS_NAMES]
    total = sum(weights)
    return [w / total for w in weights]


class PredictionFactory(DjangoModelFactory):
    """A stored prediction whose image, hash and probabilities are consistent."""

    class Meta:
        model = Prediction

    class Params:
        seed = factory.Sequence(lambda n: n)
        content = factory.LazyAttribute(lambda o: _png(o.seed))

    original_filename = factory.Sequence(lambda n: f"galaxy_{n:04d}.png")
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.content).hexdigest())
    image = factory.LazyAttribute(lambda o: ContentFile(o.content, name="image.png"))
    width = 32
    height = 32
    probabilities = factory.LazyAttribute(lambda o: _probabilities(o.seed))
    class_index = factory.LazyAttribute(
        lambda o: max(range(len(o.probabilities)), key=o.probabilities.__getitem__)
    )
    class_name = factory.LazyAttribute(lambda o: CLASS_NAMES[o.class_index])
    confidence = factory.LazyAttribute(lambda o: max(o.probabilities))
    model_version = "test-model-1"
    model_sha256 = "0" * 64
    inference_ms = 3.5
    source = Prediction.Source.WEB
    client_ip = "127.0.0.1"
