from django.conf import settings
from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, AuthenticationFailed, NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from fitness.core.throttling import UploadRateThrottle
from fitness.workouts import plots, selectors, services
from fitness.workouts.models import DeletedRow, ExerciseSet, Repetition, SensorSession, Workout
from inference.io import RecordingError

from .filtersets import ExerciseSetFilter, RepetitionFilter
from .negotiation import FirstRendererNegotiation
from .permissions import IsOwner
from .serializers import (
    RecountSerializer,
    RepetitionHistorySerializer,
    ReprocessResultSerializer,
    ReprocessSerializer,
    SessionListSerializer,
    SessionSerializer,
    SessionUploadSerializer,
    SetAddSerializer,
    SetCorrectionSerializer,
    SetHistorySerializer,
    WorkoutSerializer,
)
from .sync_views import SYNC_LIST_PARAMETERS, SyncMixin, sync_schema


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "the upload is too large"
    default_code = "payload_too_large"


@extend_schema_view(
    list=extend_schema(tags=["workouts"]),
    retrieve=extend_schema(tags=["workouts"]),
    create=extend_schema(tags=["workouts"]),
    update=extend_schema(tags=["workouts"]),
    partial_update=extend_schema(tags=["workouts"]),
    destroy=extend_schema(tags=["workouts"]),
)
class WorkoutViewSet(viewsets.ModelViewSet):
    """The caller's workouts."""

    serializer_class = WorkoutSerializer
    permission_classes = [permissions.IsAuthenticated, IsOwner]
    queryset = Workout.objects.none()  # for the schema; requests use get_queryset()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Workout.objects.none()
        return selectors.workout_list(user=self.request.user)

    def perform_create(self, serializer: WorkoutSerializer) -> None:
        serializer.instance = services.workout_create(user=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer: WorkoutSerializer) -> None:
        serializer.instance = services.workout_update(workout=serializer.instance, **serializer.validated_data)


