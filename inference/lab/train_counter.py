"""Training the learned counter (:mod:`inference.density`) from set counts alone.

Data (everything under ``../shared/data``):

- CaRa (P1-P6, 36 classes): each file is one example with its count (session 1: one clean
  set; session 2: bursts with pauses and other movement, the count covering the bursts only);
- muvr (27 exercises): each file one set;
- Exermote (athletes :data:`EXERMOTE_TRAIN`): each labelled set cut out with half of the rest
  on either side (its count), each rest between sets (count 0) and each whole workout.

The loss compares the density's sum over each example with its count (weak labels: no
repetition is located). Augmentation, new for every example every epoch: a uniformly random
rotation of the device frame (a watch sits any way), amplitude x0.7-1.4, tempo x0.75-1.33
(the count does not change), and with :data:`JOIN_P` an example is joined to a still wrist
before or after it, so that rest learns no density (Exermote's rest between sets trains as
examples of count 0).

Run by ``python -m inference.lab train-counter`` (the shipped counter) and by
:mod:`inference.lab.learned_folds` (the held-out folds).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.density import GRID_HZ, N_FEATURES, acceleration, features
from inference.io import read_recording
from inference.preprocessing import resample
from inference.scoring import true_sets

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
#: Exermote athletes whose workouts train; the others check rest and sets as ``unknown``.
EXERMOTE_TRAIN = ("1", "2")
#: Probability that an example is joined to rest.
JOIN_P = 0.5

_CARA = re.compile(r"_(\d+)\.csv$")
_MUVR = re.compile(r"^(.*)_(\d+)_reps(\d+)\.csv$")


@dataclass
class Example:
    """One stretch of accelerometer with its true count.

    ``acc``: (m, 3) float32 m/s^2 on the :data:`GRID_HZ` grid. ``kind``: ``set`` (CaRa, muvr,
    Exermote set cut), ``rest`` (count 0) or ``workout`` (Exermote, whole). ``order``: position
    among the subject's sets of the label (muvr file number, CaRa session, Exermote time).
    """

    dataset: str
    label: str
    subject: str
    name: str
    acc: np.ndarray
    count: int
    kind: str = "set"
    session: int = 0
    order: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.label}"


def _grid(recording) -> np.ndarray:
    _, acc = resample(recording.time_s, acceleration(recording), GRID_HZ)
    return acc.astype(np.float32)


def load_examples(data: Path = DEFAULT_DATA, *, exermote_subjects: tuple[str, ...] | None = None) -> list[Example]:
    """CaRa and muvr sets, and the Exermote cuts of ``exermote_subjects`` (None: all athletes)."""
    out: list[Example] = []
    for path in sorted((data / "cara").glob("*/P*/session-*/*.csv")):
        m = _CARA.search(path.name)
        if not m:
            continue
        rec = read_recording(path, "cara")
        session = int(path.parts[-2].split("-")[-1])
        out.append(Example("cara", path.parts[-4], path.parts[-3], str(path.relative_to(data)), _grid(rec),
                           int(m.group(1)), session=session, order=session))  # fmt: skip
    for path in sorted((data / "muvr").glob("*/*.csv")):
        m = _MUVR.match(path.name)
        if not m:
            continue
        rec = read_recording(path, "csv")
        out.append(Example("muvr", m.group(1), "muvr", str(path.relative_to(data)), _grid(rec), int(m.group(3)),
                           order=int(m.group(2))))  # fmt: skip
    out += exermote_examples(data, exermote_subjects)
    return out


def exermote_examples(data: Path, subjects: tuple[str, ...] | None) -> list[Example]:
    """Exermote cuts: each set with half the rest around it, each rest, each whole workout.

    Set cuts carry ``extra["set_s"]``: the labelled set's (start, end) within the cut (s).
    """
    out: list[Example] = []
    order = 0
    for path in sorted((data / "exermote").glob("*.csv")):
        rec = read_recording(path, "exermote")
        subject = str(rec.subject)
        if subjects is not None and subject not in subjects:
            continue
        set_break = np.asarray(rec.annotations["set_break"], dtype=bool)
        truth = true_sets(np.asarray(rec.labels), set_break, 1.0)
        t = rec.time_s - rec.time_s[0]
        acc = _grid(rec)
        m = acc.shape[0]
        spans = [(float(t[int(s["start_s"])]), float(t[int(s["end_s"]) - 1]), s) for s in truth]
        out.append(Example("exermote", "workout", subject, path.name, acc, sum(s["reps"] for s in truth),
                           kind="workout"))  # fmt: skip
        for i, (a, b, s) in enumerate(spans):
            lo = 0.0 if i == 0 else (spans[i - 1][1] + a) / 2
            hi = t[-1] if i == len(spans) - 1 else (b + spans[i + 1][0]) / 2
            ia, ib = round(lo * GRID_HZ), min(m, round(hi * GRID_HZ) + 1)
            order += 1
            out.append(Example("exermote", s["exercise"], subject, f"{path.name}#{i}", acc[ia:ib], int(s["reps"]),
                               order=order, extra={"set_s": (a - ia / GRID_HZ, b - ia / GRID_HZ)}))  # fmt: skip
            if i + 1 < len(spans):
                ra, rb = round((b + 1.0) * GRID_HZ), round((spans[i + 1][0] - 1.0) * GRID_HZ)
                if rb - ra > 3 * GRID_HZ:
                    out.append(Example("exermote", "rest", subject, f"{path.name}#rest{i}", acc[ra:rb], 0,
                                       kind="rest"))  # fmt: skip
    return out


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation (3, 3) (QR of a Gaussian matrix, sign-corrected)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def stretch(acc: np.ndarray, factor: float) -> np.ndarray:
    """``acc`` (m, 3) played ``factor`` times slower (linear interpolation): length ~ m * factor."""
    m = acc.shape[0]
    n = max(2, round(m * factor))
    src = np.linspace(0, m - 1, n)
    return np.stack([np.interp(src, np.arange(m), acc[:, j]) for j in range(acc.shape[1])], axis=1)


def still(rng: np.random.Generator, n: int) -> np.ndarray:
    """A still wrist: gravity in a random direction plus sensor noise and slow drift, (n, 3) m/s^2."""
    g = random_rotation(rng) @ np.array([0.0, 0.0, 9.81])
    drift = np.cumsum(rng.normal(0, 0.002, size=(n, 3)), axis=0)
    return g + drift + rng.normal(0, 0.02, size=(n, 3))


def augmented(ex: Example, rng: np.random.Generator, rests: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """One augmented copy of an example: network input (m, N_FEATURES) and its count."""
    acc = ex.acc.astype(np.float64)
    if rng.random() < JOIN_P:
        parts = [acc]
        for side in (0, 1):
            if rng.random() < 0.6:
                if rests and rng.random() < 0.6:
                    r = rests[rng.integers(len(rests))]
                    n = min(r.shape[0], int(rng.uniform(3, 30) * GRID_HZ))
                    a = rng.integers(0, r.shape[0] - n + 1)
                    piece = r[a : a + n].astype(np.float64)
                else:
                    piece = still(rng, int(rng.uniform(3, 20) * GRID_HZ))
                # carry the piece into the example's orientation: match its mean direction
                piece = piece - piece.mean(axis=0) + (acc[:10] if side == 0 else acc[-10:]).mean(axis=0)
                parts.insert(0 if side == 0 else len(parts), piece)
        acc = np.concatenate(parts)
    acc = acc @ random_rotation(rng).T
    acc = stretch(acc, float(np.exp(rng.uniform(np.log(0.75), np.log(1.33)))))
    x = features(acc, GRID_HZ) * float(np.exp(rng.uniform(np.log(0.7), np.log(1.4))))
    return x.astype(np.float32), ex.count


def build_network(filters: int = 32, dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32), seed: int = 0):
    """Dilated residual 1D CNN: (batch, time, N_FEATURES) -> density (batch, time), softplus.

    Receptive field 2 * sum(dilations) + 5 steps (13.1 s at 10 Hz): two of the slowest repetitions.
    """
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape=(None, N_FEATURES), name="acc_features")
    h = layers.Conv1D(filters, 5, padding="same", activation="relu", name="stem")(inp)
    for d in dilations:
        z = layers.Conv1D(filters, 3, padding="same", dilation_rate=d, activation="relu", name=f"dil{d}")(h)
        z = layers.Conv1D(filters, 1, name=f"mix{d}")(z)
        h = layers.Add(name=f"res{d}")([h, z])
        h = layers.Activation("relu", name=f"act{d}")(h)
    # softplus(0) / 10 = 0.07 per step (0.7 repetitions a second at 10 Hz): a start near typical
    # counts, where the softplus still passes gradient (a bias far below 0 would starve it)
    out = layers.Conv1D(1, 1, activation="softplus", name="density")(h)
    out = layers.Rescaling(1.0 / GRID_HZ, name="per_step_rate")(out)
    out = layers.Reshape((-1,), name="per_step")(out)
    return keras.Model(inp, out, name="repetition_density")


@dataclass(frozen=True)
class CounterHyperparameters:
    epochs: int = 40
    batch: int = 4
    learning_rate: float = 3e-3
    filters: int = 32
    seed: int = 0
    max_len_s: float = 150.0
    #: Join examples to stretches of Exermote rest too (else to a still wrist only). Off: that rest
    #: holds walking, which CaRa counts as a class (held-out classes fold, CaRa MAE 10.83 with it,
    #: 8.83 without; muvr 5.81 and 4.90).
    join_rest: bool = False

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _batches(items: list[tuple[np.ndarray, int]], batch: int, rng: np.random.Generator):
    order = sorted(range(len(items)), key=lambda i: items[i][0].shape[0] * rng.uniform(0.8, 1.25))
    groups = [order[i : i + batch] for i in range(0, len(order), batch)]
    rng.shuffle(groups)
    for g in groups:
        t = max(items[i][0].shape[0] for i in g)
        x = np.zeros((len(g), t, N_FEATURES), np.float32)
        mask = np.zeros((len(g), t), np.float32)
        y = np.zeros(len(g), np.float32)
        for k, i in enumerate(g):
            n = items[i][0].shape[0]
            x[k, :n], mask[k, :n], y[k] = items[i][0], 1.0, items[i][1]
        yield x, mask, y


def train_density(
    examples: list[Example], hp: CounterHyperparameters = CounterHyperparameters(), *, log: Callable = print
):
    """Train a density network on ``examples``; returns the Keras model.

    Loss: Huber (delta 1) of ``(sum(density) - count) / sqrt(count + 1)`` per example, so a set
    of 100 claps and one of 5 pull-ups weigh alike per relative error.
    """
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(hp.seed)
    net = build_network(hp.filters, seed=hp.seed)
    # clipped: one early batch of long workouts can push the softplus so far below 0 that no
    # gradient comes back (a network counting 0 everywhere, seen once)
    opt = keras.optimizers.Adam(hp.learning_rate, clipnorm=1.0)
    rests = [e.acc for e in examples if e.kind == "rest"] if hp.join_rest else []
    max_len = int(hp.max_len_s * GRID_HZ)
    huber = keras.losses.Huber(delta=1.0, reduction="none")

    @tf.function(reduce_retracing=True)
    def step(x, mask, y):
        with tf.GradientTape() as tape:
            d = net(x, training=True)
            total = tf.reduce_sum(d * mask, axis=1)
            scale = tf.sqrt(y + 1.0)
            loss = tf.reduce_mean(huber(y[:, None] / scale[:, None], total[:, None] / scale[:, None]))
        grads = tape.gradient(loss, net.trainable_variables)
        opt.apply_gradients(zip(grads, net.trainable_variables, strict=True))
        return loss, tf.reduce_mean(tf.abs(total - y))

    for epoch in range(hp.epochs):
        if epoch == int(hp.epochs * 0.75):
            opt.learning_rate.assign(hp.learning_rate * 0.3)
        items = []
        for ex in examples:
            x, c = augmented(ex, rng, rests)
            if x.shape[0] > max_len and ex.kind != "workout":  # a cut would lose the count; workouts stay whole
                continue
            items.append((x, c))
        losses, maes = [], []
        for x, mask, y in _batches(items, hp.batch, rng):
            loss, mae = step(tf.constant(x), tf.constant(mask), tf.constant(y))
            losses.append(float(loss))
            maes.append(float(mae))
        log(f"epoch {epoch + 1}/{hp.epochs}: loss {np.mean(losses):.3f}, count MAE {np.mean(maes):.2f}")
    return net


def predict_density(net, acc: np.ndarray) -> np.ndarray:
    """Density (m,) of one (m, 3) m/s^2 grid stretch with a Keras network (the lab's path)."""
    x = features(acc.astype(np.float64), GRID_HZ)
    return np.maximum(np.asarray(net(x[None], training=False))[0].astype(np.float64), 0.0)


def data_digest(examples: list[Example]) -> str:
    """SHA-256 over the examples' names and counts (which data trained a counter)."""
    h = hashlib.sha256()
    for e in examples:
        h.update(f"{e.name}:{e.count}:{e.acc.shape[0]}\n".encode())
    return h.hexdigest()


def summary_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=1, sort_keys=True))


