"""Content negotiation and schema post-processing shared by every API operation."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

NOT_ACCEPTABLE_DESCRIPTION = (
    "The `format` query parameter or the Accept header asks for a representation this "
    "operation does not offer (`json` everywhere, `csv` on the prediction list)."
)


class ApiContentNegotiation(DefaultContentNegotiation):
    """An unknown `?format=` is a 406 that names the formats on offer, not DRF's bare 404.

    DRF answers 404 because a format *suffix* (`/predictions.xyz`) is part of the path;
    here the format is only ever a query parameter, so the resource exists and it is the
    representation that is unavailable.
    """

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except Http404:
            requested = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
            offered = ", ".join(sorted({renderer.format for renderer in renderers}))
            raise exceptions.NotAcceptable(
                f"format {requested!r} is not available here; use one of: {offered}"
            ) from None


def add_not_acceptable_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular post-processing hook: every operation documents its JSON 406."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.setdefault(
                "406",
                {
                    "description": NOT_ACCEPTABLE_DESCRIPTION,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOutput"}}},
                },
            )
    return result
