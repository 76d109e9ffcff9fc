"""``GET /sets/changes/`` and ``/repetitions/changes/`` (also ``/sets/?updated_since=T``): sync with deletions.

See :mod:`fitness.workouts.sync` for the cursor and why it lags the clock.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from fitness.workouts import sync

from .filtersets import UTC, validate_query_date

SYNC_PARAMS = ("updated_since", "sync_cursor")  # ``cursor`` is the history pagination's
MAX_PAGE_SIZE = 1000


class TombstoneSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="the deleted row's id")
    deleted_at = serializers.DateTimeField()


class _SyncQuerySerializer(serializers.Serializer):
    updated_since = serializers.CharField(required=False)
    sync_cursor = serializers.CharField(required=False, max_length=1000)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE, default=100)

    def validate_updated_since(self, value: str):
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise serializers.ValidationError("an ISO 8601 date-time with a UTC offset (next_updated_since as given)")
        try:
            validate_query_date(parsed)
        except Exception as exc:
            raise serializers.ValidationError(str(getattr(exc, "message", exc))) from exc
        # In UTC: PostgreSQL refuses offsets beyond 15:59 (ISO 8601 allows 23:59); within
        # MIN_DATE .. MAX_DATE the conversion cannot overflow.
        return parsed.astimezone(UTC)

    def validate(self, attrs: dict) -> dict:
        if "updated_since" in attrs and "sync_cursor" in attrs:
            raise serializers.ValidationError(
                {"sync_cursor": ["give updated_since or a sync_cursor from `next`, not both"]}
            )
        return attrs


_DESCRIPTION = (
    "Sync: every {row} written (`updated_at`) or deleted since `updated_since`, oldest first. A written row is "
    'the history item; a deleted one is `{{"id", "deleted_at"}}` (delete it locally). Follow `next` until it '
    "is null, then keep `next_updated_since` for the next sync. Without `updated_since`: a full sync, from the "
    "first row. The window ends `FITNESS_SYNC_LAG_S` "
    f"({settings.FITNESS_SYNC_LAG_S:g} s) before now, so that rows whose transaction commits late are never "
    f"skipped. Deletions are kept {settings.FITNESS_SYNC_TOMBSTONE_DAYS} days: an older `updated_since` is a "
    "410 (`code: resync_required`): fetch the whole history again."
)


SYNC_LIST_PARAMETERS = [
    OpenApiParameter(
        "updated_since",
        OpenApiTypes.DATETIME,
        description="sync: answer as the `changes` endpoint (written and deleted rows since this instant)",
    ),
    OpenApiParameter("sync_cursor", OpenApiTypes.STR, description="sync: the next page of one sync (from its `next`)"),
]


def sync_schema(row: str, item_serializer) -> dict:
    """``extend_schema`` arguments of a ``changes`` action whose written rows are ``item_serializer``."""
    return {
        "tags": ["history"],
        "parameters": [
            OpenApiParameter(
                "updated_since",
                OpenApiTypes.DATETIME,
                description="changes at or after this instant (ISO 8601 with offset: a previous next_updated_since); "
                "omitted: a full sync",
            ),
            OpenApiParameter(
                "sync_cursor",
                OpenApiTypes.STR,
                description="opaque and signed: the next page of one sync (in `next`), for this endpoint and user",
            ),
            OpenApiParameter("page_size", OpenApiTypes.INT, description=f"1..{MAX_PAGE_SIZE} (default 100)"),
        ],
        "responses": {
            200: _page_serializer(row, item_serializer),
            400: OpenApiResponse(description="a parameter is invalid (named)"),
            410: OpenApiResponse(
                description="updated_since (or a sync_cursor's) is older than the deletions kept: resync in full"
            ),
        },
        "description": _DESCRIPTION.format(row=row),
    }


def _page_serializer(row: str, item_serializer):
    name = "".join(part.capitalize() for part in row.split())
    item = PolymorphicProxySerializer(
        component_name=f"{name}Change",
        serializers=[item_serializer, TombstoneSerializer],
        resource_type_field_name=None,
    )
    return type(
        f"{name}SyncPageSerializer",
        (serializers.Serializer,),
        {
            "results": serializers.ListField(child=item, help_text="written rows and tombstones, oldest first"),
            "next": serializers.URLField(allow_null=True, help_text="the next page of this sync; null: done"),
            "next_updated_since": serializers.DateTimeField(
                allow_null=True, help_text="on the last page: updated_since of the next sync; null while next is set"
            ),
        },
    )()


class SyncMixin:
    """A history viewset's ``changes`` action; its ``list`` answers as ``changes`` when given
    ``updated_since`` or ``cursor``. Subclasses set ``sync_kind`` (a ``DeletedRow.Kind``)."""

    sync_kind: str

    def list(self, request: Request, *args, **kwargs):
        if any(p in request.query_params for p in SYNC_PARAMS):
            return self._sync(request)
        return super().list(request, *args, **kwargs)

    @action(detail=False, methods=["get"], pagination_class=None, filterset_class=None)
    def changes(self, request: Request) -> Response:
        return self._sync(request)

    def _sync(self, request: Request) -> Response:
        params = _SyncQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        scope = f"{self.sync_kind}:{request.user.pk}"
        try:
            if "sync_cursor" in data:
                try:
                    window = sync.Window.decode(data["sync_cursor"], scope=scope)
                except sync.CursorError as exc:
                    raise serializers.ValidationError({"sync_cursor": [str(exc)]}) from exc
                sync.check_window(window)
            else:
                window = sync.open_window(since=data.get("updated_since"))
        except sync.ResyncRequiredError:
            return Response(
                {
                    "detail": f"updated_since is older than the {settings.FITNESS_SYNC_TOMBSTONE_DAYS} days of "
                    "deletions kept; fetch the whole history again, then sync from its next_updated_since",
                    "code": "resync_required",
                },
                status=status.HTTP_410_GONE,
            )
        items, following = sync.sync_page(
            rows=self.get_queryset(), user=request.user, kind=self.sync_kind, window=window, limit=data["page_size"]
        )
        context = self.get_serializer_context()
        serializer_class = self.get_serializer_class()
        results = [
            serializer_class(row, context=context).data
            if kind == sync.ROW
            else TombstoneSerializer({"id": pk, "deleted_at": at}).data
            for at, kind, pk, row in items
        ]
        next_url = None
        if following is not None:
            url = remove_query_param(request.build_absolute_uri(), "updated_since")
            next_url = replace_query_param(url, "sync_cursor", following.encode(following.after, scope=scope))
        return Response(
            {
                "results": results,
                "next": next_url,
                "next_updated_since": None
                if following is not None
                else serializers.DateTimeField().to_representation(window.horizon),
            }
        )
