"""The model registry in the Django admin: the same services as the API."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from inference.model import ModelFileError

from . import extensions, selectors, services
from .models import Kind, ModelStageChange, ModelVersion, RuntimeStatus, Stage, ValidationStatus
from .validation import precheck_model_file


class ModelVersionUploadForm(forms.ModelForm):
    """Add form: a model file (its cheap checks run before anything is stored; the full check on
    the admin queue) and notes."""

    upload = forms.FileField(label="Model file (.keras, or a learned counter's .onnx)")

    class Meta:
        model = ModelVersion
        fields = ["notes"]

    def clean_upload(self):
        upload = self.cleaned_data["upload"]
        try:
            validated = precheck_model_file(upload.read())
            services.refuse_registered(validated)
        except ModelFileError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return validated


class StageChangeInline(admin.TabularInline):
    model = ModelStageChange
    fields = ["changed_at", "from_stage", "to_stage", "changed_by", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


_LIVE_COLUMNS = (
    "sets of", "counted", "reviewed", "corrected", "true sets", "exact", "+-1", "phantom sets", "missed sets",
)  # fmt: skip


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "version", "kind", "stage", "source", "frame_accuracy", "sets_within_1", "shadow_agreement",
        "validation", "evaluation_status", "runtime_status", "uploaded_at", "activated_at",
    ]  # fmt: skip
    list_filter = ["kind", "stage", "source", "validation_status", "evaluation_status"]
    search_fields = ["version", "checksum", "notes"]
    actions = ["activate", "evaluate", "evaluate_on_corrections", "export", "make_staging", "unstage"]
    inlines = [StageChangeInline]
    readonly_fields = [
        "version", "kind", "stage", "source", "checksum", "size_bytes", "file", "validation_status", "validation_error",
        "runtime_status", "runtime_file",
        "runtime_export", "shadow_agreement", "live_metrics", "metrics",
        "evaluation_status", "evaluation_error", "evaluated_at", "metadata", "uploaded_by", "uploaded_at",
        "activated_by", "activated_at",
    ]  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelVersion]:
        return selectors.model_version_list()

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ModelVersionUploadForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return ["upload", "notes"]
        return ["notes", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_inlines(self, request: HttpRequest, obj=None):
        return [] if obj is None else self.inlines

    def save_model(self, request: HttpRequest, obj: ModelVersion, form, change: bool) -> None:
        if change:
            obj.save(update_fields=["notes"])
            return
        created = services.model_version_create(
            upload=form.cleaned_data["upload"], user=request.user, notes=form.cleaned_data.get("notes", "")
        )
        obj.pk = created.pk
        obj.refresh_from_db()

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # versions are archived, never deleted: sessions and the log refer to them

    @admin.display(description="validation")
    def validation(self, obj: ModelVersion) -> str:
        error = obj.validation_error
        return f"{obj.validation_status}: {error}" if error else obj.validation_status

    @admin.display(description="export (.onnx)")
    def runtime_status(self, obj: ModelVersion) -> str:
        error = obj.runtime_error
        return f"{obj.runtime_status}: {error}" if error else obj.runtime_status

    @admin.display(description="7-phase frame acc.")
    def frame_accuracy(self, obj: ModelVersion) -> str:
        value = (obj.metrics or {}).get("frame_accuracy_7")
        return "-" if value is None else f"{value:.1%}"

    @admin.display(description="sets +-1")
    def sets_within_1(self, obj: ModelVersion) -> str:
        value = (obj.metrics or {}).get("sets_within_1")
        return "-" if value is None else f"{value:.1%}"

    @admin.display(description="shadow agreement")
    def shadow_agreement(self, obj: ModelVersion) -> str:
        summary = extensions.version_summaries("shadow", [obj])[obj.pk]
        if not summary.get("sessions") and not summary.get("errors"):
            return "-"
        agreement = "-" if summary["agreement"] is None else f"{summary['agreement']:.1%}"
        return f"{agreement} of {summary['sessions']} sessions ({summary['errors']} errors)"

    @admin.display(description="live metrics (users' corrections)")
    def live_metrics(self, obj: ModelVersion) -> str:
        """The ``live_metrics`` summary as a table: overall, by exercise, by method."""
        summary = extensions.version_summaries("live_metrics", [obj])[obj.pk]
        if not summary.get("sets_counted") and not summary.get("sets"):
            return "no sets counted by this version in done sessions yet"
        rows = [("all", "", summary)]
        rows += [("exercise", name, fig) for name, fig in summary.get("by_exercise", {}).items()]
        rows += [("method", name, fig) for name, fig in summary.get("by_method", {}).items()]
        head = format_html_join("", "<th>{}</th>", ((h,) for h in _LIVE_COLUMNS))
        body = format_html_join(
            "",
            "<tr><td>{} {}</td>" + "<td>{}</td>" * (len(_LIVE_COLUMNS) - 1) + "</tr>",
            (
                (
                    kind, name, f["sets_counted"], f["sets_reviewed"], f["sets_corrected"], f["sets"],
                    _share(f["sets_exact"]), _share(f["sets_within_1"]), f["phantom_sets"], f["missed_sets"],
                )
                for kind, name, f in rows
            ),
        )  # fmt: skip
        return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)

    @admin.action(description="Activate (make production; the current one of its kind is archived)")
    def activate(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.ERROR)
            return
        try:
            version = services.model_version_activate(version=queryset.get(), user=request.user)
        except services.RegistryError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"{version.version} is now production.", messages.SUCCESS)

    @admin.action(description="Evaluate (in the background)")
    def evaluate(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        try:
            for version in queryset:
                services.model_version_queue_evaluation(version=version, user=request.user)
        except services.RegistryError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"Evaluation queued for {queryset.count()} version(s).", messages.SUCCESS)

    @admin.action(description="Evaluate on users' corrections (in the background)")
    def evaluate_on_corrections(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        try:
            for version in queryset:
                services.model_version_queue_evaluation(version=version, user=request.user, kind="corrections")
        except services.RegistryError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(
            request, f"Evaluation on corrections queued for {queryset.count()} version(s).", messages.SUCCESS
        )

    @admin.action(description="Export to .onnx (in the background; versions without an export)")
    def export(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        # A pending version's export comes with its validation; an invalid one has none.
        pending = [
            v
            for v in queryset
            if v.runtime_status != RuntimeStatus.READY
            and v.validation_status == ValidationStatus.VALID
            and v.kind == Kind.CLASSIFIER
        ]
        for version in pending:
            services.model_version_queue_export(version_id=version.pk)
        self.message_user(request, f"Export queued for {len(pending)} version(s).", messages.SUCCESS)

    @admin.action(description="Stage (shadow-count new sessions)")
    def make_staging(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        self._set_stage(request, queryset, Stage.STAGING)

    @admin.action(description="Unstage (stage none)")
    def unstage(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        self._set_stage(request, queryset, Stage.NONE)

    def _set_stage(self, request: HttpRequest, queryset: QuerySet[ModelVersion], stage: str) -> None:
        for version in queryset:
            try:
                services.model_version_set_stage(version=version, stage=stage, user=request.user)
            except services.RegistryError as exc:
                self.message_user(request, f"{version.version}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{version.version} is now {stage}.", messages.SUCCESS)


@admin.register(ModelStageChange)
class ModelStageChangeAdmin(admin.ModelAdmin):
    list_display = ["changed_at", "version", "from_stage", "to_stage", "changed_by", "note"]
    list_filter = ["to_stage"]
    search_fields = ["version__version", "changed_by__username", "note"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
