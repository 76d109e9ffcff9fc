"""Training the phase classifier on the Exermote recordings.

Data: ``../shared/data/exermote/`` (Lerner 2017): 30 labelled 5-minute sessions of
athletes 1-4, iPhone on the upper arm, 10 Hz. Labels per sample: ``break``,
``<exercise>.first_half``, ``<exercise>.second_half`` for burpee, squat and sit_up.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from inference.counting import CountingParams, runs
from inference.io import BREAK, EXERMOTE_CHANNELS, Recording, read_recording
from inference.model import build_network, build_sequence_network, save_model
from inference.preprocessing import DERIVED_CHANNELS, Scaler, derive_channels, windows
from inference.scoring import Labelled, label_recording
from inference.spec import ModelSpec

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "exermote"
#: Gravity, user acceleration and gyroscope of the 12 Exermote iPhone channels. The
#: attitude angles are left out: pitch and roll repeat the gravity vector and yaw is a
#: heading with an arbitrary origin; none of them can be re-oriented for augmentation.
MODEL_CHANNELS: tuple[str, ...] = tuple(c for c in EXERMOTE_CHANNELS if c not in ("pitch", "roll", "yaw"))
PHASE_LABELS: tuple[str, ...] = (
    "break",
    "burpee.first_half", "burpee.second_half",
    "squat.first_half", "squat.second_half",
    "sit_up.first_half", "sit_up.second_half",
)  # fmt: skip


@dataclass(frozen=True)
class Hyperparameters:
    """Everything that decides a trained model; stored in its spec's ``hyperparameters``.

    Why each default is what it is, with the leave-one-subject-out figures that chose it:
    ``docs/accuracy.md``, "Why the hyperparameters are what they are".
    """

    # "sequence": conv + BiLSTM over whole sessions; "window": Exermote's CNN-LSTM, one
    # 40-sample window per sample.
    architecture: str = "sequence"
    channels: tuple[str, ...] = MODEL_CHANNELS
    # Appended to `channels`: acceleration and rotation along and across gravity, which do not
    # change with the phone's orientation.
    derived_channels: tuple[str, ...] = DERIVED_CHANNELS
    sample_rate_hz: float = 10.0
    window: int = 256  # sequence model: training crop (samples); window model: Exermote's 40
    label_offset: int = 20  # Exermote: label 20 samples before the window's end
    chunk: int = 600  # sequence model: samples labelled per chunk at inference
    context: int = 100  # sequence model: samples read on each side of a chunk
    angle_encoding: str = "sin"
    train_stride: int = 2
    epochs: int = 10  # sequence model; more epochs overfit one athlete
    batch_size: int = 256
    learning_rate: float = 2e-3
    conv_filters: int = 32
    lstm_units: int = 32
    class_weighting: bool = True
    augment_copies: int = 3  # augmented copies of each recording, besides the original
    augment_scale: float = 0.1  # amplitude scaling +-10 %
    augment_rotation_deg: float = 10.0  # small rotations of the device frame
    # Local tempo changes of at most +-this share (0: off); tempo warping made sit-up halves
    # count as repetitions.
    augment_time_warp: float = 0.0
    # Networks trained with seeds seed, seed+1, ... whose probabilities are averaged (a deep
    # ensemble): single networks vary too much between seeds.
    ensemble: int = 10
    # Distillation (inference.lab.distill): a network trained on the averaged probabilities of
    # `teacher_ensemble` networks (0: on the phases alone), mixed with the true phases; the
    # teacher's share of the targets.
    teacher_ensemble: int = 0
    teacher_weight: float = 0.5
    seed: int = 0
    # Counting: a set is extended by cycles that correlate with its own at this or more
    # (inference.cycles; 0: off); the least value that adds no repetition in labelled rest.
    cycle_match: float = 0.9
    # Counting: candidate factors on the break probability (CountingParams.break_weight). Each
    # LOSO fold takes the one that counts best on the other athletes' held-out probabilities,
    # the shipped model the one best on all four (inference.lab.evaluate.score_heldout); () is 1.
    break_weights: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(31))
    labels: tuple[str, ...] = field(default=PHASE_LABELS)

    @property
    def input_channels(self) -> tuple[str, ...]:
        """What the network reads: ``channels`` then ``derived_channels``."""
        return self.channels + self.derived_channels

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["derived_channels"] = list(self.derived_channels)
        d["labels"] = list(self.labels)
        d["break_weights"] = list(self.break_weights)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Hyperparameters:
        """Inverse of :meth:`to_dict`. Raises TypeError on a key that is not a hyperparameter."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def load_exermote(data_dir: Path = DEFAULT_DATA_DIR) -> list[Recording]:
    """All labelled Exermote recordings in ``data_dir``, sorted by file name.

    Raises FileNotFoundError when the folder holds none.
    """
    paths = sorted(Path(data_dir).glob("*.csv"))
    if not paths:
        raise FileNotFoundError(f"no Exermote CSV files in {data_dir}")
    return [read_recording(p, "exermote") for p in paths]


