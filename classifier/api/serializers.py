"""Serializers of the REST API; module-level with unique names for the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from classifier.core.galaxy10 import CLASS_NAMES, round_probability
from classifier.core.galaxy_zoo import GROUP_KEYS, MAIN_QUESTIONS, QUESTIONS, in_canonical_order
from classifier.models import CLASS_CHOICES, Prediction


class ProbabilityField(serializers.FloatField):
    """A probability to four decimals, as every export writes it (the int8 model's raw steps
    look more precise than they are)."""

    def to_representation(self, value: float) -> float:
        return round_probability(value)


def _fraction() -> dict[str, Any]:
    # A new dict per property, so that nothing editing one property's schema edits them all.
    return {"type": "number", "minimum": 0, "maximum": 1}


# A prediction's galaxy_zoo (classifier.core.galaxy_zoo.galaxy_zoo_answer), described key by key.
GALAXY_ZOO_SCHEMA = {
    "type": "object",
    "nullable": True,
    "description": (
        "The answer in Galaxy Zoo's terms: `groups`, the summed probability of each Galaxy10 group's "
        "classes; `questions`, the predicted fraction of Galaxy Zoo volunteers giving each answer of "
        "the main questions of its decision tree (null when the model predicts no vote fractions). "
        "Null for predictions made before the model gave it."
    ),
    "properties": {
        "groups": {
            "type": "object",
            "description": "Probability of each Galaxy10 group (the sum of its classes' probabilities).",
            "properties": {key: _fraction() for key in GROUP_KEYS},
            "required": list(GROUP_KEYS),
        },
        "questions": {
            "type": "object",
            "nullable": True,
            "description": "Predicted vote fraction of each answer, by question (each sums to 1).",
            "properties": {
                question: {
                    "type": "object",
                    "properties": {answer: _fraction() for answer in QUESTIONS[question]},
                }
                for question in MAIN_QUESTIONS
            },
        },
    },
    "required": ["groups", "questions"],
}


@extend_schema_field(GALAXY_ZOO_SCHEMA)
class GalaxyZooField(serializers.JSONField):
    """A prediction's galaxy_zoo as stored: the core rounded it as every probability is given."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, allow_null=True, **kwargs)

    def to_representation(self, value: Any) -> Any:
        return super().to_representation(in_canonical_order(value))


RA_HELP = "Right ascension in degrees (ICRS), 0 <= ra < 360; with `dec`, instead of images."
DEC_HELP = "Declination in degrees (ICRS), -90 <= dec <= 90; with `ra`, instead of images."


class PredictionCreateInputSerializer(serializers.Serializer):
    image = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),
        allow_empty=False,
        required=False,
        help_text=(
            "One or more image files (JPEG, PNG, GIF, WebP, TIFF, BMP, or a FITS cutout: docs/fits.md), "
            "each in an `image` field; or no image, and `ra` and `dec`."
        ),
    )
    ra = serializers.FloatField(required=False, min_value=0, max_value=360, help_text=RA_HELP)
    dec = serializers.FloatField(required=False, min_value=-90, max_value=90, help_text=DEC_HELP)


class PredictionPositionInputSerializer(serializers.Serializer):
    """A JSON body: classify the survey's cutout at this position (docs/positions.md)."""

    ra = serializers.FloatField(min_value=0, max_value=360, help_text=RA_HELP)
    dec = serializers.FloatField(min_value=-90, max_value=90, help_text=DEC_HELP)


class PredictionCreateFormSerializer(serializers.Serializer):
    """The browsable API's upload form: one file input named `image` (the API itself takes
    several). Only that form uses it; requests are read from request.FILES by the view."""

    image = serializers.FileField(allow_empty_file=True, help_text=_("An image file, or a FITS cutout."))


