"""The audit-log filters, shared by the API, the history page and the CSV export; and the
filters of a job's gallery."""

from __future__ import annotations

from typing import Any, ClassVar

import django_filters
from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from classifier.models import CLASS_CHOICES, Prediction
from classifier.templatetags.galaxy10_i18n import galaxy_class_name

# What an unset filter means, instead of django-filter's "---------".
EMPTY_CHOICE_LABELS = {
    "class_index": _("Any class"),
    "source": _("Any source"),
    "ordering": _("Newest first"),
    "in_distribution": _("Any"),
}
IN_DISTRIBUTION_CHOICES = [
    ("true", _("Looks like a galaxy cutout")),
    ("false", _("Does not look like a galaxy cutout")),
]
# The database's id range (BigAutoField): beyond it a query could not even compare.
_MAX_ID = 2**63 - 1


class _IdFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


def _confidence_filter(label: str, lookup_expr: str) -> django_filters.NumberFilter:
    return django_filters.NumberFilter(
        label=label, field_name="confidence", lookup_expr=lookup_expr, min_value=0, max_value=1
    )


def _filter_in_distribution(queryset: QuerySet, name: str, value: str) -> QuerySet:
    return queryset.filter(in_distribution=(value == "true")) if value else queryset


class _StrictForm(forms.Form):
    """A filter form that also refuses query parameters it does not know: a mistyped filter
    (``?confidence_minimum=0.9``) would otherwise be ignored and every row returned."""

    allowed_parameters: ClassVar[frozenset[str]] = frozenset()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        allowed = ", ".join(sorted(self.allowed_parameters))
        for name in sorted(set(self.data) - self.allowed_parameters):
            # Not a field of the form, so add_error() would refuse it; reported under its own name.
            self._errors[name[:100]] = self.error_class(
                [_("Unknown parameter. Allowed: %(allowed)s.") % {"allowed": allowed}]
            )
        return cleaned


class StrictFilterSet(django_filters.FilterSet):
    """A filter set whose unknown parameters are errors, listing the allowed ones; the
    parameters in ``extra_parameters`` (pagination, format) are the caller's to read."""

    extra_parameters: ClassVar[tuple[str, ...]] = ("page",)

    @classmethod
    def allowed_parameters(cls) -> list[str]:
        return sorted({*cls.base_filters, *cls.extra_parameters})

    def get_form_class(self) -> type[forms.Form]:
        form_class = super().get_form_class()
        form_class.allowed_parameters = frozenset(self.allowed_parameters())
        return form_class

    def unknown_parameters(self) -> list[str]:
        """The parameters given that are neither filters nor extra_parameters."""
        if not self.is_bound:
            return []
        return sorted(set(self.data) - set(self.allowed_parameters()))


class _ClassChoiceFilterSet(StrictFilterSet):
    """A strict filter set with a class_index choice, whose form speaks the reader's language."""

    # What each choice field's unset value is called, instead of django-filter's "---------".
    empty_choice_labels: ClassVar[dict[str, str]] = {}

    @property
    def form(self) -> forms.Form:
        if not hasattr(self, "_form"):
            form = super().form
            # The class choices in the reader's language; the submitted values stay indices,
            # so what validates (for the API too) does not change.
            form.fields["class_index"].choices = [
                (index, galaxy_class_name(name)) for index, name in CLASS_CHOICES
            ]
            for name, label in self.empty_choice_labels.items():
                field = form.fields[name]
                # django-filter's choice fields add the empty choice themselves, from
                # empty_label; the widget holds its own copy of the choices.
                field.empty_label = label
                field.widget.choices = list(field.choices)
        return self._form


class PredictionFilter(_ClassChoiceFilterSet):
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
    confidence_min = _confidence_filter(_("Confidence at least"), "gte")
    confidence_max = _confidence_filter(_("Confidence at most"), "lte")
    in_distribution = django_filters.ChoiceFilter(
        label=_("Looks like a galaxy cutout"), choices=IN_DISTRIBUTION_CHOICES, method=_filter_in_distribution
    )
    job = _IdFilter(label=_("Job"), field_name="job_id", min_value=1, max_value=_MAX_ID)
    ordering = django_filters.OrderingFilter(
        fields=(("created_at", "created_at"), ("confidence", "confidence")),
        field_labels={"created_at": _("Date"), "confidence": _("Confidence")},
        label=_("Order by"),
    )

    # The API's ?format=csv and the browsable API's ?format=api choose a representation.
    extra_parameters = ("page", "format")
    empty_choice_labels = EMPTY_CHOICE_LABELS

    class Meta:
        model = Prediction
        form = _StrictForm
        fields = [
            "class_index",
            "source",
            "created_after",
            "created_before",
            "filename",
            "confidence_min",
            "confidence_max",
            "in_distribution",
            "job",
        ]

    def filter_queryset(self, queryset):  # noqa: ANN001, ANN201
        queryset = super().filter_queryset(queryset)
        # A stable tie-break keeps pagination from repeating or skipping equal rows.
        if self.form.cleaned_data.get("ordering"):
            queryset = queryset.order_by(*queryset.query.order_by, "-id")
        return queryset


GALLERY_ORDERING = (
    ("job_member__index", "index"),
    ("confidence", "confidence"),
    ("class_index", "class"),
    ("job_member__path", "name"),
)


class JobGalleryFilter(_ClassChoiceFilterSet):
    """The galaxies of one job (its predictions), for its gallery page."""

    class_index = django_filters.ChoiceFilter(label=_("Class"), choices=CLASS_CHOICES)
    confidence_min = _confidence_filter(_("Confidence at least"), "gte")
    confidence_max = _confidence_filter(_("Confidence at most"), "lte")
    ordering = django_filters.OrderingFilter(
        fields=GALLERY_ORDERING,
        field_labels={
            "job_member__index": _("Submission order"),
            "confidence": _("Confidence"),
            "class_index": _("Class"),
            "job_member__path": _("Name"),
        },
        label=_("Order by"),
    )
    empty_choice_labels = {"class_index": _("Any class"), "ordering": _("Submission order")}

    class Meta:
        model = Prediction
        form = _StrictForm
        fields = ["class_index", "confidence_min", "confidence_max"]

    def filter_queryset(self, queryset):  # noqa: ANN001, ANN201
        queryset = super().filter_queryset(queryset)
        # Submission order breaks ties, so a page never repeats or skips a galaxy.
        return queryset.order_by(*queryset.query.order_by, "job_member__index")
