"""The CNN-LSTM phase classifiers: definition, prediction, save/load with metadata.

Architecture after Exermote (Lerner 2017, ``ExermotePreprocessingAndTraining``):
Conv1D(32, 3, stride 2) -> Conv1D(32, 3) -> LSTM(32, sequences) -> LSTM(32) ->
Dropout(0.2) -> Dense(n_labels, softmax), over 40-sample windows at 10 Hz; here the
labels are phases (``break``, ``<exercise>.first_half``, ``<exercise>.second_half``)
instead of exercises, so that repetitions can be counted from them.

A trained model is one ``.keras`` archive; its :class:`~inference.spec.ModelSpec` (channels,
sample rate, window, label offset, labels, scaling, counting parameters, training
digest, hyperparameters, evaluation figures) is stored inside it as
``inference_metadata.json`` so that it can never be used with the wrong preprocessing.

Serving loads the ``.onnx`` exported from it (:mod:`inference.runtime`, ONNX Runtime), which
carries the same spec: :func:`load_model` takes either file and imports TensorFlow only for a
``.keras`` (training, the lab, the registry's check of an upload against its export).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from inference.runtime import EXPORT_KEY, OnnxFormatError, OnnxNetwork, looks_like_onnx, read_onnx_json
from inference.spec import ModelSpec, ModelSpecError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

METADATA_ENTRY = "inference_metadata.json"
#: Largest metadata entry read from a model file (bytes, as the zip directory states it
#: before anything is inflated); the shipped one is about 20 KB.
MAX_METADATA_BYTES = 1 << 20
#: Largest sum of the entries' inflated sizes in a model file (bytes, from the zip directory):
#: Keras inflates the weights before loading them; the shipped file inflates to about 3.4 MB.
MAX_INFLATED_BYTES = 1 << 30
MODELS_DIR = Path(__file__).resolve().parent / "models"
#: The shipped model as served: exported from :data:`DEFAULT_KERAS_PATH` by ``python -m inference.lab export``.
DEFAULT_MODEL_PATH = MODELS_DIR / "default.onnx"
#: The shipped model as trained (Keras): the source of the export, for the lab and the registry.
DEFAULT_KERAS_PATH = MODELS_DIR / "default.keras"


class ModelFileError(ValueError):
    """A model file that cannot be loaded or whose metadata does not match the network."""


def build_network(window: int, n_channels: int, n_labels: int, *, conv_filters: int = 32, lstm_units: int = 32):
    """Exermote CNN-LSTM. Input (batch, window, n_channels) -> softmax (batch, n_labels)."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=(window, n_channels)),
            layers.Conv1D(conv_filters, 3, strides=2, activation="relu"),
            layers.Conv1D(conv_filters, 3, activation="relu"),
            layers.LSTM(lstm_units, return_sequences=True),
            layers.LSTM(lstm_units),
            layers.Dropout(0.2),
            layers.Dense(n_labels, activation="softmax"),
        ]
    )


def build_sequence_network(n_channels: int, n_labels: int, *, conv_filters: int = 32, lstm_units: int = 32):
    """Sequence labeller for offline sessions: input (batch, time, n_channels) -> (batch, time, n_labels).

    A fully convolutional front end (two Conv1D, kernel 5, 'same' padding) and a
    bidirectional LSTM label every sample of a whole session in one pass, instead of
    one 40-sample window per sample (issue "Counting accuracy": DeepConvLSTM-style,
    Ordonez & Roggen, Sensors 2016, made bidirectional because sessions are uploaded
    after the workout).
    """
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=(None, n_channels)),
            layers.Conv1D(conv_filters, 5, padding="same", activation="relu"),
            layers.Conv1D(conv_filters, 5, padding="same", activation="relu"),
            layers.Bidirectional(layers.LSTM(lstm_units, return_sequences=True)),
            layers.Dropout(0.2),
            layers.Dense(n_labels, activation="softmax"),
        ]
    )


