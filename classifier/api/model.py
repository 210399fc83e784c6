"""GET /api/model/: the served model, as its manifest describes it."""

from __future__ import annotations

from dataclasses import asdict

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier.api.serializers import ErrorOutputSerializer, ModelInfoOutputSerializer
from classifier.predictions.inference import get_classifier


class ModelInfoApi(APIView):
    name = _("Model")
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="model_retrieve", responses={200: ModelInfoOutputSerializer, 503: ErrorOutputSerializer}
    )
    def get(self, request: Request) -> Response:
        classifier = get_classifier()
        manifest = classifier.manifest
        data = {
            "model_version": classifier.model_version,
            "sha256": classifier.model_sha256,
            "backend": classifier.backend_name,
            "created_at": manifest.created_at,
            "classes": [asdict(c) for c in manifest.classes],
            "preprocessing": manifest.preprocessing.to_manifest(),
            "output": manifest.section("output"),
            "metrics": manifest.section("metrics"),
            "provenance": manifest.section("provenance"),
            "training": manifest.section("training"),
        }
        return Response(ModelInfoOutputSerializer(data).data)