#: ``producer_name`` of the counter files this module writes.
PRODUCER = "inference.lab.train_counter"
#: Largest difference between Keras' and ONNX Runtime's density (repetitions per step) on the
#: check inputs that an export may have.
EXPORT_TOLERANCE = 1e-4


def export_counter(net, spec, out_path: Path, check: list[np.ndarray]) -> dict:
    """Write the network as ``.onnx`` with its :class:`~inference.density.CounterSpec` and check it.

    Args:
        net: the Keras density network. spec: its CounterSpec. out_path: the ``.onnx``.
        check: network inputs (m, N_FEATURES) float32 compared between Keras and ONNX Runtime.

    Returns:
        The export record (``max_abs_diff``, ``count_diff`` over the check inputs, versions).

    Raises:
        RuntimeError: the export differs from Keras beyond :data:`EXPORT_TOLERANCE`.
    """
    import tempfile

    import onnx
    import tensorflow as tf

    from inference.density import SPEC_KEY, run_chunked
    from inference.export import OPSET, converter_versions, save_with_metadata
    from inference.runtime import EXPORT_KEY, OnnxNetwork

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        signature = [tf.TensorSpec((None, None, N_FEATURES), tf.float32, name="x")]
        net.export(str(raw), format="onnx", verbose=False, input_signature=signature, opset_version=OPSET)
        runtime = OnnxNetwork(raw)
        worst, count_diff = 0.0, 0.0
        for x in check:
            ref = np.asarray(net(x[None], training=False))[0]
            got = run_chunked(runtime, x)
            worst = max(worst, float(np.max(np.abs(np.maximum(ref, 0) - got))))
            count_diff = max(count_diff, abs(float(ref.sum() - got.sum())))
        if worst > EXPORT_TOLERANCE:
            raise RuntimeError(f"the ONNX export differs from Keras by {worst:.2e} > {EXPORT_TOLERANCE:g}")
        record = {"max_abs_diff": worst, "max_count_diff": count_diff, "check_inputs": len(check),
                  "opset": OPSET, "versions": converter_versions(), "tolerance": EXPORT_TOLERANCE}  # fmt: skip
        entries = {SPEC_KEY: spec.to_dict(), EXPORT_KEY: record}
        save_with_metadata(onnx.load(str(raw)), out_path, entries, producer=PRODUCER)
    return record


