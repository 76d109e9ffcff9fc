"""Command line: ``python -m inference count [--format F] [--exercise E] [--exemplar PATH:REPS] PATH...``.

``count`` prints one JSON object per input file, one per line (architecture.md,
"Contracts"): ``{"file", "total_reps", "model_version", "sets": [...]}``; an ``--exercise``
outside the catalog exits with status 2 before anything is read. ``exercises`` prints the
catalog (:mod:`inference.catalog`), one JSON object per line. ``--exemplar PATH:REPS`` names a
recording in the same format holding exactly REPS repetitions of the movement to count; the
learned counter (:mod:`inference.density`) uses it. Training and evaluation are
research commands: ``python -m inference.lab --help``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from inference.catalog import is_known, unknown_exercise_message
from inference.io import FORMATS


def _cmd_count(args: argparse.Namespace) -> int:
    from inference.density import Exemplar, default_counter, load_counter_cached
    from inference.io import RecordingError, read_recording
    from inference.model import DEFAULT_MODEL_PATH, ModelFileError, load_model_cached, read_spec
    from inference.pipeline import choose_method, count_recording
    from inference.results import CountingError

    model_path = args.model or DEFAULT_MODEL_PATH
    try:
        spec = read_spec(model_path)  # the method is chosen from the spec; the network loads only when needed
    except ModelFileError as exc:
        print(f"error: --model: {exc}", file=sys.stderr)
        return 2
    exemplar = None
    if args.exemplar:
        path, reps = args.exemplar
        try:
            exemplar = Exemplar(read_recording(path, args.format), reps)
        except (RecordingError, ValueError, OSError) as exc:
            print(f"error: --exemplar: {path}: {exc}", file=sys.stderr)
            return 2
    try:
        counter = load_counter_cached(args.counter) if args.counter else default_counter()
    except (OSError, ValueError) as exc:
        print(f"error: --counter: {exc}", file=sys.stderr)
        return 2
    if exemplar is not None and counter is None:
        print("warning: --exemplar: no learned counter is installed; counting without it", file=sys.stderr)
    status = 0
    for path in args.paths:
        out: dict = {"file": path}
        try:
            recording = read_recording(path, args.format)
            needs_model = choose_method(recording, spec, args.exercise) == "classifier"
            model = load_model_cached(model_path) if needs_model else None
            result = count_recording(recording, model=model, exercise=args.exercise, counter=counter, exemplar=exemplar)
            out.update(result.to_dict(with_repetitions=args.repetitions))
        except ModelFileError as exc:  # the model, not this file: nothing else can be counted
            print(f"error: --model: {exc}", file=sys.stderr)
            return 2
        except (RecordingError, CountingError, OSError) as exc:
            out.update({"total_reps": 0, "model_version": None, "sets": [], "error": str(exc)})
            status = 1
        print(json.dumps(out), flush=True)
    return status


def _exemplar_arg(value: str) -> tuple[str, int]:
    """``PATH:REPS`` -> (path, reps); the last colon splits, so a path may hold colons."""
    path, sep, reps = value.rpartition(":")
    if not sep or not path or not reps.isdigit() or int(reps) < 1:
        raise argparse.ArgumentTypeError(f"expected PATH:REPS with REPS a positive whole number; got {value!r}")
    return path, int(reps)


def _cmd_exercises(args: argparse.Namespace) -> int:
    from inference.catalog import catalog_with_methods
    from inference.model import DEFAULT_MODEL_PATH, ModelFileError, read_spec

    try:
        spec = read_spec(args.model) if args.model else read_spec(DEFAULT_MODEL_PATH)
    except ModelFileError:
        spec = None
    for entry in catalog_with_methods(spec):
        print(json.dumps(entry), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    count = sub.add_parser("count", help="count repetitions in recordings, one JSON line per file")
    count.add_argument("paths", nargs="+", metavar="PATH")
    count.add_argument("--format", default="exermote", choices=FORMATS)
    count.add_argument(
        "--exercise", default=None, help="exercise hint: a catalog id (`exercises` lists them) or unknown"
    )
    count.add_argument("--model", default=None, help="model file (default: the shipped model)")
    count.add_argument(
        "--counter", default=None, help="learned counter file (.onnx; default: the shipped counter, if any)"
    )
    count.add_argument(
        "--exemplar",
        type=_exemplar_arg,
        default=None,
        metavar="PATH:REPS",
        help="a recording (same format) holding exactly REPS repetitions of the movement to count",
    )
    count.add_argument("--repetitions", action="store_true", help="include each repetition's times")
    count.set_defaults(func=_cmd_count)

    exercises = sub.add_parser("exercises", help="list the exercise catalog, one JSON line per exercise")
    exercises.add_argument("--model", default=None, help="model whose methods to show (default: the shipped one)")
    exercises.set_defaults(func=_cmd_exercises)

    args = parser.parse_args(argv)
    if getattr(args, "exercise", None) and not is_known(args.exercise):
        count.error(f"argument --exercise: {unknown_exercise_message(args.exercise)}")
    logging.basicConfig(level=logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