@extend_schema_view(
    list=extend_schema(tags=["sessions"], responses=SessionListSerializer(many=True)),
    retrieve=extend_schema(tags=["sessions"]),
    destroy=extend_schema(tags=["sessions"]),
)
class SessionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Uploaded sensor sessions: upload, follow the counting, read sets and repetitions."""

    serializer_class = SessionSerializer
    permission_classes = [permissions.IsAuthenticated, IsOwner]
    # The upload carries a file: multipart. Actions with a body name JSONParser themselves.
    parser_classes = [MultiPartParser]
    queryset = SensorSession.objects.none()  # for the schema; requests use get_queryset()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return SensorSession.objects.none()
        return selectors.session_list(user=self.request.user, with_repetitions=self.action == "retrieve")

    def get_throttles(self):
        if self.action in ("create", "recount"):  # both queue counting work
            return [UploadRateThrottle()]
        return super().get_throttles()

    def get_serializer_class(self):
        if self.action == "list":
            return SessionListSerializer
        if self.action == "create":
            return SessionUploadSerializer
        return SessionSerializer

    @extend_schema(
        tags=["sessions"],
        request={"multipart/form-data": SessionUploadSerializer},
        responses={
            202: SessionSerializer,
            200: SessionSerializer,
            400: dict,
            404: OpenApiResponse(description="`exemplar_set` names no set of the caller (the body names the field)"),
            413: dict,
        },
        description=(
            "Upload one recording. It is parsed and validated now (400 naming the field otherwise), "
            "stored, and counted in the background: answered 202 with status `queued`. "
            "A retry with a `client_id` already used answers 200 with the existing session. "
            "`exemplar_set` names a reviewed set of the caller's of the same exercise that the learned counter "
            "counts this recording by (404 for a set of another user; 400 for another exercise, a set not "
            "reviewed, or with `exemplar: none`); without it `exemplar: auto` takes the newest reviewed set of "
            "the exercise, `none` no exemplar."
        ),
    )
    def create(self, request: Request) -> Response:
        max_bytes = settings.FITNESS_MAX_UPLOAD_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        # Allow for the multipart envelope around the file.
        if declared > max_bytes + 64 * 1024:
            raise PayloadTooLarge(f"the upload is larger than {max_bytes} bytes")
        serializer = SessionUploadSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data["file"]
        if upload.size > max_bytes:
            raise PayloadTooLarge(f"the file is larger than {max_bytes} bytes")
        try:
            session, created = services.session_create(
                user=request.user,
                file=upload,
                fmt=data["format"],
                exercise_hint=data.get("exercise") or "",
                client_id=data.get("client_id"),
                workout=data.get("workout"),
                filename=upload.name,
                started_at=data.get("started_at"),
                exemplar=data["exemplar"],
                exemplar_set_id=data.get("exemplar_set"),
            )
        except RecordingError as exc:
            raise serializers.ValidationError({exc.field: [exc.message]}) from exc
        except services.ExemplarError as exc:
            raise _exemplar_refused(exc) from exc
        except services.AccountGoneError as exc:
            raise AuthenticationFailed("the account was deleted during the upload; nothing was stored") from exc
        body = SessionSerializer(session, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)

    def perform_destroy(self, instance) -> None:
        services.session_delete(session=instance)

    @extend_schema(
        tags=["sessions"],
        responses={
            (200, "image/png"): OpenApiTypes.BINARY,
            404: OpenApiResponse(description="no such session of the caller, or its recording is gone"),
            409: OpenApiResponse(description="the session is not counted (yet)"),
        },
        description=(
            "The session's signal, one panel per unit, with its counted sets shaded and each "
            "repetition marked (reference phase labels below, where the recording has them). "
            "Rendered on the first request after each count and cached."
        ),
    )
    def plot(self, request: Request, pk=None) -> HttpResponse:
        """``GET /sessions/{id}/plot.png`` (routed in ``urls.py``: no trailing slash)."""
        session = self.get_object()
        try:
            png = plots.session_plot_png(session=session)
        except plots.SessionNotCountedError:
            return Response(
                {"detail": f"the session is not counted (status: {session.status})", "status": session.status},
                status=status.HTTP_409_CONFLICT,
            )
        except (FileNotFoundError, RecordingError) as exc:
            raise NotFound("the session's recording is not available") from exc
        response = HttpResponse(png, content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response

    @extend_schema(
        tags=["sessions"],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 404: OpenApiResponse()},
        description="The raw recording as uploaded (linked from the account export).",
    )
    @action(detail=True, methods=["get"], content_negotiation_class=FirstRendererNegotiation)
    def recording(self, request: Request, pk=None) -> FileResponse:
        session = self.get_object()
        try:
            handle = session.file.open("rb")
        except FileNotFoundError as exc:
            raise NotFound("the session's recording is not available") from exc
        suffix = session.file.name.rsplit(".", 1)[-1] if "." in session.file.name else "dat"
        content_type = "application/json" if session.format == "json" else "text/csv"
        return FileResponse(handle, as_attachment=True, filename=f"{session.pk}.{suffix}", content_type=content_type)

    @extend_schema(
        tags=["corrections"],
        request=SetAddSerializer,
        responses={
            201: SetHistorySerializer,
            400: OpenApiResponse(description="a field is missing or invalid (named), or the set overlaps another"),
            404: OpenApiResponse(description="no such session of the caller"),
            409: OpenApiResponse(description="the session is not done (queued, being counted again, or failed)"),
        },
        description=(
            "Add a set the counter missed to a done session: `exercise` (a catalog id), `reps` (1..10000, "
            "at most 10 a second over the set), `start_s` and `end_s` within the session's duration_s, "
            "checked after rounding to the millisecond, at least 1 s apart; at most 200 sets a session. "
            "It is stored with origin `user`, counted_reps null and reviewed; the session's total_reps "
            "and statistics follow."
        ),
    )
    @action(detail=True, methods=["post"], url_path="sets", parser_classes=[JSONParser])
    def add_set(self, request: Request, pk=None) -> Response:
        session = self.get_object()
        serializer = SetAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            added = services.set_add(session=session, **serializer.validated_data)
        except services.SessionNotDoneError as exc:
            return _not_done(exc)
        except services.CorrectionError as exc:
            raise serializers.ValidationError({exc.field: [exc.message]}) from exc
        return Response(SetHistorySerializer(added, context=self.get_serializer_context()).data, status=201)

    @extend_schema(
        tags=["sessions"],
        request=RecountSerializer,
        responses={
            202: SessionSerializer,
            400: OpenApiResponse(
                description="`exemplar_set` missing, of another exercise than the session's, not reviewed, or "
                "outside 1..500 reps over 1..900 s"
            ),
            404: OpenApiResponse(
                description="no such session of the caller, or `exemplar_set` names no set of the caller "
                "(the body names the field)",
            ),
            409: OpenApiResponse(description="the session is not done (queued, being counted again, or failed)"),
        },
        description=(
            'Count a done session again with an exemplar: `{"exemplar_set": id}`, a reviewed set of the '
            "caller's of the session's exercise (it may be one of this session's). Answered 202 with the "
            "session, `queued`, and counted in the background (rate-limited as uploads): the sets nobody "
            "reviewed are replaced by the new count (their ids go to `/sets/changes/` as deleted), reviewed "
            "sets are kept with their reps, and a `session.done` webhook follows. Sets the learned counter "
            "counted with the exemplar name it in `exemplar_set`."
        ),
    )
    @action(detail=True, methods=["post"], parser_classes=[JSONParser])
    def recount(self, request: Request, pk=None) -> Response:
        session = self.get_object()
        serializer = RecountSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.session_recount(session=session, exemplar_set_id=serializer.validated_data["exemplar_set"])
        except services.ExemplarError as exc:
            raise _exemplar_refused(exc) from exc
        except services.SessionNotDoneError as exc:
            return _not_done(exc)
        queued = selectors.session_list(user=request.user, with_repetitions=True).get(pk=session.pk)
        body = SessionSerializer(queued, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        tags=["sessions"],
        request=ReprocessSerializer,
        responses={202: ReprocessResultSerializer, 400: dict},
        description=(
            "Staff only. Count the chosen sessions (or all) again with the production model version, as "
            "background tasks. Each result replaces the old one in one transaction: nothing is counted "
            "twice and statistics follow. Sets users reviewed (confirmed, corrected or added) are kept with "
            "their reps; a new counted set overlapping one updates its counted_reps only "
            "(`corrections_kept` says how many). Sessions queued or processing now are skipped."
        ),
    )
    @action(
        detail=False,
        methods=["post"],
        permission_classes=[permissions.IsAdminUser],
        parser_classes=[JSONParser],
    )
    def reprocess(self, request: Request) -> Response:
        serializer = ReprocessSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        queued, skipped = services.sessions_reprocess(session_ids=None if data.get("all") else data["sessions"])
        kept = services.reviewed_set_count(session_ids=queued)
        body = ReprocessResultSerializer({"queued": len(queued), "skipped": skipped, "corrections_kept": kept}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


# --- History (sync): counted sets and repetitions -------------------------------------


class HistoryCursorPagination(CursorPagination):
    """Oldest first by performance time; follow ``next`` to sync, or resume with ``from``."""

    ordering = ("performed_at", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class RepetitionCursorPagination(HistoryCursorPagination):
    ordering = ("performed_at", "set_id", "index")


@extend_schema_view(
    list=extend_schema(tags=["history"], parameters=SYNC_LIST_PARAMETERS),
    retrieve=extend_schema(tags=["history"]),
    changes=extend_schema(**sync_schema("set", SetHistorySerializer)),
)
class ExerciseSetViewSet(SyncMixin, viewsets.ReadOnlyModelViewSet):
    """The caller's counted sets, each mapping onto a Health Connect ExerciseSegment."""

    serializer_class = SetHistorySerializer
    permission_classes = [permissions.IsAuthenticated, IsOwner]
    pagination_class = HistoryCursorPagination
    filterset_class = ExerciseSetFilter
    queryset = ExerciseSet.objects.none()  # for the schema; requests use get_queryset()
    sync_kind = DeletedRow.Kind.SET

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ExerciseSet.objects.none()
        if self.action == "partial_update":  # a set of a session being re-counted is a 409, not a 404
            return selectors.user_sets(user=self.request.user)
        return selectors.set_history(user=self.request.user)

    @extend_schema(
        tags=["corrections"],
        request=SetCorrectionSerializer,
        responses={
            200: SetHistorySerializer,
            400: OpenApiResponse(
                description="`reps` missing, outside 0..10000 or faster than 10 a second over the set "
                "(beyond the counter's own count), or another field given"
            ),
            404: OpenApiResponse(description="no such set of the caller"),
            409: OpenApiResponse(description="the session is not done (queued, being counted again, or failed)"),
        },
        description=(
            'Correct a set\'s count: `{"reps": n}` (0 marks a phantom set; the same count confirms it). '
            "`counted_reps` keeps what the counter said; the set becomes `reviewed` (and `corrected` where "
            "reps differ), the session's total_reps and statistics follow, and a re-count keeps it."
        ),
    )
    def partial_update(self, request: Request, pk=None) -> Response:
        exercise_set = self.get_object()
        serializer = SetCorrectionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            corrected = services.set_correct(exercise_set=exercise_set, reps=serializer.validated_data["reps"])
        except services.SessionNotDoneError as exc:
            return _not_done(exc)
        except services.CorrectionError as exc:
            raise serializers.ValidationError({exc.field: [exc.message]}) from exc
        return Response(SetHistorySerializer(corrected, context=self.get_serializer_context()).data)


