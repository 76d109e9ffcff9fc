"""Research command line: ``python -m inference.lab <command>``.

Commands: train, evaluate, distill, rescore, export, evaluate-peaks, evaluate-counter,
evaluate-counter-folds (``--learned``: the learned counter), train-counter.

Training and leave-one-subject-out evaluation of the phase classifier on the Exermote
recordings, counting saved held-out probabilities again, and the peak counter's CaRa
evaluation. Counting recordings is ``python -m inference count``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path


def _hp_from_args(args: argparse.Namespace):
    from inference.lab.train import Hyperparameters

    keys = (
        "epochs", "seed", "train_stride", "architecture", "window", "ensemble", "augment_time_warp", "derived_channels",
        "cycle_match",
    )  # fmt: skip
    overrides = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if overrides.get("architecture") == "window":
        overrides.setdefault("window", 40)  # Exermote's window
        overrides.setdefault("ensemble", 1)  # as measured in the README
    return Hyperparameters(**overrides)


def _cmd_train(args: argparse.Namespace) -> int:
    from inference.lab.evaluate import headline, loso, markdown, save_heldout
    from inference.lab.report import write_report
    from inference.lab.train import train

    hp = _hp_from_args(args)
    evaluation = None
    if not args.skip_evaluation:
        kept: list = []
        report = loso(Path(args.data), hp, verbose=args.verbose, keep=kept)
        print(markdown(report), file=sys.stderr)
        write_report(report, Path(args.report), examples=_examples(kept))
        evaluation = headline(report)
        if args.save_probabilities:
            save_heldout(Path(args.save_probabilities), report, kept)
    # the break weight best on every athlete's held-out probabilities; 1 without LOSO
    counting = {"break_weight": evaluation["overall"]["break_weight"]} if evaluation else {}
    spec = train(
        Path(args.data),
        Path(args.out) if args.out else None,
        hp,
        evaluation=evaluation,
        counting=counting,
        verbose=args.verbose,
    )
    print(json.dumps({"version": spec.version, "evaluation": spec.evaluation.get("overall")}))
    return 0


def _cmd_distill(args: argparse.Namespace) -> int:
    from inference.lab.distill import DISTILLED, choose_variant, loso_distill, markdown, train_shipped, write_report

    hp = _hp_from_args(args)
    if hp.architecture != "sequence":
        print("distill: needs the sequence architecture", file=sys.stderr)
        return 2
    if args.teacher_weight is not None:
        if not 0.0 <= args.teacher_weight <= 1.0:
            print("distill: --teacher-weight must be within [0, 1]", file=sys.stderr)
            return 2
        hp = replace(hp, teacher_weight=args.teacher_weight)
    sizes = tuple(sorted({int(k) for k in args.sizes.split(",")} | {hp.ensemble}))
    if min(sizes) < 1:
        print("distill: --sizes must be positive", file=sys.stderr)
        return 2
    report = None
    if args.reuse_report:
        report = json.loads(Path(args.report).read_text())
    elif not args.skip_evaluation:
        save = Path(args.save_probabilities) if args.save_probabilities else None
        report = loso_distill(Path(args.data), hp, sizes=sizes, save_probabilities=save, verbose=args.verbose)
        write_report(report, Path(args.report))
        print(markdown(report), file=sys.stderr)
    variant = args.ship or (choose_variant(report) if report else DISTILLED)
    spec = train_shipped(
        report, Path(args.data), Path(args.out) if args.out else None, hp, variant=variant, verbose=args.verbose
    )
    print(json.dumps({"version": spec.version, "variant": variant, "evaluation": spec.evaluation.get("overall")}))
    return 0


def _examples(kept: list) -> list:
    """One held-out recording per athlete for the report's plots."""
    seen, out = set(), []
    for item in kept:
        if item[0].subject not in seen:
            seen.add(item[0].subject)
            out.append(item)
    return out


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from inference.lab.evaluate import loso, loso_baseline, markdown, save_heldout
    from inference.lab.report import write_report
    from inference.lab.self_training import SelfTraining

    if args.baseline:
        report = loso_baseline(Path(args.data), epochs=args.epochs or 20, seed=args.seed or 0)
        print(markdown(report))
        Path(args.report or "reports/baseline.json").parent.mkdir(parents=True, exist_ok=True)
        Path(args.report or "reports/baseline.json").write_text(json.dumps(report, indent=1))
        return 0
    kept: list = []
    try:
        adapting = SelfTraining(rounds=args.self_train, scope=args.self_train_scope, anchored=not args.unanchored)
    except ValueError as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    hp = _hp_from_args(args)
    if adapting.rounds and hp.architecture != "sequence":
        print("evaluate: --self-train needs the sequence architecture", file=sys.stderr)
        return 2
    report = loso(Path(args.data), hp, verbose=args.verbose, keep=kept, self_training=adapting)
    print(markdown(report))
    if args.report:
        write_report(report, Path(args.report), examples=_examples(kept))
    if args.save_probabilities:
        save_heldout(Path(args.save_probabilities), report, kept)
    return 0


