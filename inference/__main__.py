"""Command line: ``python -m inference count [--format F] [--exercise E] PATH...``.

``count`` prints one JSON object per input file, one per line (architecture.md,
"Contracts"): ``{"file", "total_reps", "model_version", "sets": [...]}``. Training and
evaluation are research commands: ``python -m inference.lab --help``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from inference.io import FORMATS


def _cmd_count(args: argparse.Namespace) -> int:
    from inference.io import RecordingError, read_recording
    from inference.model import load_model
    from inference.pipeline import count_recording, get_default_model
    from inference.results import CountingError

    model = load_model(args.model) if args.model else get_default_model()
    status = 0
    for path in args.paths:
        out: dict = {"file": path}
        try:
            result = count_recording(read_recording(path, args.format), model=model, exercise=args.exercise)
            out.update(result.to_dict(with_repetitions=args.repetitions))
        except (RecordingError, CountingError, OSError) as exc:
            out.update({"total_reps": 0, "model_version": None, "sets": [], "error": str(exc)})
            status = 1
        print(json.dumps(out), flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    count = sub.add_parser("count", help="count repetitions in recordings, one JSON line per file")
    count.add_argument("paths", nargs="+", metavar="PATH")
    count.add_argument("--format", default="exermote", choices=FORMATS)
    count.add_argument("--exercise", default=None, help="exercise hint, e.g. jump_rope")
    count.add_argument("--model", default=None, help="model file (default: the shipped model)")
    count.add_argument("--repetitions", action="store_true", help="include each repetition's times")
    count.set_defaults(func=_cmd_count)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
