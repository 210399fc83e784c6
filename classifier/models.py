"""The audit log: one immutable record per prediction, in the spirit of admin's LogEntry."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from classifier.core.galaxy10 import CLASS_NAMES, NUM_CLASSES
from classifier.core.positions import viewer_url
from classifier.templatetags.classifier_tags import percent
from classifier.templatetags.galaxy10_i18n import galaxy_class_name

# Shown on the result page (translated there) and sent in the API's "warnings" (in English).
OUT_OF_DISTRIBUTION_WARNING = gettext_noop(
    "This image does not look like the galaxy cutouts the model was trained on; "
    "its class is probably meaningless."
)
SINGLE_BAND_WARNING = gettext_noop(
    "This FITS file has a single band, so it was classified in grey; the model was trained on "
    "colour (g, r, z) images, so treat this class with care."
)
BANDS_ASSUMED_WARNING = gettext_noop(
    "This FITS cube does not name its bands (no BAND0, BAND1, BAND2 keywords), so its three "
    "planes were read as g, r and z; if they are other bands, this class is meaningless."
)

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
        JOB = "job", _("Classification job")

    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False, db_index=True)
    image = models.ImageField(
        _("image"), upload_to=prediction_image_path, max_length=255, width_field=None, height_field=None
    )
    original_filename = models.CharField(_("original file name"), max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64, db_index=True)
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    class_index = models.PositiveSmallIntegerField(_("class"), choices=CLASS_CHOICES, db_index=True)
    class_name = models.CharField(_("class name"), max_length=64)
    confidence = models.FloatField(_("confidence"))
    probabilities = models.JSONField(
        _("probabilities"), help_text=_("Probabilities of the 10 classes, in class-index order.")
    )
    model_version = models.CharField(_("model version"), max_length=128, db_index=True)
    model_sha256 = models.CharField(_("model SHA-256"), max_length=64)
    inference_ms = models.FloatField(_("inference time (ms)"))
    # Null: the model that made the prediction had no fitted gate (docs/ood.md).
    in_distribution = models.BooleanField(
        _("looks like a galaxy cutout"),
        null=True,
        blank=True,
        db_index=True,
        help_text=_("Whether the image looked like the galaxy cutouts the model was trained on."),
    )
    single_band = models.BooleanField(
        _("classified in grey"),
        default=False,
        help_text=_("A single-band FITS image, classified in grey; the model was trained on colour."),
    )
    bands_assumed = models.BooleanField(
        _("bands assumed"),
        default=False,
        help_text=_("A FITS cube whose header names no bands: its planes were read as g, r, z."),
    )
    # Null for predictions made before the model answered like Galaxy Zoo; every reader copes.
    galaxy_zoo = models.JSONField(
        _("Galaxy Zoo answers"),
        null=True,
        blank=True,
        help_text=_(
            "The four Galaxy10 group probabilities and, when the model predicts them, the "
            "Galaxy Zoo vote fractions of each question's answers."
        ),
    )
    ood_score = models.FloatField(
        _("out-of-distribution score"),
        null=True,
        blank=True,
        help_text=_(
            "Squared Mahalanobis distance from the training galaxies; above the threshold is flagged."
        ),
    )
    source = models.CharField(_("source"), max_length=3, choices=Source.choices, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="galaxy_predictions",
    )
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    # A job's predictions go with it; the one-to-one member link makes recording a member
    # twice (a chunk delivered again) an IntegrityError instead of a duplicate row.
    job = models.ForeignKey(
        "Job", on_delete=models.CASCADE, null=True, blank=True, related_name="predictions"
    )
    job_member = models.OneToOneField(
        "JobMember", on_delete=models.CASCADE, null=True, blank=True, related_name="prediction"
    )
    # Where on the sky the image is: the position it was fetched at, or the centre of a FITS
    # file's celestial WCS (docs/positions.md). cutout_url is set only for fetched cutouts.
    ra = models.FloatField(_("right ascension (deg)"), null=True, blank=True)
    dec = models.FloatField(_("declination (deg)"), null=True, blank=True)
    cutout_url = models.URLField(_("cutout URL"), max_length=1000, blank=True, default="")

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
            models.CheckConstraint(
                condition=(models.Q(ra__isnull=True) & models.Q(dec__isnull=True))
                | (
                    models.Q(ra__gte=0)
                    & models.Q(ra__lt=360)
                    & models.Q(dec__gte=-90)
                    & models.Q(dec__lte=90)
                ),
                name="prediction_position_on_sky",
            ),
        ]

    def __str__(self) -> str:
        # Shown by the admin (titles, breadcrumbs, delete confirmations) in the reader's language.
        name = galaxy_class_name(self.class_name)
        return f"#{self.pk} {self.original_filename}: {name} ({percent(self.confidence)})"

    def get_absolute_url(self) -> str:
        return reverse("classifier:prediction-detail", args=[self.pk])

    @property
    def is_fits(self) -> bool:
        return self.image.name.endswith(".fits")

    @property
    def display_image_url(self) -> str:
        """What an <img> shows: the stored image, or for a FITS file (which browsers cannot
        draw) its PNG preview, rendered on request."""
        if self.is_fits:
            return reverse("classifier:prediction-preview", args=[self.pk])
        return self.image.url

    @property
    def viewer_url(self) -> str:
        """The Legacy Surveys viewer at this prediction's position, or "" without one."""
        if self.ra is None or self.dec is None:
            return ""
        return viewer_url(self.ra, self.dec)

    @property
    def warnings(self) -> list[str]:
        """What a reader of this prediction should be told before trusting its class, in English."""
        warnings = [OUT_OF_DISTRIBUTION_WARNING] if self.in_distribution is False else []
        if self.single_band:
            warnings.append(SINGLE_BAND_WARNING)
        if self.bands_assumed:
            warnings.append(BANDS_ASSUMED_WARNING)
        return warnings

    @property
    def probabilities_by_name(self) -> dict[str, float]:
        return dict(zip(CLASS_NAMES, self.probabilities, strict=True))

    @property
    def top2(self) -> list[tuple[int, str, float]]:
        ranked = sorted(enumerate(self.probabilities), key=lambda item: item[1], reverse=True)
        return [(index, CLASS_NAMES[index], probability) for index, probability in ranked[:2]]


