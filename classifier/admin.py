"""A read-only admin for the audit log: view, delete (files included) and export."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html

from classifier import services
from classifier.exports import predictions_csv_response
from classifier.jobs import services as job_services
from classifier.models import Job, Prediction


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "thumbnail",
        "original_filename",
        "class_name",
        "confidence_percent",
        "in_distribution",
        "source",
        "model_version",
        "user",
        "created_at",
    ]
    list_display_links = ["id", "thumbnail", "original_filename"]
    list_filter = ["class_index", "in_distribution", "source", "model_version", "created_at"]
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
        "class_index",
        "class_name",
        "confidence",
        "probabilities",
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

    @admin.display(description="Image")
    def thumbnail(self, obj: Prediction) -> str:
        return format_html(
            '<img src="{}" alt="{}" width="64" height="64" class="prediction-thumbnail" loading="lazy">',
            obj.display_image_url,
            obj.original_filename,
        )

    @admin.display(description="Preview")
    def preview(self, obj: Prediction) -> str:
        return format_html(
            '<img src="{}" alt="{}" class="prediction-preview">',
            obj.display_image_url,
            obj.original_filename,
        )

    @admin.display(description="Confidence", ordering="confidence")
    def confidence_percent(self, obj: Prediction) -> str:
        return f"{obj.confidence:.1%}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Prediction | None = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Prediction) -> None:
        services.prediction_delete(prediction=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> None:
        services.prediction_delete_many(queryset=queryset)

    @admin.action(description="Export selected predictions as CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> HttpResponse:
        response, count = predictions_csv_response(queryset.order_by("-created_at", "-id"), "predictions.csv")
        self.message_user(request, f"Exported {count} predictions.", messages.SUCCESS)
        return response


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Classification jobs, read-only; deleting one removes its predictions and their images."""

    list_display = ["id", "name", "status", "progress", "failed", "user", "model_version", "created_at"]
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

    @admin.display(description="Progress")
    def progress(self, obj: Job) -> str:
        return f"{obj.finished_members}/{obj.total}"

    @admin.display(description="Page")
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