def write_spec(path: Path, spec) -> None:
    """Replace the :class:`~inference.density.CounterSpec` in an exported counter file."""
    import onnx

    from inference.density import SPEC_KEY
    from inference.export import save_with_metadata
    from inference.runtime import read_onnx_metadata

    entries = {key: json.loads(value) for key, value in read_onnx_metadata(path).items()}
    entries[SPEC_KEY] = spec.to_dict()
    save_with_metadata(onnx.load(str(path)), path, entries, producer=PRODUCER)


def exermote_check(path: Path, data: Path) -> dict:
    """The exported counter on the Exermote athletes it never trained on, beside the generic counter.

    Whole workouts, counted as ``unknown``: sets scored as :func:`inference.scoring.score_sets`
    scores them, repetitions centred in labelled rest per hour. Set cuts (each set with half the
    rest around it): counted alone and with the athlete's first set of the exercise as exemplar
    (its labelled range), for the later sets.
    """
    from inference.density import DensityCounter, Exemplar
    from inference.generic import count_generic
    from inference.lab.counter_folds import exermote_workouts, score_exermote
    from inference.lab.evaluate_counter import summarise

    counter = DensityCounter(path)
    workouts = [w for w in exermote_workouts(data) if str(w[1].subject) not in EXERMOTE_TRAIN]
    counters = {
        "generic": count_generic,
        "learned": counter.count,
        "hybrid": lambda rec: counter.count_in_sets(rec, count_generic(rec)),
    }
    out: dict = {"workouts": {}, "set_cuts": {}}
    for name, count in counters.items():
        scored = score_exermote(workouts, count)
        out["workouts"][name] = {
            **summarise(scored["rows"]),
            "rest_hours": scored["rest_hours"],
            "reps_in_rest": scored["phantom_reps"],
            "per_rest_hour": scored["per_rest_hour"],
        }
    rows, first = [], {}
    for _, rec, truth, _, _ in workouts:
        t = rec.time_s - rec.time_s[0]
        for i, s in enumerate(truth):
            a, b = s["start_s"] - float(rec.time_s[0]), s["end_s"] - float(rec.time_s[0])
            lo = 0.0 if i == 0 else (truth[i - 1]["end_s"] - float(rec.time_s[0]) + a) / 2
            hi = float(t[-1]) if i == len(truth) - 1 else (b + truth[i + 1]["start_s"] - float(rec.time_s[0])) / 2
            cut = Exemplar.from_range(rec, lo, hi, max(1, s["reps"])).recording
            row = {"true": s["reps"], "generic": sum(x.reps for x in count_generic(cut)),
                   "learned": sum(x.reps for x in counter.count(cut))}  # fmt: skip
            key = (str(rec.subject), s["exercise"])
            if key in first:
                ex = first[key]
                row["learned_exemplar"] = sum(x.reps for x in counter.count(cut, exemplar=ex))
                row["hybrid_exemplar"] = sum(
                    x.reps for x in counter.count_in_sets(cut, count_generic(cut), exemplar=ex)
                )
                row["generic_alone"] = row["generic"]
            else:
                first[key] = Exemplar.from_range(rec, a, b, s["reps"])
            rows.append(row)
    for key in ("generic", "learned"):
        out["set_cuts"][key] = summarise([{"true": r["true"], "pred": r[key]} for r in rows])
    with_ex = [r for r in rows if "learned_exemplar" in r]
    out["set_cuts"]["with_exemplar_sets"] = {
        key: summarise([{"true": r["true"], "pred": r[key]} for r in with_ex])
        for key in ("generic_alone", "learned", "learned_exemplar", "hybrid_exemplar")
    }
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m inference.lab train-counter``: train, export and check the shipped counter."""
    import argparse

    from inference.density import DEFAULT_COUNTER_PATH, CounterSpec
    from inference.lab.learned_folds import FOLD_EPOCHS, SHIPPED_FOLD, choose_routing, folds, shipped_network

    parser = argparse.ArgumentParser(prog="python -m inference.lab train-counter", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_COUNTER_PATH)
    parser.add_argument("--epochs", type=int, default=FOLD_EPOCHS)
    parser.add_argument("--folds", type=Path, default=Path("reports/learned_folds.json"),
                        help="the held-out report that chooses the routing (learned-folds)")  # fmt: skip
    args = parser.parse_args(argv)
    examples = load_examples(args.data)
    hp = CounterHyperparameters(epochs=args.epochs)
    net = shipped_network(examples, hp)
    trained = [examples[i] for i in folds(examples)[SHIPPED_FOLD][0]]
    digest = data_digest(trained)
    routing, evaluation = {}, {}
    if args.folds.exists():
        report = json.loads(args.folds.read_text())
        routing = choose_routing(report)
        evaluation["folds"] = report["tables"]
    spec = CounterSpec(
        version=f"density-cnn-{digest[:10]}",
        routing=routing,
        training={
            "fold": SHIPPED_FOLD,
            "data_digest": digest,
            "examples": len(trained),
            "hyperparameters": hp.to_dict(),
            "exermote_athletes": list(EXERMOTE_TRAIN),
        },
        evaluation=evaluation,
    )
    rng = np.random.default_rng(0)
    check = [features(e.acc.astype(np.float64), GRID_HZ) for e in examples[:: max(1, len(examples) // 20)]]
    check.append(rng.normal(0, 0.3, size=(30_000, N_FEATURES)).astype(np.float32))  # longer than a chunk
    record = export_counter(net, spec, args.out, check)
    evaluation["exermote_held_out"] = exermote_check(args.out, args.data)
    spec = CounterSpec(**{**spec.to_dict(), "evaluation": evaluation})
    write_spec(args.out, spec)
    sha = hashlib.sha256(args.out.read_bytes()).hexdigest()
    meta = {
        "file": args.out.name,
        "sha256": sha,
        "version": spec.version,
        "routing": routing,
        "training": spec.training,
        "export": record,
        "exermote_held_out": evaluation["exermote_held_out"],
    }
    summary_json(args.out.with_name(args.out.name + ".json"), meta)
    print(json.dumps(meta, indent=1))  # noqa: T201
    return 0
