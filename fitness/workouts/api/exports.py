"""``GET /api/v1/sessions/{id}/export/?format=health-connect|fit``: a counted session as a file."""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from fitness.workouts import exports, selectors
from fitness.workouts.models import SensorSession

from .negotiation import FirstRendererNegotiation
from .permissions import IsOwner


class SessionExportView(generics.GenericAPIView):
    """The caller's counted session in Health Connect's or Garmin's format (others' sessions: 404)."""

    permission_classes = [permissions.IsAuthenticated, IsOwner]
    # ``?format=`` names the export, not a renderer: never 404/406 from DRF's format override.
    content_negotiation_class = FirstRendererNegotiation
    queryset = SensorSession.objects.none()  # for the schema; requests use get_queryset()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return SensorSession.objects.none()
        return selectors.session_list(user=self.request.user)

    @extend_schema(
        tags=["sessions"],
        operation_id="sessions_export_retrieve",
        parameters=[
            OpenApiParameter(
                "format",
                str,
                required=True,
                enum=list(exports.FORMATS),
                description="`health-connect`: JSON shaped as Health Connect's ExerciseSessionRecord with one "
                "ExerciseSegment per set; `fit`: a FIT activity file with one active set message per set",
            )
        ],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "application/vnd.ant.fit"): OpenApiTypes.BINARY,
            400: OpenApiResponse(description="`format` missing or unknown"),
            404: OpenApiResponse(description="no such session of the caller"),
            409: OpenApiResponse(description="the session is not counted (queued, processing or failed)"),
        },
        description=(
            "Download a counted session: `health-connect` answers JSON an app writes to Health Connect as an "
            "ExerciseSessionRecord (startTime, startZoneOffset, endTime, endZoneOffset, exerciseType 70 = strength "
            "training, title, metadata.clientRecordId/clientRecordVersion, segments: startTime, endTime, "
            "segmentType from GET /api/v1/exercises/, repetitions, setIndex); `fit` answers a FIT activity file "
            "(file_id, events, set messages active/rest with start_time, duration, repetitions, category; lap, "
            "session, activity) that Garmin Connect and Strava import. Sets carry the user's corrected reps; sets "
            "corrected to 0 are left out. Sent as an attachment (Content-Disposition names the file)."
        ),
    )
    def get(self, request: Request, pk=None) -> HttpResponse:
        session = self.get_object()
        try:
            export = exports.session_export(session=session, fmt=request.query_params.get("format"))
        except exports.ExportFormatError as exc:
            raise serializers.ValidationError({"format": [str(exc)]}) from exc
        except exports.SessionNotDoneError as exc:
            return Response({"detail": str(exc), "status": session.status}, status=status.HTTP_409_CONFLICT)
        response = HttpResponse(export.content, content_type=export.content_type)
        response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
        return response
