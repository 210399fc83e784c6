"""The upload page's refusals in the reader's language.

A refusal (classifier.core.exceptions.FileRefusal) carries its English template and the
values for its fields; the API and the command line report the English text, and the
upload page translates the template through the catalog, then fills in the values. The
templates are marked for translation where they are raised, except those raised by
classifier.core.preprocessing, which is shared with training and does not import Django,
and by classifier.core.fits, Django-free too: they are marked here.
"""

from __future__ import annotations

from django.utils.formats import number_format
from django.utils.translation import gettext, gettext_noop

from classifier.core.exceptions import FileRefusal, GroupedNumber, fill_template

PREPROCESSING_TEMPLATES = (
    gettext_noop("not a recognised image format"),
    gettext_noop("the image could not be decoded: %(detail)s"),
)
FITS_TEMPLATES = (
    gettext_noop("the FITS file could not be read: %(detail)s"),
    gettext_noop("the FITS file holds a table, not an image"),
    gettext_noop("the FITS file holds no image"),
    gettext_noop(
        "the FITS image has shape %(shape)s: send one band (height x width) "
        "or a g, r, z cube (3 x height x width)"
    ),
    gettext_noop("the image has no pixels"),
    gettext_noop("the FITS cube has bands %(bands)s: only g, r, z cubes are accepted"),
    gettext_noop("the image is %(width)sx%(height)s pixels, more than the limit of %(limit)s pixels"),
    gettext_noop("the FITS image has no finite values (all NaN or infinite)"),
    gettext_noop(
        "tile-compressed FITS images (%(method)s) are not accepted: send the uncompressed file (funpack)"
    ),
)


def translate_refusal(refusal: FileRefusal) -> str:
    """The refusal in the active language (English when the catalog lacks it), its
    counts written with the language's own separators."""
    params = {
        name: number_format(int(value), force_grouping=True) if isinstance(value, GroupedNumber) else value
        for name, value in refusal.params.items()
    }
    return fill_template(gettext(refusal.template), params)