class Job(models.Model):
    """A catalogue classified on Celery workers, in chunks of members."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False, db_index=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="galaxy_jobs",
    )
    name = models.CharField(
        _("name"), max_length=255, help_text=_("The archive or the first file submitted.")
    )
    status = models.CharField(
        _("status"), max_length=9, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    total = models.PositiveIntegerField(_("total"), default=0)
    done = models.PositiveIntegerField(_("classified"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    chunk_size = models.PositiveIntegerField(_("chunk size"), default=64)
    model_version = models.CharField(_("model version"), max_length=128, blank=True)
    catalogue_columns = models.JSONField(_("catalogue columns"), default=list, blank=True)
    # A catalogue of positions (no files): each member's cutout is fetched by the worker.
    by_position = models.BooleanField(_("by position"), default=False)
    error = models.TextField(_("reason"), blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("job")
        verbose_name_plural = _("jobs")

    def __str__(self) -> str:
        return f"job {self.pk} {self.name} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("classifier:job-detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def finished_members(self) -> int:
        return self.done + self.failed


class JobMember(models.Model):
    """One file of a job: where its bytes are staged, and how it ended."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        CLASSIFIED = "classified", _("classified")
        FAILED = "failed", _("failed")

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="members")
    index = models.PositiveIntegerField()
    path = models.CharField(max_length=1024, help_text=_("The path inside the archive, folders kept."))
    staged_name = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.CharField(_("reason"), max_length=500, blank=True)
    catalogue = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["job", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="jobmember_unique_index"),
            models.UniqueConstraint(fields=["job", "path"], name="jobmember_unique_path"),
        ]
        indexes = [models.Index(fields=["job", "status"], name="jobmember_job_status")]

    def __str__(self) -> str:
        return f"{self.path} ({self.status})"
