"""Renderers for the API's export formats; an error is never rendered by them (api/errors.py)."""

from __future__ import annotations

import io
from typing import Any

from rest_framework.renderers import BaseRenderer

from classifier.predictions.exports import write_predictions_csv


class PredictionCsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        # Only the list's GET offers this renderer.
        stream = io.StringIO()
        write_predictions_csv(data, stream)
        return stream.getvalue().encode(self.charset)
