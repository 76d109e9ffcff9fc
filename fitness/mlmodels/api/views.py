from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from fitness.mlmodels import selectors, services
from fitness.mlmodels.models import ModelVersion
from inference.model import ModelFileError

from .serializers import (
    ActivateSerializer,
    EvaluateSerializer,
    ModelVersionDetailSerializer,
    ModelVersionSerializer,
    ModelVersionUploadSerializer,
    StageSerializer,
)


class ModelTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "the model file is too large"
    default_code = "payload_too_large"


@extend_schema_view(
    list=extend_schema(tags=["model registry"]),
    retrieve=extend_schema(tags=["model registry"]),
)
class ModelVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Model versions (staff only): upload, evaluate, stage, activate and roll back."""

    permission_classes = [permissions.IsAdminUser]
    queryset = ModelVersion.objects.none()  # for the schema; requests use get_queryset()
    filterset_fields = ["stage", "kind"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ModelVersion.objects.none()
        return selectors.model_version_list(with_history=self.action != "list")

    def get_parsers(self):
        # JSON bodies (settings), but the upload, which carries a file: multipart only. Called
        # before DRF sets ``action``, so the action is looked up from the method here.
        action = getattr(self, "action", None) or self.action_map.get(self.request.method.lower())
        return [MultiPartParser()] if action == "create" else super().get_parsers()

    def get_serializer_class(self):
        return ModelVersionSerializer if self.action == "list" else ModelVersionDetailSerializer

    def _detail(self, version: ModelVersion, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=version.pk)
        return Response(ModelVersionDetailSerializer(fresh, context=self.get_serializer_context()).data, status=code)

    @extend_schema(
        tags=["model registry"],
        request={"multipart/form-data": ModelVersionUploadSerializer},
        responses={202: ModelVersionDetailSerializer, 400: dict, 413: dict},
        description=(
            "Upload a `.keras` model file with its metadata. The checks that need no network run now: the file "
            "is a `.keras` zip (not an `.onnx`) within the size limit, its metadata is complete and within "
            "bounds, its version string fits, its labels are catalog exercises and the network's size (from "
            "its `config.json`) is within bounds; otherwise, or when the file or its version is already "
            "registered, 400 with the reason and nothing is stored. The answer is 202 with the new version "
            "(stage `none`, `validation_status: pending`): a worker of the admin queue then builds the "
            "network, dry-runs it, counts a synthetic recording and makes its `.onnx` export; follow "
            "`validation_status` (`valid`, or `invalid` with `validation_error`) and `runtime_status` "
            "(`ready`, or `failed` with `runtime_error`: workers count with the `.keras`). Only a `valid` "
            "version can be activated or staged.\n\n"
            "A learned repetition counter is uploaded the same way as its `.onnx` file, recognised by its "
            "`inference_counter.json` metadata entry (read without a runtime): its spec must have a version "
            "string, `grid_hz` within 5-50 and its thresholds positive and bounded, else 400 naming `file`. "
            "It becomes a version of `kind: counter`; the worker loads it in ONNX Runtime and counts a "
            "synthetic recording (memory-capped child), then `valid` or `invalid`. Any other `.onnx` is "
            "refused: a classifier's export is made here from its `.keras`."
        ),
    )
    def create(self, request: Request) -> Response:
        max_bytes = settings.FITNESS_MAX_MODEL_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > max_bytes + 64 * 1024:
            raise ModelTooLarge(f"the upload is larger than {max_bytes} bytes")
        serializer = ModelVersionUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            version = services.model_version_create(
                upload=serializer.validated_data["file"],
                user=request.user,
                notes=serializer.validated_data.get("notes", ""),
            )
        except ModelFileError as exc:
            raise serializers.ValidationError({"file": [str(exc)]}) from exc
        return self._detail(version, status.HTTP_202_ACCEPTED)

    @extend_schema(
        tags=["model registry"],
        request=ActivateSerializer,
        responses={200: ModelVersionDetailSerializer, 400: dict},
        description=(
            "Make this version `production`; the previous production version of its `kind` becomes `archived` "
            "(one transaction, logged; a counter's activation leaves the classifier's production as it is). "
            "Activating an archived version is the rollback, within its kind. Workers count with it from their "
            "next task on. A version that is not `valid` (yet) is refused with 400."
        ),
    )
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk=None) -> Response:
        version = self.get_object()
        serializer = ActivateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            version = services.model_version_activate(
                version=version, user=request.user, note=serializer.validated_data.get("note", "")
            )
        except services.RegistryError as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from exc
        return self._detail(version)

    @extend_schema(
        tags=["model registry"],
        request=StageSerializer,
        responses={200: ModelVersionDetailSerializer, 400: dict},
        description=(
            "Set the stage to `staging` (counts every new session in the background beside production; "
            "results are stored apart and never shown to users; the version must be `valid` and a classifier), "
            "`none` or `archived`."
        ),
    )
    @action(detail=True, methods=["post"])
    def stage(self, request: Request, pk=None) -> Response:
        version = self.get_object()
        serializer = StageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            version = services.model_version_set_stage(
                version=version,
                stage=serializer.validated_data["stage"],
                user=request.user,
                note=serializer.validated_data.get("note", ""),
            )
        except services.RegistryError as exc:
            raise serializers.ValidationError({"stage": [str(exc)]}) from exc
        return self._detail(version)

    @extend_schema(
        tags=["model registry"],
        request=EvaluateSerializer,
        responses={202: ModelVersionDetailSerializer, 400: dict},
        description=(
            "Queue the evaluation of this version on labelled recordings: the given sessions, else the "
            "configured evaluation sessions, else the shipped evaluation manifest. Frame accuracy, per-set "
            "exact and +-1 counting and phantom reps land in `metrics`; follow `evaluation_status`. "
            "With `dataset: corrections`, on sessions users corrected (their reviewed counts as truth): "
            "per-set figures under `metrics.corrections`, the other figures kept. A counter version is "
            "evaluated on users' corrections only (the default for it): each corrected session's recording is "
            "counted by the counter and scored on the reviewed sets the classifier did not count; another "
            "dataset is refused with 400 naming `dataset`."
        ),
    )
    @action(detail=True, methods=["post"])
    def evaluate(self, request: Request, pk=None) -> Response:
        version = self.get_object()
        serializer = EvaluateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            version = services.model_version_queue_evaluation(
                version=version,
                user=request.user,
                session_ids=serializer.validated_data.get("sessions"),
                kind=serializer.validated_data.get("dataset") or None,
            )
        except services.RegistryError as exc:
            raise serializers.ValidationError({exc.field or "sessions": [str(exc)]}) from exc
        return self._detail(version, status.HTTP_202_ACCEPTED)
