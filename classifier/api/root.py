"""GET /api/: the entry point of the browsable API."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from classifier.api.serializers import ApiRootOutputSerializer


class ApiRootApi(APIView):
    """The entry point of the browsable API: where each resource lives."""

    name = _("Galaxy Classifier API")

    permission_classes = [AllowAny]

    @extend_schema(operation_id="api_root", responses={200: ApiRootOutputSerializer})
    def get(self, request: Request) -> Response:
        def url(name: str) -> str:
            return reverse(name, request=request)

        data = {
            "predictions": url("api:prediction-list"),
            "predictions_bulk_delete": url("api:prediction-bulk-delete"),
            "model": url("api:model"),
            "health_live": url("api:health-live"),
            "health_ready": url("api:health-ready"),
            "schema": url("schema"),
            "docs": url("swagger-ui"),
        }
        return Response(ApiRootOutputSerializer(data).data)