def _cmd_rescore(args: argparse.Namespace) -> int:
    from inference.lab.evaluate import markdown, rescore

    overrides = {
        k: v
        for k, v in (
            ("cycle_match", args.cycle_match),
            ("smoothing_s", args.smoothing),
            ("decoder", args.decoder),
            ("break_weight", args.break_weight),
        )
        if v is not None
    }
    try:
        report = rescore(Path(args.path), Path(args.data), counting=overrides)
    except (OSError, ValueError) as exc:
        print(f"rescore: {exc}", file=sys.stderr)
        return 2
    print(markdown(report))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from inference.export import ExportError
    from inference.lab.export import run
    from inference.model import DEFAULT_KERAS_PATH, ModelFileError

    source = Path(args.model) if args.model else DEFAULT_KERAS_PATH
    try:
        sidecar = run(
            source, Path(args.out) if args.out else source.with_suffix(".onnx"), Path(args.data), args.tolerance
        )
    except (ExportError, ModelFileError) as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(sidecar))
    return 1 if sidecar["counts_differ"] else 0


def _cmd_evaluate_peaks(args: argparse.Namespace) -> int:
    from inference.lab.evaluate_peaks import main

    return main([args.data]) or 0


def _cmd_evaluate_counter(args: argparse.Namespace) -> int:
    from inference.lab.evaluate_counter import main

    return main(["--data", args.data] + (["--json", args.json] if args.json else []))


def _cmd_evaluate_counter_folds(args: argparse.Namespace) -> int:
    if args.learned:
        from inference.lab.learned_folds import main as learned_main

        return learned_main(["--data", args.data] + (["--json", args.json] if args.json else []))
    from inference.lab.counter_folds import main

    extra = (["--json", args.json] if args.json else []) + (["--sweep", args.sweep] if args.sweep else [])
    return main(["--data", args.data, *extra])


def _add_counter_commands(sub, data_root: str) -> None:
    """The generic counter's evaluations: one split, and parameters chosen per fold."""
    counter = sub.add_parser(
        "evaluate-counter", help="the generic counter on every CaRa and muvr set (tune P1-P3, check P4-P6, muvr)"
    )
    counter.add_argument("--data", default=data_root)
    counter.add_argument("--json", default=None, help="also write rows and report as JSON here")
    counter.set_defaults(func=_cmd_evaluate_counter)
    folds = sub.add_parser(
        "evaluate-counter-folds",
        help="the generic counter's ratios chosen per fold: leave-one-class-out, leave-one-subject-out, Exermote",
    )
    folds.add_argument("--data", default=data_root)
    folds.add_argument("--json", default=None, help="also write the report as JSON here")
    folds.add_argument("--sweep", default=None, help="NAME=v1,v2,...: one generic constant at each value instead")
    folds.add_argument(
        "--learned",
        action="store_true",
        help="the learned counter instead, with and without exemplars, beside the generic one (issue 28)",
    )
    folds.set_defaults(func=_cmd_evaluate_counter_folds)
    train = sub.add_parser(
        "train-counter",
        help="train the learned counter on every CaRa and muvr set and Exermote athletes 1-2, export it to ONNX "
        "with the routing the held-out folds chose, check it on Exermote athletes 3-4",
    )
    train.add_argument("--data", default=data_root)
    train.add_argument("--epochs", type=int, default=None)
    train.set_defaults(func=_cmd_train_counter)


def _cmd_train_counter(args: argparse.Namespace) -> int:
    from inference.lab.train_counter import main

    return main(["--data", args.data] + (["--epochs", str(args.epochs)] if args.epochs else []))


def _add_distill_command(sub, data_dir: str) -> None:
    """One network distilled from the ensemble, measured beside smaller ensembles (issue 31)."""
    distill = sub.add_parser(
        "distill",
        help="LOSO: ensembles of each size and one network distilled from the ensemble; then train on all "
        "athletes and save the distilled network if it measures within one set of the ensemble, else the "
        "smallest ensemble that does",
    )
    distill.add_argument("--data", default=data_dir, help="folder of Exermote CSV files")
    distill.add_argument("--epochs", type=int, default=None)
    distill.add_argument("--seed", type=int, default=None)
    distill.add_argument("--ensemble", type=int, default=None, help="networks of the teacher (default 10)")
    distill.add_argument("--sizes", default="1,3,5", help="smaller ensembles to measure from the same members")
    distill.add_argument(
        "--teacher-weight", dest="teacher_weight", type=float, default=None, help="teacher's share of the targets"
    )
    distill.add_argument("--ship", default=None, help="save this variant (distilled, ensemble-K) whatever LOSO says")
    distill.add_argument("--skip-evaluation", action="store_true", help="do not run LOSO first")
    distill.add_argument(
        "--reuse-report", action="store_true", help="take the LOSO figures from --report (written by an earlier run)"
    )
    distill.add_argument("--report", default="reports/distill.json", help="LOSO figures (JSON, and .md beside)")
    distill.add_argument("--save-probabilities", default=None, metavar="NPZ", help="held-out probabilities per variant")
    distill.add_argument("--out", default=None, help="model file (default inference/models/default.keras)")
    distill.add_argument("--verbose", type=int, default=0)
    distill.set_defaults(func=_cmd_distill)


