"""Signal path, model and counting for the repetition-counting backend.

Pure Python + NumPy/SciPy/pandas/TensorFlow. This package never imports Django,
so it runs the same in a Celery worker, the CLI and tests.
"""

__version__ = "0.2.0"
