"""A read-only admin for the audit log: view, delete (files included) and export."""

from __future__ import annotations

from datetime import datetime

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from classifier.core.galaxy10 import CLASS_NAMES
from classifier.jobs import services as job_services
from classifier.models import Job, Prediction
from classifier.predictions import services
from classifier.predictions.exports import predictions_csv_response
from classifier.templatetags.classifier_tags import percent
from classifier.templatetags.galaxy10_i18n import galaxy_class_name, galaxy_group
from classifier.templatetags.galaxy_zoo import galaxy_zoo_answer_rows, galaxy_zoo_groups


def created_column(value: datetime) -> str:
    """The site's timestamp ("2026-12-05 04:38 UTC"), which may wrap between the date and the
    time only: the locale's long form ("5 de diciembre de 2026 a las 4:38") was clipped at
    the changelist's right edge at 1280 px."""
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}"><span class="nowrap">{}</span> <span class="nowrap">{}</span></time>',
        local.isoformat(),
        formats.date_format(local, "Y-m-d"),
        formats.date_format(local, "H:i T"),
    )


class GalaxyClassFilter(admin.SimpleListFilter):
    """The class filter with the names in the reader's language; the stored choices stay the
    English names that the model's manifest uses."""

    title = _("class")
    # The name the built-in choice filter used, so that saved admin links keep working.
    parameter_name = "class_index__exact"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(str(index), galaxy_class_name(name)) for index, name in enumerate(CLASS_NAMES)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> QuerySet[Prediction]:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(class_index=int(value)) if value.isdigit() else queryset.none()


# The project's name rather than Django's "Django administration", in the reader's language.
admin.site.site_header = _("Galaxy Classifier administration")
admin.site.site_title = _("Galaxy Classifier")
# The sidebar repeats the index's short list of models and took a quarter of the width, which
# the changelist's columns (long model versions, dates) need at desktop sizes.
admin.site.enable_nav_sidebar = False


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "thumbnail",
        "original_filename",
        "galaxy_class",
        "confidence_percent",
        "source",
        "model_version",
        "user",
        "created",
    ]
    list_display_links = ["id", "thumbnail", "original_filename"]
    # The out-of-distribution verdict is a filter and a detail field, not a column: one more
    # column would widen the changelist past a 1280 px screen.
    list_filter = [GalaxyClassFilter, "in_distribution", "source", "model_version", "created_at"]
    search_fields = ["original_filename", "sha256"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    list_per_page = 50
    actions = ["export_csv"]
    fields = [
        "preview",
        "created_at",
        "original_filename",
        "image",
        "sha256",
        "width",
        "height",
        "galaxy_class",
        "confidence_percent",
        "probability_list",
        "galaxy_zoo_table",
        "in_distribution",
        "ood_score",
        "model_version",
        "model_sha256",
        "inference_ms",
        "source",
        "user",
        "client_ip",
    ]
    readonly_fields = fields

    class Media:
        # A stylesheet, not style attributes: the Content-Security-Policy allows no inline style.
        css = {"all": ["css/admin.css"]}

    @admin.display(description=_("image"))
    def thumbnail(self, obj: Prediction) -> str:
        return format_html(
            '<img src="{}" alt="{}" width="64" height="64" class="prediction-thumbnail" loading="lazy">',
            obj.display_image_url,
            obj.original_filename,
        )

    @admin.display(description=_("preview"))
    def preview(self, obj: Prediction) -> str:
        return format_html(
            '<img src="{}" alt="{}" class="prediction-preview">',
            obj.display_image_url,
            obj.original_filename,
        )

    @admin.display(description=_("class"), ordering="class_index")
    def galaxy_class(self, obj: Prediction) -> str:
        return galaxy_class_name(obj.class_name)

    @admin.display(description=_("Probabilities"))
    def probability_list(self, obj: Prediction) -> str:
        # Three decimals, by class: the stored floats print with 17 digits.
        return format_html(
            '<ol class="probability-list" start="0">{}</ol>',
            format_html_join(
                "",
                "<li>{}: {}</li>",
                (
                    (galaxy_class_name(name), f"{p:.3f}")
                    for name, p in zip(CLASS_NAMES, obj.probabilities, strict=True)
                ),
            ),
        )

    @admin.display(description=Prediction._meta.get_field("galaxy_zoo").verbose_name)
    def galaxy_zoo_table(self, obj: Prediction) -> str:
        # The groups, then every answer's predicted vote fraction, three decimals like the classes.
        groups = [
            (capfirst(galaxy_group(row["name"])), "", row["probability"])
            for row in galaxy_zoo_groups(obj.galaxy_zoo)
        ]
        rows = [*groups, *galaxy_zoo_answer_rows(obj.galaxy_zoo)]
        if not rows:
            return "-"
        return format_html(
            '<table class="galaxy-zoo-table"><tbody>{}</tbody></table>',
            format_html_join(
                "", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", ((a, b, f"{p:.3f}") for a, b, p in rows)
            ),
        )

    @admin.display(description=_("confidence"), ordering="confidence")
    def confidence_percent(self, obj: Prediction) -> str:
        return percent(obj.confidence)

    @admin.display(description=Prediction._meta.get_field("created_at").verbose_name, ordering="created_at")
    def created(self, obj: Prediction) -> str:
        return created_column(obj.created_at)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Prediction | None = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Prediction) -> None:
        services.prediction_delete(prediction=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> None:
        services.prediction_delete_many(queryset=queryset)

    @admin.action(description=_("Export selected predictions as CSV"), permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> HttpResponse:
        response, count = predictions_csv_response(queryset.order_by("-created_at", "-id"), "predictions.csv")
        message = ngettext("Exported %(count)d prediction.", "Exported %(count)d predictions.", count)
        self.message_user(request, message % {"count": count}, messages.SUCCESS)
        return response


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Classification jobs, read-only; deleting one removes its predictions and their images."""

    list_display = ["id", "name", "status", "progress", "failed", "user", "model_version", "created"]
    list_filter = ["status", "created_at"]
    search_fields = ["name", "user__username"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    fields = [
        "name",
        "status",
        "user",
        "total",
        "done",
        "failed",
        "chunk_size",
        "model_version",
        "catalogue_columns",
        "error",
        "created_at",
        "started_at",
        "finished_at",
        "page",
    ]
    readonly_fields = fields

    class Media:
        css = {"all": ["css/admin.css"]}

    @admin.display(description=Job._meta.get_field("created_at").verbose_name, ordering="created_at")
    def created(self, obj: Job) -> str:
        return created_column(obj.created_at)

    @admin.display(description=_("progress"))
    def progress(self, obj: Job) -> str:
        return f"{obj.finished_members}/{obj.total}"

    @admin.display(description=_("page"))
    def page(self, obj: Job) -> str:
        return format_html('<a href="{}">{}</a>', obj.get_absolute_url(), obj.get_absolute_url())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Job) -> None:
        job_services.job_delete(job=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset:
            job_services.job_delete(job=job)