def main(argv: list[str] | None = None) -> int:
    from inference.lab.train import DEFAULT_DATA_DIR

    parser = argparse.ArgumentParser(prog="python -m inference.lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    for name, func, helptext in (
        ("train", _cmd_train, "LOSO-evaluate, then train on all athletes and save the model"),
        ("evaluate", _cmd_evaluate, "leave-one-subject-out evaluation"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="folder of Exermote CSV files")
        p.add_argument("--epochs", type=int, default=None)
        p.add_argument("--seed", type=int, default=None)
        p.add_argument("--train-stride", dest="train_stride", type=int, default=None)
        p.add_argument("--architecture", choices=("window", "sequence"), default=None)
        p.add_argument("--window", type=int, default=None, help="window (window model) or crop (sequence model)")
        p.add_argument("--ensemble", type=int, default=None, help="networks averaged (seeds seed, seed+1, ...)")
        p.add_argument(
            "--time-warp", dest="augment_time_warp", type=float, default=None, help="tempo augmentation, e.g. 0.15"
        )
        p.add_argument(
            "--no-derived-channels",
            dest="derived_channels",
            action="store_const",
            const=(),
            default=None,
            help="read the device-frame channels only, without those along and across gravity",
        )
        p.add_argument(
            "--cycle-match",
            dest="cycle_match",
            type=float,
            default=None,
            help="least correlation for a cycle to extend its set (default 0.9; 0: off)",
        )
        p.add_argument(
            "--save-probabilities",
            default=None,
            metavar="NPZ",
            help="write the held-out phase probabilities here, for rescore",
        )
        p.add_argument("--verbose", type=int, default=0)
        p.set_defaults(func=func)
        if name == "train":
            p.add_argument("--out", default=None, help="model file (default inference/models/default.keras)")
            p.add_argument("--skip-evaluation", action="store_true", help="do not run LOSO first")
            p.add_argument("--report", default="reports/loso.md", help="where to write the LOSO report")
        else:
            p.add_argument("--report", default=None, help="write a Markdown report with figures here")
            p.add_argument("--baseline", action="store_true", help="the original app's method on the same folds")
            p.add_argument(
                "--self-train", dest="self_train", type=int, default=0, metavar="ROUNDS",
                help="then adapt each fold's networks to the held-out athlete on its decoded phases, ROUNDS times",
            )  # fmt: skip
            p.add_argument(
                "--self-train-scope", dest="self_train_scope", choices=("athlete", "session"), default="athlete",
                help="adapt on all of the athlete's sessions together, or on each session alone",
            )  # fmt: skip
            p.add_argument(
                "--unanchored", action="store_true", help="self-train without the labelled training athletes"
            )

    _add_distill_command(sub, str(DEFAULT_DATA_DIR))

    rescore = sub.add_parser("rescore", help="count saved LOSO held-out probabilities again, without training")
    rescore.add_argument("path", metavar="NPZ", help="written by train/evaluate --save-probabilities")
    rescore.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="folder of Exermote CSV files")
    rescore.add_argument("--cycle-match", dest="cycle_match", type=float, default=None, help="override (0: off)")
    rescore.add_argument("--smoothing", type=float, default=None, help="override the smoothing width (s)")
    rescore.add_argument("--decoder", choices=("viterbi", "argmax"), default=None, help="override the decoder")
    rescore.add_argument(
        "--break-weight", dest="break_weight", type=float, default=None, help="one for every fold (default: chosen)"
    )
    rescore.set_defaults(func=_cmd_rescore)

    export = sub.add_parser(
        "export", help="export a .keras model to .onnx for the serving runtime, checked on every Exermote recording"
    )
    export.add_argument("--model", default=None, help="the .keras file (default inference/models/default.keras)")
    export.add_argument("--out", default=None, help="the .onnx file (default: beside the model)")
    export.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="Exermote CSV files to check on")
    export.add_argument("--tolerance", type=float, default=1e-4, help="largest probability difference allowed")
    export.set_defaults(func=_cmd_export)

    peaks = sub.add_parser("evaluate-peaks", help="evaluate the peak counter on the CaRa recordings")
    peaks.add_argument("--data", default=str(DEFAULT_DATA_DIR.parent / "cara"))
    peaks.set_defaults(func=_cmd_evaluate_peaks)

    _add_counter_commands(sub, str(DEFAULT_DATA_DIR.parent))

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", 0) else logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