def data_digest(data_dir: Path = DEFAULT_DATA_DIR) -> str:
    """SHA-256 over the names and bytes of the training CSV files (sorted)."""
    h = hashlib.sha256()
    for p in sorted(Path(data_dir).glob("*.csv")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def prepare(recording: Recording, hp: Hyperparameters) -> Labelled:
    """A labelled recording on the grid ``hp`` describes (:func:`inference.scoring.label_recording`)."""
    return label_recording(
        recording, channels=hp.channels, rate_hz=hp.sample_rate_hz, labels=hp.labels, angle_encoding=hp.angle_encoding
    )


def learn_counting_params(
    label_sequences: Iterable[np.ndarray],
    set_break_masks: Iterable[np.ndarray],
    rate_hz: float,
    *,
    flicker_share: float = 0.5,
) -> CountingParams:
    """Learn minimum phase durations and the set gap from labelled recordings.

    Args:
        label_sequences: per recording, phase names on the model's grid, shape (n,).
        set_break_masks: per recording, bool (n,), True where the labels say rest between sets.
        rate_hz: grid rate (Hz).
        flicker_share: a run shorter than this share of the shortest true run of its
            phase is flicker (0.5: half the shortest movement the athletes made).

    Returns:
        CountingParams with ``min_run_s`` per phase and ``set_gap_s`` halfway between the
        longest pause inside a set and the shortest rest between sets (pauses measured
        from the end of one repetition to the start of the next).
    """
    lengths: dict[str, list[int]] = {}
    within, between = [], []
    for labels, set_break in zip(label_sequences, set_break_masks, strict=True):
        for value, start, stop in runs(labels):
            lengths.setdefault(str(value), []).append(stop - start)
        tagged = np.where(set_break, "set_break", labels)
        rs = runs(tagged)
        for i, (value, start, stop) in enumerate(rs):
            if value in (BREAK, "set_break") and 0 < i < len(rs) - 1:
                (within if value == BREAK else between).append((stop - start) / rate_hz)
    min_run_s = {name: flicker_share * min(v) / rate_hz for name, v in sorted(lengths.items())}
    set_gap = 0.5 * (max(within) + min(between)) if within and between else 6.0
    return CountingParams(min_run_s=min_run_s, set_gap_s=float(set_gap))


def _rotation_matrices(rng: np.random.Generator, n: int, max_deg: float) -> np.ndarray:
    """n random rotations (n, 3, 3) about random axes by at most ``max_deg`` degrees."""
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    angle = np.deg2rad(rng.uniform(-max_deg, max_deg, size=n))
    k = np.zeros((n, 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k[:, 1, 0], k[:, 2, 0], k[:, 2, 1] = axis[:, 2], -axis[:, 1], axis[:, 0]
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3)[None] + s * k + (1 - c) * (k @ k)


#: The 8 axis sign flips: how a phone can sit in an armband (screen in/out, top up/down)
#: on either arm. Exermote athlete 1 wore it mirrored in 6 of 12 sessions.
AXIS_FLIPS = np.array([np.diag([a, b, c]) for a in (1, -1) for b in (1, -1) for c in (1, -1)], dtype=np.float32)


def augment(
    x: np.ndarray,
    channels: tuple[str, ...],
    rng: np.random.Generator,
    hp: Hyperparameters,
    flip: np.ndarray | None = None,
) -> np.ndarray:
    """Re-orient the device frame and scale amplitudes; (m, c) -> (m, c).

    One transform per recording: an axis sign flip (``AXIS_FLIPS``, random unless given)
    times a small random rotation, applied to gravity and acceleration vectors; the
    gyroscope is a pseudovector, so it also takes the flip's determinant.
    """
    out = x.copy()
    flip = AXIS_FLIPS[rng.integers(len(AXIS_FLIPS))] if flip is None else flip
    rot = (_rotation_matrices(rng, 1, hp.augment_rotation_deg)[0].astype(np.float32)) @ flip
    for prefix in ("gravity_", "user_acc_", "gyro_", "acc_"):
        idx = [channels.index(prefix + a) for a in "xyz" if prefix + a in channels]
        if len(idx) == 3:
            sign = np.linalg.det(flip) if prefix == "gyro_" else 1.0
            out[:, idx] = sign * (out[:, idx] @ rot.T)
    scale = rng.uniform(1 - hp.augment_scale, 1 + hp.augment_scale)
    for prefix in ("user_acc_", "gyro_"):
        idx = [channels.index(prefix + a) for a in "xyz" if prefix + a in channels]
        out[:, idx] *= scale
    return out


def time_warp(
    x: np.ndarray, y: np.ndarray, channels: tuple[str, ...], rng: np.random.Generator, max_change: float
) -> tuple[np.ndarray, np.ndarray]:
    """Replay a recording at a slowly varying tempo; (m, c), (m,) -> (m', c), (m',).

    The tempo is drawn every 10 s from ``1 +- max_change`` and interpolated in between,
    so an athlete who moves faster or slower than the training athletes is simulated.
    Rates scale with the tempo as physics says: the gyroscope by the tempo, the user
    acceleration by its square; gravity is unchanged. Labels follow by nearest sample.
    Time warping for wearable-sensor data after Um et al. (ICMI 2017).
    """
    m = len(x)
    if max_change <= 0 or m < 2:
        return x, y
    knots = rng.uniform(1 - max_change, 1 + max_change, m // 100 + 2)
    speed = np.interp(np.arange(m), np.linspace(0, m - 1, len(knots)), knots)
    source = np.concatenate([[0.0], np.cumsum(speed)])
    source = source[source <= m - 1]
    speed = speed[np.minimum(source.astype(int), m - 1)]
    out = np.empty((len(source), x.shape[1]), np.float32)
    for j in range(x.shape[1]):
        out[:, j] = np.interp(source, np.arange(m), x[:, j])
    for prefix, power in (("gyro_", 1), ("user_acc_", 2), ("acc_", 2)):
        for j in (channels.index(prefix + a) for a in "xyz" if prefix + a in channels):
            out[:, j] *= speed**power
    return out, y[np.rint(source).astype(int)]


def fit(prepared: list[Labelled], hp: Hyperparameters, *, verbose: int = 0):
    """Train the network on prepared recordings.

    With ``hp.ensemble`` = n > 1, n networks are trained with seeds ``hp.seed`` ...
    ``hp.seed + n - 1`` (each its own initialisation, augmentation and batch order) and
    joined into one network that averages their phase probabilities (a deep ensemble,
    Lakshminarayanan et al., NeurIPS 2017). Input and output shapes are those of one
    member, so the result loads and predicts like a single network.

    Returns ``(network, scaler, counting_params)``.
    """
    scaler, params, members = fit_members(prepared, hp, verbose=verbose)
    network = members[0] if len(members) == 1 else average_networks(members)
    return network, scaler, params


def fit_members(prepared: list[Labelled], hp: Hyperparameters, *, verbose: int = 0):
    """The scaler, the counting parameters learned from the labels, and the ``hp.ensemble``
    member networks (seeds ``hp.seed`` ...) trained on ``prepared``, each a Keras model.

    Returns ``(scaler, counting_params, members)``.
    """
    scaler = Scaler.fit(np.concatenate([derive_channels(p.x, hp.channels, hp.derived_channels) for p in prepared]))
    seeds = range(hp.seed, hp.seed + hp.ensemble)
    members = [fit_member(prepared, scaler, replace(hp, seed=seed), verbose=verbose) for seed in seeds]
    params = learn_counting_params([p.labels for p in prepared], [p.set_break for p in prepared], hp.sample_rate_hz)
    return scaler, replace(params, cycle_match=hp.cycle_match), members


def average_networks(members: list):
    """One Keras model whose output is the mean of ``members``' outputs (same shapes)."""
    import keras

    inputs = keras.Input(shape=members[0].input_shape[1:])
    outputs = keras.layers.Average()([member(inputs) for member in members])
    return keras.Model(inputs, outputs, name="ensemble")


def sequence_crops(a: np.ndarray, window: int) -> np.ndarray:
    """Training crops of a sequence model: ``window`` samples every ``window // 4`` samples;
    (m, ...) -> (n_crops, window, ...); shorter than ``window``, one crop of all m samples."""
    starts = np.arange(0, max(len(a) - window, 0) + 1, window // 4)
    return np.stack([a[s : s + window] for s in starts])


def class_weights(y: np.ndarray, n_labels: int) -> np.ndarray:
    """(n_labels,) loss weights: the square root of each phase's rarity in label indices ``y``
    (any shape), so rare phases count more without the full inverse-frequency swing."""
    counts = np.bincount(np.ravel(y), minlength=n_labels).astype(float)
    return np.sqrt(counts.sum() / (n_labels * np.maximum(counts, 1)))


def training_sequences(prepared: list[Labelled], scaler: Scaler, hp: Hyperparameters, rng: np.random.Generator):
    """Each recording and its ``hp.augment_copies`` augmented copies, as a network reads them:
    yields ``(x, y)``, x (m, len(hp.input_channels)) standardised by ``scaler``, y (m,) label
    indices. Draws from ``rng`` in a fixed order, so a seed gives the same copies."""
    for p in prepared:
        for copy in range(hp.augment_copies + 1):
            x, y = p.x, p.y
            if copy > 0:
                x, y = time_warp(augment(x, hp.channels, rng, hp), y, hp.channels, rng, hp.augment_time_warp)
            yield scaler.transform(derive_channels(x, hp.channels, hp.derived_channels)), y


def new_network(hp: Hyperparameters):
    """An untrained network of ``hp``'s architecture and its training batch size."""
    if hp.architecture == "sequence":
        network = build_sequence_network(
            len(hp.input_channels), len(hp.labels), conv_filters=hp.conv_filters, lstm_units=hp.lstm_units
        )
        return network, max(1, hp.batch_size // 4)  # crops of `window` samples, not windows
    network = build_network(
        hp.window, len(hp.input_channels), len(hp.labels), conv_filters=hp.conv_filters, lstm_units=hp.lstm_units
    )
    return network, hp.batch_size


def fit_member(prepared: list[Labelled], scaler: Scaler, hp: Hyperparameters, *, verbose: int = 0):
    """Train one network with ``hp.seed`` on ``scaler``-standardised inputs; returns the Keras model."""
    import keras

    keras.utils.set_random_seed(hp.seed)
    rng = np.random.default_rng(hp.seed)
    xs, ys = [], []
    sequence = hp.architecture == "sequence"
    for x, y in training_sequences(prepared, scaler, hp, rng):
        if sequence:
            xs.append(sequence_crops(x, hp.window))
            ys.append(sequence_crops(y, hp.window))
        else:
            xs.append(windows(x, hp.window, hp.label_offset, hp.train_stride))
            ys.append(y[:: hp.train_stride])
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    order = rng.permutation(len(y_all))
    x_all, y_all = x_all[order], y_all[order]
    weights = class_weights(y_all, len(hp.labels)) if hp.class_weighting else np.ones(len(hp.labels))
    network, batch_size = new_network(hp)
    return train_network(
        network, x_all, y_all, weights, epochs=hp.epochs, learning_rate=hp.learning_rate, batch_size=batch_size,
        verbose=verbose,
    )  # fmt: skip


def train_network(
    network,
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    verbose: int = 0,
    targets: np.ndarray | None = None,
):
    """Fit ``network`` on inputs ``x`` and phase indices ``y`` (the network's output shape
    without the label axis), the loss weighted by ``weights`` (n_labels,) per phase: Adam with
    a cosine-decayed learning rate over all ``epochs``, shuffled each epoch. Returns ``network``.

    ``targets``, shape ``y.shape + (n_labels,)``, are probabilities to learn instead of the
    phases ``y`` (cross-entropy against them; distillation); ``y`` still weights the loss."""
    import keras

    steps = epochs * int(np.ceil(len(y) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    loss = "sparse_categorical_crossentropy" if targets is None else "categorical_crossentropy"
    network.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss)
    network.fit(
        x,
        y if targets is None else targets,
        sample_weight=weights[y].astype(np.float32),
        batch_size=batch_size,
        epochs=epochs,
        verbose=verbose,
        shuffle=True,
    )
    return network


def build_spec(
    hp: Hyperparameters,
    *,
    scaler: Scaler,
    params: CountingParams,
    digest: str = "",
    subjects: list[str] | None = None,
    evaluation: dict | None = None,
    version: str | None = None,
) -> ModelSpec:
    """The spec a network trained with ``hp`` carries. ``version`` defaults to one derived from
    ``hp`` and the training data's digest, so changing either gives a new version."""
    from inference import __version__

    if version is None:
        version_key = hashlib.sha256((repr(hp.to_dict()) + digest).encode()).hexdigest()[:10]
        members = f"x{hp.ensemble}" if hp.ensemble > 1 else ("-distilled" if hp.teacher_ensemble else "")
        version = f"phase-{'bilstm' if hp.architecture == 'sequence' else 'cnnlstm'}{members}-{version_key}"
    return ModelSpec(
        version=version,
        architecture=hp.architecture,
        chunk=hp.chunk,
        context=hp.context,
        channels=hp.channels,
        derived_channels=hp.derived_channels,
        sample_rate_hz=hp.sample_rate_hz,
        window=hp.window,
        stride=1,
        label_offset=hp.label_offset,
        labels=hp.labels,
        angle_encoding=hp.angle_encoding,
        scaling=scaler,
        counting=params,
        training_data={"dataset": "exermote", "subjects": list(subjects or [])},
        training_data_digest=digest,
        hyperparameters=hp.to_dict(),
        code_version=__version__,
        evaluation=evaluation or {},
    )


def train(
    data_dir: Path = DEFAULT_DATA_DIR,
    out_path: Path | None = None,
    hp: Hyperparameters | None = None,
    *,
    evaluation: dict | None = None,
    counting: dict | None = None,
    verbose: int = 0,
) -> ModelSpec:
    """Train on every recording in ``data_dir`` and save the model file with its spec.

    ``counting`` overrides counting parameters learned from the labels, e.g. the
    ``break_weight`` chosen by LOSO. Returns the spec written.
    """
    from inference.model import DEFAULT_KERAS_PATH

    hp = hp or Hyperparameters()
    recordings = load_exermote(data_dir)
    prepared = [prepare(r, hp) for r in recordings]
    network, scaler, params = fit(prepared, hp, verbose=verbose)
    params = replace(params, **(counting or {}))
    subjects = sorted({str(r.subject) for r in recordings})
    spec = build_spec(
        hp, scaler=scaler, params=params, digest=data_digest(data_dir), subjects=subjects, evaluation=evaluation
    )
    save_model(network, spec, out_path or DEFAULT_KERAS_PATH)
    return spec
