"""Forms for the server-rendered pages.

Only the presence of files is checked here. How many are allowed and whether
each file is a usable image is decided by the service layer, so that the page,
the API and the CLI refuse exactly the same inputs.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.Field):
    """The uploaded files as a list; each file's content is judged by the service.

    FileField would already refuse, say, an empty file here, and then the error
    could not be reported beside that file together with the others.
    """

    widget = MultipleFileInput

    def clean(self, data: object) -> list:
        files = [item for item in (data if isinstance(data, list | tuple) else [data]) if item]
        if self.required and not files:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        return files


class PredictionUploadForm(forms.Form):
    images = MultipleImageField(
        label=_("Galaxy images"),
        help_text=_("JPEG, PNG or other common image formats. You may choose several files."),
        error_messages={"required": _("Choose at least one image to classify.")},
        widget=MultipleFileInput(attrs={"accept": "image/*,.fits,.fit,.fts", "class": "file-input"}),
    )
