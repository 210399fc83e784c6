"""The audit-log filters, shared by the API, the history page and the CSV export."""

from __future__ import annotations

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from classifier.models import CLASS_CHOICES, Prediction
from classifier.templatetags.galaxy10_i18n import galaxy_class_name

# What an unset filter means, instead of django-filter's "---------".
EMPTY_CHOICE_LABELS = {
    "class_index": _("Any class"),
    "source": _("Any source"),
    "ordering": _("Newest first"),
}


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

    @property
    def form(self) -> forms.Form:
        if not hasattr(self, "_form"):
            form = super().form
            # The class choices in the reader's language; the submitted values stay indices,
            # so what validates (for the API too) does not change.
            form.fields["class_index"].choices = [
                (index, galaxy_class_name(name)) for index, name in CLASS_CHOICES
            ]
            for name, label in EMPTY_CHOICE_LABELS.items():
                field = form.fields[name]
                # django-filter's choice fields add the empty choice themselves, from
                # empty_label; the widget holds its own copy of the choices.
                field.empty_label = label
                field.widget.choices = list(field.choices)
        return self._form

    def filter_queryset(self, queryset):  # noqa: ANN001, ANN201
        queryset = super().filter_queryset(queryset)
        # A stable tie-break keeps pagination from repeating or skipping equal rows.
        if self.form.cleaned_data.get("ordering"):
            queryset = queryset.order_by(*queryset.query.order_by, "-id")
        return queryset
