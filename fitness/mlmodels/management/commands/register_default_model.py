"""``manage.py register_default_model``: register the shipped model (``make migrate`` runs it)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from fitness.mlmodels.services import register_shipped_model
from inference.model import DEFAULT_KERAS_PATH, ModelFileError


class Command(BaseCommand):
    help = (
        "Register the model file shipped with the code in the model registry (idempotent by checksum). "
        "It becomes production when no version is, or when production is an earlier shipped model."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--path",
            type=Path,
            default=DEFAULT_KERAS_PATH,
            help=".keras model file, its .onnx export beside it (default: %(default)s)",
        )

    def handle(self, *args, path: Path, **options) -> None:
        if not path.is_file():
            self.stderr.write(
                self.style.WARNING(
                    f"no model file at {path}: nothing registered; until one is, only sessions with an "
                    "exercise hint are counted (by peaks). Train one with `python -m inference train`."
                )
            )
            return
        try:
            version, created = register_shipped_model(path=path)
        except ModelFileError as exc:
            raise CommandError(f"{path} cannot be registered: {exc}") from exc
        state = "registered" if created else "already registered"
        self.stdout.write(f"model version {version.version} {state} (id {version.pk}, stage {version.stage})")
