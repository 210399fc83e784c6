"""The predictions resource of the REST API: thin views over classifier.predictions.services
and classifier.predictions.selectors."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission, IsAdminUser, IsAuthenticated
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier.api.parsers import JSONParser
from classifier.api.renderers import PredictionCsvRenderer
from classifier.api.serializers import (
    ErrorOutputSerializer,
    PredictionBulkDeleteInputSerializer,
    PredictionBulkDeleteOutputSerializer,
    PredictionCreateFormSerializer,
    PredictionCreateInputSerializer,
    PredictionCreateOutputSerializer,
    PredictionDetailOutputSerializer,
    PredictionListOutputSerializer,
    PredictionPositionInputSerializer,
)
from classifier.core.exceptions import PositionError
from classifier.core.galaxy10 import CLASS_NAMES
from classifier.models import Prediction
from classifier.ops.client_ip import request_client_ip
from classifier.predictions import selectors, services

UPLOAD_FIELD = "image"
POSITION_FIELDS = ("ra", "dec")


class CanPredict(BasePermission):
    """Anyone may classify, unless ALLOW_ANONYMOUS_PREDICT is off."""

    message = "log in to classify images"

    def has_permission(self, request: Request, view: APIView) -> bool:
        return settings.ALLOW_ANONYMOUS_PREDICT or bool(request.user and request.user.is_authenticated)


FILTER_PARAMETERS = [
    OpenApiParameter("class_index", int, enum=list(range(len(CLASS_NAMES))), description="Predicted class."),
    OpenApiParameter(
        "source", str, enum=Prediction.Source.values, description="Where the request came from."
    ),
    OpenApiParameter("created_after", OpenApiTypes.DATE, description="Created on or after this date."),
    OpenApiParameter("created_before", OpenApiTypes.DATE, description="Created on or before this date."),
    OpenApiParameter("filename", str, description="Original filename contains (case-insensitive)."),
    OpenApiParameter("confidence_min", float, description="Confidence at least this (0 to 1)."),
    OpenApiParameter("confidence_max", float, description="Confidence at most this (0 to 1)."),
    OpenApiParameter(
        "in_distribution",
        str,
        enum=["true", "false"],
        description="Whether the image looked like a galaxy cutout (docs/ood.md).",
    ),
    OpenApiParameter("job", int, description="Predictions of this classification job."),
]
# Invalid filters and bodies are reported per field, as DRF does: {"field": ["message", ...]}.
FIELD_ERRORS_RESPONSE = OpenApiResponse(
    response={"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    description="The errors of each invalid field; an unknown query parameter is reported under "
    "its own name, with the list of the allowed ones.",
)


class PredictionListCreateApi(APIView):
    """POST classifies uploads (PredictionCreate); GET lists the audit log (PredictionList)."""

    name = _("Predictions")
    # Multipart first, so the browsable API's form posts a file; JSON only for its raw-data tab.
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, PredictionCsvRenderer]

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "POST":
            return [CanPredict()]
        return [IsAuthenticated()]

    def get_serializer(self, *args: Any, **kwargs: Any) -> PredictionCreateFormSerializer:
        # Called by the browsable API alone, to render its POST form with a file input.
        return PredictionCreateFormSerializer(*args, **kwargs)

    def get_renderers(self) -> list[BaseRenderer]:
        renderers = super().get_renderers()
        if self.request.method in ("GET", "HEAD"):
            return renderers
        # CSV is the list's export format; a POST's result is never a list of records.
        return [renderer for renderer in renderers if not isinstance(renderer, PredictionCsvRenderer)]

    @extend_schema(
        operation_id="predictions_create",
        request={
            "multipart/form-data": PredictionCreateInputSerializer,
            "application/json": PredictionPositionInputSerializer,
        },
        responses={
            201: PredictionCreateOutputSerializer,
            400: ErrorOutputSerializer,
            401: ErrorOutputSerializer,
            403: ErrorOutputSerializer,
            413: ErrorOutputSerializer,
            422: ErrorOutputSerializer,
            429: ErrorOutputSerializer,
            502: ErrorOutputSerializer,
            503: ErrorOutputSerializer,
            504: ErrorOutputSerializer,
        },
        description="Classify one or more images, or the survey's cutout at a sky position. Every file "
        "is validated first; if any is refused, nothing is saved and each file's error is listed. "
        "With `ra` and `dec` (degrees, form fields or JSON) instead of images, the cutout at that "
        "position is fetched from CUTOUT_URL (docs/positions.md): 422 where the survey has no imaging, "
        "502 when the service fails, 504 when it is too slow; nothing is saved then.",
    )
    def post(self, request: Request) -> Response:
        position = _position_fields(request)
        if position is not None:
            return self._post_position(request, *position)
        other_fields = sorted(set(request.FILES) - {UPLOAD_FIELD})
        uploads = request.FILES.getlist(UPLOAD_FIELD)
        if not uploads:
            hint = f" (got file fields: {', '.join(other_fields)})" if other_fields else ""
            return Response(
                {
                    "detail": "send one or more images as multipart/form-data "
                    f"in the '{UPLOAD_FIELD}' field{hint}",
                    "errors": [{"filename": "", "error": "no image was uploaded"}],
                },
                status.HTTP_400_BAD_REQUEST,
            )
        if other_fields:
            return Response(
                {
                    "detail": f"unexpected file fields: {', '.join(other_fields)}; use '{UPLOAD_FIELD}'",
                    "errors": [{"filename": name, "error": "unexpected field"} for name in other_fields],
                },
                status.HTTP_400_BAD_REQUEST,
            )
        predictions = services.prediction_create_batch(
            uploads=uploads,
            source=Prediction.Source.API,
            user=request.user,
            client_ip=request_client_ip(request),
        )
        output = PredictionCreateOutputSerializer({"predictions": predictions}, context={"request": request})
        return Response(output.data, status=status.HTTP_201_CREATED)

    def _post_position(self, request: Request, ra: object, dec: object) -> Response:
        prediction = services.prediction_create_from_position(
            ra=ra,
            dec=dec,
            source=Prediction.Source.API,
            user=request.user,
            client_ip=request_client_ip(request),
        )
        output = PredictionCreateOutputSerializer({"predictions": [prediction]}, context={"request": request})
        return Response(output.data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="predictions_list",
        parameters=[
            *FILTER_PARAMETERS,
            OpenApiParameter(
                "ordering",
                str,
                enum=["created_at", "-created_at", "confidence", "-confidence"],
                description="Sort order; newest first by default.",
            ),
            OpenApiParameter("page", int, description="Page number, from 1 (404 past the last page)."),
            OpenApiParameter(
                "format", str, enum=["json", "csv"], description="csv exports every matching row."
            ),
        ],
        responses={
            (200, "application/json"): PredictionListOutputSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
            400: FIELD_ERRORS_RESPONSE,
            401: ErrorOutputSerializer,
            403: ErrorOutputSerializer,
            404: ErrorOutputSerializer,
        },
    )
    def get(self, request: Request) -> Response:
        queryset = selectors.prediction_list(filters=request.query_params, user=request.user)
        if request.accepted_renderer.format == "csv":
            return Response(
                queryset, headers={"Content-Disposition": 'attachment; filename="predictions.csv"'}
            )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        output = PredictionDetailOutputSerializer(page, many=True, context={"request": request})
        return paginator.get_paginated_response(output.data)


def _position_fields(request: Request) -> tuple[object, object] | None:
    """ra and dec from the form or the JSON body, or None when neither was sent; raises
    PositionError when only one was, when either is repeated, or when files came too."""
    data = request.data
    if not hasattr(data, "keys"):
        return None
    sent = [name for name in POSITION_FIELDS if name in data]
    if not sent:
        return None
    if request.FILES or UPLOAD_FIELD in data:
        raise PositionError("send either images or ra and dec, not both")
    if len(sent) == 1:
        missing = next(name for name in POSITION_FIELDS if name not in sent)
        raise PositionError(f"{sent[0]} was sent without {missing}; send both, in degrees")
    values = []
    for name in POSITION_FIELDS:
        if hasattr(data, "getlist"):
            given = data.getlist(name)
            if len(given) != 1:
                raise PositionError(f"send {name} once")
            values.append(given[0])
        else:
            values.append(data[name])
    return values[0], values[1]


class PredictionDetailApi(APIView):
    """GET reads one record (PredictionDetail); DELETE removes it and its image (staff)."""

    name = _("Prediction")

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "DELETE":
            return [IsAdminUser()]
        return [IsAuthenticated()]

    @extend_schema(
        operation_id="predictions_retrieve",
        responses={
            200: PredictionDetailOutputSerializer,
            401: ErrorOutputSerializer,
            403: ErrorOutputSerializer,
            404: ErrorOutputSerializer,
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        prediction = selectors.prediction_get(pk=pk, user=request.user)
        return Response(PredictionDetailOutputSerializer(prediction, context={"request": request}).data)

    @extend_schema(
        operation_id="predictions_destroy",
        responses={
            204: None,
            401: ErrorOutputSerializer,
            403: ErrorOutputSerializer,
            404: ErrorOutputSerializer,
        },
    )
    def delete(self, request: Request, pk: int) -> Response:
        prediction = selectors.prediction_get(pk=pk, user=request.user)
        services.prediction_delete(prediction=prediction)
        return Response(status=status.HTTP_204_NO_CONTENT)


# A body that is not valid UTF-8 JSON is refused as a whole ({"detail": ...}); a body that
# parses but has invalid fields is refused field by field.
BULK_DELETE_BAD_REQUEST_RESPONSE = OpenApiResponse(
    response={
        "oneOf": [
            {"$ref": "#/components/schemas/ErrorOutput"},
            FIELD_ERRORS_RESPONSE.response,
        ]
    },
    description="The body is not valid JSON (`detail`), or the errors of each invalid field.",
)


class PredictionBulkDeleteApi(APIView):
    name = _("Delete predictions")
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="predictions_bulk_delete",
        request=PredictionBulkDeleteInputSerializer,
        responses={
            200: PredictionBulkDeleteOutputSerializer,
            400: BULK_DELETE_BAD_REQUEST_RESPONSE,
            401: ErrorOutputSerializer,
            403: ErrorOutputSerializer,
        },
        description="Delete every prediction matching the filters (staff only). "
        "With no filter, `all: true` is required.",
    )
    def post(self, request: Request) -> Response:
        serializer = PredictionBulkDeleteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        filters = {
            key: value.isoformat() if hasattr(value, "isoformat") else value
            for key, value in serializer.validated_data.items()
            if key != "all"
        }
        queryset = selectors.prediction_list(filters=filters, user=request.user)
        deleted = services.prediction_delete_many(queryset=queryset)
        return Response(PredictionBulkDeleteOutputSerializer({"deleted": deleted}).data)

    def http_method_not_allowed(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # This path also spells /api/predictions/{id}/ with an id that is not a number, and a
        # client that follows the API root's links (schemathesis's stateful phase) asks it for
        # that operation's GET and DELETE: they get what the schema documents there for an id
        # that does not exist, 404, as /api/predictions/abc/ does.
        if request.method in ("GET", "DELETE"):
            raise drf_exceptions.NotFound
        return super().http_method_not_allowed(request, *args, **kwargs)
