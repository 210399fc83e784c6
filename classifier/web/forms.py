"""Forms for the server-rendered pages.

Only the presence of files is checked here. How many are allowed and whether
each file is a usable image is decided by the service layer, so that the page,
the API and the CLI refuse exactly the same inputs.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from classifier.core.exceptions import PositionError
from classifier.core.positions import Position, parse_sky_position
from classifier.predictions.upload_fields import MultipleFileInput, MultipleImageField


class PredictionUploadForm(forms.Form):
    images = MultipleImageField(
        label=_("Galaxy images"),
        help_text=_("JPEG, PNG or other common image formats. You may choose several files."),
        error_messages={"required": _("Choose at least one image to classify.")},
        widget=MultipleFileInput(attrs={"accept": "image/*,.fits,.fit,.fts", "class": "file-input"}),
    )


# Positions typed on the page are each read by astropy (about 1 ms for a sexagesimal one),
# before the view knows whether the sender may submit a job: 200,000 lines of "1h 2" (1 MB)
# held an anonymous request's thread for minutes. Longer lists are a catalogue CSV, whose
# positions are numbers (docs/positions.md).
MAX_TYPED_POSITIONS = 1_000


class PositionForm(forms.Form):
    """Sky positions, one a line: one is classified at once, several become a job."""

    positions = forms.CharField(
        label=_("Sky positions"),
        help_text=_(
            "One position a line: RA and Dec in degrees (150.1163 2.2058) or sexagesimal "
            "(10h00m27.9s +02d12m21s, or 10:00:27.9 +02:12:21). Several lines become a job."
        ),
        error_messages={"required": _("Type at least one position.")},
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false", "autocomplete": "off"}),
    )

    def clean_positions(self) -> list[tuple[str, Position]]:
        lines = [line.strip() for line in self.cleaned_data["positions"].splitlines() if line.strip()]
        limit = min(settings.JOB_MAX_MEMBERS, MAX_TYPED_POSITIONS)
        if len(lines) > limit:
            raise forms.ValidationError(
                _("At most %(limit)s positions can be classified at once."),
                params={"limit": limit},
            )
        parsed: list[tuple[str, Position]] = []
        errors: list[forms.ValidationError] = []
        for number, line in enumerate(lines, start=1):
            try:
                parsed.append((line, parse_sky_position(line)))
            except PositionError as exc:
                # The reason names the coordinate and the rule, in English, as the API gives it.
                errors.append(
                    forms.ValidationError(
                        _("Line %(number)s is not a sky position: %(reason)s"),
                        params={"number": number, "reason": exc.reason},
                    )
                )
        if errors:
            raise forms.ValidationError(errors[:10])
        return parsed
