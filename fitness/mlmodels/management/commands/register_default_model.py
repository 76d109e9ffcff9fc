"""``manage.py register_default_model``: register the shipped models (``make migrate`` runs it)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from fitness.mlmodels.services import register_shipped_counter, register_shipped_model
from inference.density import DEFAULT_COUNTER_PATH
from inference.model import DEFAULT_KERAS_PATH, ModelFileError


class Command(BaseCommand):
    help = (
        "Register the model files shipped with the code in the model registry (idempotent by checksum): "
        "the phase classifier, and the learned counter where its file is shipped. Each becomes production "
        "when no version of its kind is, or when that production version is an earlier shipped one."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--path",
            type=Path,
            default=DEFAULT_KERAS_PATH,
            help=".keras model file, its .onnx export beside it (default: %(default)s)",
        )
        parser.add_argument(
            "--counter-path",
            type=Path,
            default=DEFAULT_COUNTER_PATH,
            help="learned counter .onnx file; skipped when absent (default: %(default)s)",
        )

    def handle(self, *args, path: Path, counter_path: Path, **options) -> None:
        if path.is_file():
            try:
                version, created = register_shipped_model(path=path)
            except ModelFileError as exc:
                raise CommandError(f"{path} cannot be registered: {exc}") from exc
            self._report(version, created)
        else:
            self.stderr.write(
                self.style.WARNING(
                    f"no model file at {path}: nothing registered; until one is, only sessions with an "
                    "exercise hint are counted (by peaks). Train one with `python -m inference train`."
                )
            )
        try:
            registered = register_shipped_counter(path=counter_path)
        except ModelFileError as exc:
            raise CommandError(f"{counter_path} cannot be registered: {exc}") from exc
        if registered is not None:  # no shipped counter: nothing to say
            self._report(*registered)

    def _report(self, version, created: bool) -> None:
        state = "registered" if created else "already registered"
        self.stdout.write(
            f"model version {version.version} ({version.kind}) {state} (id {version.pk}, stage {version.stage})"
        )