def _exemplar_refused(exc: services.ExemplarError) -> APIException:
    """404 for a set that is not the caller's, else 400; the body names the field either way."""
    body = {exc.field: [exc.message]}
    return NotFound(body) if exc.not_found else serializers.ValidationError(body)


def _not_done(exc: services.SessionNotDoneError) -> Response:
    return Response({"detail": str(exc), "status": exc.status}, status=status.HTTP_409_CONFLICT)


@extend_schema_view(
    list=extend_schema(tags=["history"], parameters=SYNC_LIST_PARAMETERS),
    retrieve=extend_schema(tags=["history"]),
    changes=extend_schema(**sync_schema("repetition", RepetitionHistorySerializer)),
)
class RepetitionViewSet(SyncMixin, viewsets.ReadOnlyModelViewSet):
    """The caller's counted repetitions, each a one-repetition Health Connect ExerciseSegment."""

    serializer_class = RepetitionHistorySerializer
    permission_classes = [permissions.IsAuthenticated]
    pagination_class = RepetitionCursorPagination
    filterset_class = RepetitionFilter
    queryset = Repetition.objects.none()  # for the schema; requests use get_queryset()
    sync_kind = DeletedRow.Kind.REPETITION

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Repetition.objects.none()
        return selectors.repetition_history(user=self.request.user)