class PredictionOutputSerializer(serializers.Serializer):
    # Declared rather than a ModelSerializer: DRF rebuilds a ModelSerializer's fields from the
    # model on every request, a measurable share of a one-image POST's CPU
    # (docs/benchmarks.md, "The CPU per request"). The read-only fields keep the schema of the
    # model fields.
    id = serializers.IntegerField(read_only=True)
    filename = serializers.CharField(source="original_filename")
    prediction = serializers.CharField(source="class_name")
    class_index = serializers.ChoiceField(choices=CLASS_CHOICES, label="Class")
    confidence = ProbabilityField()
    probabilities = serializers.SerializerMethodField()
    model_version = serializers.CharField(max_length=128)
    inference_ms = serializers.FloatField(label="Inference time (ms)")
    in_distribution = serializers.BooleanField(
        allow_null=True,
        help_text=(
            "Whether the image looks like the galaxy cutouts the model was trained on (docs/ood.md); "
            "false means its class is probably meaningless; null when the model has no fitted gate."
        ),
    )
    ood_score = serializers.FloatField(
        allow_null=True,
        help_text=(
            "Squared Mahalanobis distance from the training galaxies; above the model's threshold is flagged."
        ),
    )
    single_band = serializers.BooleanField(
        read_only=True,
        help_text=(
            "Classified in grey from a single-band FITS image (docs/fits.md); the model was trained "
            "on colour, so its class is less trustworthy."
        ),
    )
    warnings = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Reasons not to trust this prediction's class, in English (empty when there are none).",
    )
    created_at = serializers.DateTimeField(read_only=True)
    image_url = serializers.SerializerMethodField()
    ra = serializers.FloatField(
        allow_null=True, read_only=True, help_text="Right ascension (deg) of the image's position, if known."
    )
    dec = serializers.FloatField(
        allow_null=True, read_only=True, help_text="Declination (deg) of the image's position, if known."
    )
    cutout_url = serializers.CharField(
        read_only=True, help_text="The survey cutout the image was fetched from; empty for uploads."
    )
    viewer_url = serializers.CharField(
        read_only=True, help_text="The Legacy Surveys viewer at the position; empty without one."
    )
    galaxy_zoo = GalaxyZooField()

    @extend_schema_field(
        {
            "type": "object",
            "description": "Probability of each class, by class name.",
            "properties": {name: {"type": "number"} for name in CLASS_NAMES},
        }
    )
    def get_probabilities(self, obj: Prediction) -> dict[str, float]:
        return {name: round_probability(p) for name, p in obj.probabilities_by_name.items()}

    @extend_schema_field(OpenApiTypes.URI)
    def get_image_url(self, obj: Prediction) -> str:
        request = self.context.get("request")
        url = obj.image.url
        return request.build_absolute_uri(url) if request is not None else url


class PredictionCreateOutputSerializer(serializers.Serializer):
    predictions = PredictionOutputSerializer(many=True)


class PredictionDetailOutputSerializer(PredictionOutputSerializer):
    sha256 = serializers.CharField(max_length=64, label="SHA-256")
    width = serializers.IntegerField(min_value=0)
    height = serializers.IntegerField(min_value=0)
    model_sha256 = serializers.CharField(max_length=64, label="Model SHA-256")
    source = serializers.ChoiceField(choices=Prediction.Source.choices)
    user = serializers.CharField(source="user.username", read_only=True, allow_null=True)


class PredictionListOutputSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = PredictionDetailOutputSerializer(many=True)


class PredictionBulkDeleteInputSerializer(serializers.Serializer):
    class_index = serializers.ChoiceField(choices=CLASS_CHOICES, required=False)
    source = serializers.ChoiceField(choices=Prediction.Source.choices, required=False)
    created_after = serializers.DateField(required=False)
    created_before = serializers.DateField(required=False)
    filename = serializers.CharField(required=False, allow_blank=False)
    all = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Must be true to delete every prediction when no filter is given.",
    )

    def validate(self, attrs: dict) -> dict:
        filters = {key: value for key, value in attrs.items() if key != "all"}
        if not filters and not attrs.get("all"):
            raise serializers.ValidationError(
                "give at least one filter, or all=true to delete every prediction"
            )
        return attrs


class PredictionBulkDeleteOutputSerializer(serializers.Serializer):
    deleted = serializers.IntegerField()


class ErrorFileSerializer(serializers.Serializer):
    filename = serializers.CharField()
    error = serializers.CharField()


class ErrorOutputSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = ErrorFileSerializer(many=True, required=False)
    reason = serializers.CharField(required=False)


class ModelClassOutputSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()


class ModelInfoOutputSerializer(serializers.Serializer):
    model_version = serializers.CharField()
    sha256 = serializers.CharField()
    backend = serializers.CharField()
    created_at = serializers.CharField(allow_null=True)
    classes = ModelClassOutputSerializer(many=True)
    preprocessing = serializers.DictField()
    output = serializers.DictField()
    metrics = serializers.DictField()
    provenance = serializers.DictField()
    training = serializers.DictField()


class HealthCheckOutputSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    detail = serializers.CharField()


class HealthOutputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "unavailable"])
    reason = serializers.CharField(required=False)
    checks = serializers.DictField(child=HealthCheckOutputSerializer(), required=False)


class ApiRootOutputSerializer(serializers.Serializer):
    predictions = serializers.URLField()
    predictions_bulk_delete = serializers.URLField()
    model = serializers.URLField()
    health_live = serializers.URLField()
    health_ready = serializers.URLField()
    schema = serializers.URLField()
    docs = serializers.URLField()
