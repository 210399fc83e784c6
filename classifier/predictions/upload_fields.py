"""The upload form field of the pages: several files in one input, each judged by the services.

The upload page and the job page both take images this way.
"""

from __future__ import annotations

from django import forms


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
