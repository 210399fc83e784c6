"""The health probes: liveness (the process answers) and readiness (model and database work)."""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier.api.serializers import HealthOutputSerializer
from classifier.predictions.inference import model_status


class HealthLiveApi(APIView):
    """Liveness: the process answers. Cheap, and never touches the model or the database."""

    name = _("Liveness")

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes: list = []

    @extend_schema(operation_id="health_live", responses={200: HealthOutputSerializer})
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


def _database_status() -> tuple[bool, str]:
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        # Django's request_finished handler drops the broken connection, so the
        # next probe reconnects by itself once the database is back.
        return False, f"database unavailable: {type(exc).__name__}"
    return True, f"{connection.vendor} reachable"


class HealthReadyApi(APIView):
    """Readiness: 200 only when both the model and the database work, else 503 with the reason."""

    name = _("Readiness")

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes: list = []

    @extend_schema(
        operation_id="health_ready", responses={200: HealthOutputSerializer, 503: HealthOutputSerializer}
    )
    def get(self, request: Request) -> Response:
        model_ok, model_detail = model_status()
        database_ok, database_detail = _database_status()
        checks = {
            "model": {"ok": model_ok, "detail": model_detail},
            "database": {"ok": database_ok, "detail": database_detail},
        }
        if model_ok and database_ok:
            return Response({"status": "ok", "checks": checks})
        reason = "; ".join(
            detail for ok, detail in ((model_ok, model_detail), (database_ok, database_detail)) if not ok
        )
        return Response(
            {"status": "unavailable", "reason": reason, "checks": checks}, status.HTTP_503_SERVICE_UNAVAILABLE
        )
