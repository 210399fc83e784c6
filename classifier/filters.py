"""The audit-log filters, shared by the API, the history page and the CSV export."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _

from classifier.models import CLASS_CHOICES, Prediction


class PredictionFilter(django_filters.FilterSet):
    class_index = django_filters.ChoiceFilter(label=_("Class"), choices=CLASS_CHOICES)
    source = django_filters.ChoiceFilter(label=_("Source"), choices=Prediction.Source.choices)
    created_after = django_filters.DateFilter(
        label=_("From date"), field_name="created_at", lookup_expr="date__gte"
    )
    created_before = django_filters.DateFilter(
        label=_("To date"), field_name="created_at", lookup_expr="date__lte"
    )
    filename = django_filters.CharFilter(
        label=_("Filename contains"), field_name="original_filename", lookup_expr="icontains"
    )
    ordering = django_filters.OrderingFilter(
        fields=(("created_at", "created_at"), ("confidence", "confidence")),
        field_labels={"created_at": _("Date"), "confidence": _("Confidence")},
        label=_("Order by"),
    )

    class Meta:
        model = Prediction
        fields = ["class_index", "source", "created_after", "created_before", "filename"]

    def filter_queryset(self, queryset):  # noqa: ANN001, ANN201
        queryset = super().filter_queryset(queryset)
        # A stable tie-break keeps pagination from repeating or skipping equal rows.
        if self.form.cleaned_data.get("ordering"):
            queryset = queryset.order_by(*queryset.query.order_by, "-id")
        return queryset
