"""Research code: training, leave-one-subject-out evaluation, self-training, the original
app's baseline, reports and the peak counter's evaluation.

It may import :mod:`inference`; nothing outside ``inference/lab/`` imports it (the serving
path, the Django apps and the workers never reach training code). Commands:
``python -m inference.lab train|evaluate|rescore|evaluate-peaks``.
"""
