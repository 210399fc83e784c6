"""The audit log: one immutable record per prediction, in the spirit of admin's LogEntry."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from classifier.galaxy10 import CLASS_NAMES, NUM_CLASSES

CLASS_CHOICES = [(index, name) for index, name in enumerate(CLASS_NAMES)]


def prediction_image_path(instance: Prediction, filename: str) -> str:
    """Images are stored by content hash, so identical uploads share one file."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"predictions/{instance.sha256[:2]}/{instance.sha256}.{extension}"


class Prediction(models.Model):
    class Source(models.TextChoices):
        WEB = "web", _("Web page")
        API = "api", _("REST API")
        CLI = "cli", _("Command line")

    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False, db_index=True)
    image = models.ImageField(
        upload_to=prediction_image_path, max_length=255, width_field=None, height_field=None
    )
    original_filename = models.CharField(max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64, db_index=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    class_index = models.PositiveSmallIntegerField(_("class"), choices=CLASS_CHOICES, db_index=True)
    class_name = models.CharField(max_length=64)
    confidence = models.FloatField()
    probabilities = models.JSONField(help_text=_("Probabilities of the 10 classes, in class-index order."))
    model_version = models.CharField(max_length=128, db_index=True)
    model_sha256 = models.CharField(_("model SHA-256"), max_length=64)
    inference_ms = models.FloatField(_("inference time (ms)"))
    source = models.CharField(max_length=3, choices=Source.choices, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="galaxy_predictions",
    )
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("prediction")
        verbose_name_plural = _("predictions")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(class_index__lt=NUM_CLASSES), name="prediction_class_index_in_range"
            ),
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0) & models.Q(confidence__lte=1),
                name="prediction_confidence_is_probability",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.original_filename}: {self.class_name} ({self.confidence:.1%})"

    def get_absolute_url(self) -> str:
        return reverse("classifier:prediction-detail", args=[self.pk])

    @property
    def probabilities_by_name(self) -> dict[str, float]:
        return dict(zip(CLASS_NAMES, self.probabilities, strict=True))

    @property
    def top2(self) -> list[tuple[int, str, float]]:
        ranked = sorted(enumerate(self.probabilities), key=lambda item: item[1], reverse=True)
        return [(index, CLASS_NAMES[index], probability) for index, probability in ranked[:2]]