@dataclass
class PhaseModel:
    """A loaded network with its specification. ``phase_probabilities`` is what workers call."""

    network: object
    spec: ModelSpec
    checksum: str
    _compiled: object = field(default=None, repr=False, compare=False)

    def _call(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on one batch: an ONNX Runtime session, or a Keras network as a
        compiled graph (``tf.function``), traced once per model.

        Called eagerly, Keras steps the LSTM loop in Python: about 30x slower on a session.
        The input signature leaves batch (and, for the sequence model, time) open, so one
        trace serves every session length.
        """
        if isinstance(self.network, OnnxNetwork):
            return self.network(batch)
        if self._compiled is None:
            import tensorflow as tf

            n_channels = len(self.spec.input_channels)
            time = None if self.spec.is_sequence else self.spec.window
            spec = tf.TensorSpec((None, time, n_channels), tf.float32)
            network = self.network
            self._compiled = tf.function(lambda x: network(x, training=False), input_signature=[spec])
        return self._compiled(np.ascontiguousarray(batch, dtype=np.float32)).numpy()

    def phase_probabilities(self, x: np.ndarray) -> np.ndarray:
        """Per-sample phase probabilities of a scaled session.

        Args:
            x: float32, shape (m, n_channels), on the model's grid and scaled as in the spec.

        Returns:
            float32, shape (m, n_labels).
        """
        if self.spec.is_sequence:
            return self.predict_sequence(x)
        from inference.preprocessing import windows

        return self.predict(windows(x, self.spec.window, self.spec.label_offset))

    def predict_sequence(self, x: np.ndarray) -> np.ndarray:
        """Label a whole session with the sequence network, in overlapping chunks.

        The session is cut into chunks of ``chunk`` samples, each read with ``context``
        samples on both sides so that every labelled sample sees the same surroundings
        as in one pass; all chunks go through the network as one batch.
        (m, c) -> (m, n_labels).
        """
        m = len(x)
        if m == 0:
            return np.zeros((0, len(self.spec.labels)), np.float32)
        chunk, context = self.spec.chunk, self.spec.context
        n_chunks = -(-m // chunk)
        padded = np.pad(x, ((context, n_chunks * chunk - m + context), (0, 0)), mode="edge")
        span = chunk + 2 * context
        starts = np.arange(n_chunks) * chunk
        batch = np.lib.stride_tricks.sliding_window_view(padded, span, axis=0)[starts].transpose(0, 2, 1)
        out = self._call(batch)
        return out[:, context : context + chunk].reshape(-1, out.shape[-1])[:m].astype(np.float32)

    def predict(self, windows: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """Phase probabilities.

        Args:
            windows: float32, shape (n, window, n_channels), scaled as in the spec.

        Returns:
            float32, shape (n, n_labels), rows sum to 1.
        """
        if len(windows) == 0:
            return np.zeros((0, len(self.spec.labels)), np.float32)
        out = []
        # A compiled call avoids keras.predict's per-call setup cost (~50 ms).
        for i in range(0, len(windows), batch_size):
            out.append(self._call(windows[i : i + batch_size]))
        return np.concatenate(out).astype(np.float32)


def file_checksum(path: str | Path) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_model(network, spec: ModelSpec, path: str | Path) -> Path:
    """Save the network as ``.keras`` with ``spec`` embedded. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    network.save(path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(METADATA_ENTRY, json.dumps(spec.to_dict(), indent=2, sort_keys=True))
    return path


def is_onnx_file(path: str | Path) -> bool:
    """Whether ``path`` holds an exported ONNX model (else a ``.keras`` archive is assumed).

    Raises:
        OSError: the file cannot be read.
    """
    with Path(path).open("rb") as fh:
        return looks_like_onnx(fh.read(4))


def read_metadata(path: str | Path) -> dict:
    """The metadata embedded in a model file (``.keras`` or ``.onnx``), as stored (JSON).

    For a ``.keras`` archive, the entry's size, and the sum of all entries' sizes (the
    weights that Keras inflates later), are checked in the zip directory before anything
    is inflated, so a compressed bomb costs nothing. An ``.onnx`` file's metadata is read
    without a runtime session (:func:`inference.runtime.read_onnx_json`).

    Raises:
        ModelFileError: not a model file with metadata.
    """
    try:
        if is_onnx_file(path):
            return read_onnx_json(path)
        with zipfile.ZipFile(path) as zf:
            inflated = sum(info.file_size for info in zf.infolist())
            if inflated > MAX_INFLATED_BYTES:
                raise ModelFileError(f"the model file inflates to {inflated} bytes; at most {MAX_INFLATED_BYTES}")
            size = zf.getinfo(METADATA_ENTRY).file_size
            if size > MAX_METADATA_BYTES:
                raise ModelFileError(f"{METADATA_ENTRY} inflates to {size} bytes; at most {MAX_METADATA_BYTES}")
            with zf.open(METADATA_ENTRY) as fh:
                return json.loads(fh.read(MAX_METADATA_BYTES + 1))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError, OSError, OnnxFormatError) as exc:
        raise ModelFileError(f"not a model file with {METADATA_ENTRY}: {exc}") from exc


def read_export_record(path: str | Path) -> dict:
    """How an ``.onnx`` file was exported (``inference_export.json``): source checksum, tolerance, ...

    Raises:
        ModelFileError: not an exported ONNX file.
    """
    try:
        return read_onnx_json(path, EXPORT_KEY)
    except (OnnxFormatError, OSError) as exc:
        raise ModelFileError(f"not an exported model file: {exc}") from exc


def read_spec(path: str | Path) -> ModelSpec:
    """The validated :class:`ModelSpec` of a model file, without loading the network.

    Raises:
        ModelFileError: not a model file, or metadata that :meth:`ModelSpec.from_dict` refuses.
    """
    try:
        return ModelSpec.from_dict(read_metadata(path))
    except ModelSpecError as exc:
        raise ModelFileError(str(exc)) from exc


def _load_network(path: Path, onnx: bool):
    """The network of a model file: an ONNX Runtime session, or Keras (imports TensorFlow)."""
    try:
        if onnx:
            return OnnxNetwork(path)
        import keras

        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # both runtimes raise many types for a broken file
        raise ModelFileError(f"cannot load the network: {exc}") from exc


def load_model(path: str | Path) -> PhaseModel:
    """Load and validate a model file: an exported ``.onnx`` (serving) or a ``.keras`` (lab, registry).

    Checks that the spec is complete and consistent, that the network's input and output
    shapes match it, and that a dry run on a zero window works. The kind of file is told
    by its first bytes, not its name.

    Raises:
        ModelFileError: unreadable, truncated or foreign file, or shapes that disagree.
    """
    path = Path(path)
    try:
        onnx = is_onnx_file(path)
    except OSError as exc:
        raise ModelFileError(f"cannot read the model file: {exc}") from exc
    spec = read_spec(path)
    network = _load_network(path, onnx)
    window, n_labels, n_channels = spec.window, len(spec.labels), len(spec.input_channels)
    expected_in = (None, n_channels) if spec.is_sequence else (window, n_channels)
    expected_out = (None, n_labels) if spec.is_sequence else (n_labels,)
    try:
        shapes = tuple(network.input_shape[1:]), tuple(network.output_shape[1:])
    except (AttributeError, ValueError) as exc:
        raise ModelFileError(f"the network has no single input and output: {exc}") from exc
    if shapes[0] != expected_in:
        raise ModelFileError(f"network input {shapes[0]} != metadata {expected_in}")
    if shapes[1] != expected_out:
        raise ModelFileError(f"network output {shapes[1]} != metadata {expected_out}")
    model = PhaseModel(network=network, spec=spec, checksum=file_checksum(path))
    try:
        probs = model.phase_probabilities(np.zeros((window, n_channels), np.float32))
    except Exception as exc:  # any failure of the dry run makes the file unusable
        raise ModelFileError(f"dry run on a zero window failed: {exc}") from exc
    if probs.shape != (window, n_labels) or not np.isfinite(probs).all():
        raise ModelFileError("dry run on a zero window gave no valid probabilities")
    return model


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int) -> PhaseModel:
    return load_model(path)


def load_model_cached(path: str | Path = DEFAULT_MODEL_PATH) -> PhaseModel:
    """Load a model once per process (keyed by path and modification time)."""
    path = Path(path).resolve()
    return _load_cached(str(path), path.stat().st_mtime_ns)


def load_model_bytes(data: bytes) -> PhaseModel:
    """Validate a model given as bytes (an upload, ``.keras`` or ``.onnx``). Raises ModelFileError."""
    suffix = ".onnx" if looks_like_onnx(data[:4]) else ".keras"
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        tmp.write(data)
        tmp.flush()
        return load_model(tmp.name)
