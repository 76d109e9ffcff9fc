"""Counters and histograms kept in the database (:class:`~.models.MetricValue`).

Workers add to them (:func:`record`) and any web process reads them when it is scraped
(:func:`series`), so the numbers hold with any number of worker processes on any number of
hosts, survive restarts, and never double (one row per series, added to with ``UPDATE ...
SET value = value + x``). An observation costs one short transaction of a few row updates.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F

from .models import MetricValue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Add:
    """Add ``amount`` to a counter series."""

    name: str
    labels: Mapping[str, str]
    amount: float = 1.0


@dataclass(frozen=True)
class Observe:
    """One observation of a histogram (seconds or another base unit) with upper bounds ``buckets``."""

    name: str
    labels: Mapping[str, str]
    value: float
    buckets: tuple[float, ...]


def label_text(labels: Mapping[str, str]) -> str:
    """``labels`` as stored: ``k=v`` pairs in key order joined by ``,`` (values hold neither)."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def parse_labels(text: str) -> dict[str, str]:
    """The inverse of :func:`label_text`."""
    return dict(pair.split("=", 1) for pair in text.split(",")) if text else {}


def le_text(bound: float) -> str:
    """A bucket's upper bound as Prometheus writes it (``0.5``, ``1.0``, ``+Inf``)."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _additions(changes: Iterable[Add | Observe]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for change in changes:
        if isinstance(change, Add):
            rows = [(change.name, label_text(change.labels), change.amount)]
        else:
            index = bisect.bisect_left(change.buckets, change.value)
            bound = change.buckets[index] if index < len(change.buckets) else math.inf
            rows = [
                (f"{change.name}_bucket", label_text({**change.labels, "le": le_text(bound)}), 1.0),
                (f"{change.name}_sum", label_text(change.labels), change.value),
                (f"{change.name}_count", label_text(change.labels), 1.0),
            ]
        for name, labels, amount in rows:
            out[(name, labels)] = out.get((name, labels), 0.0) + amount
    return out


def record(changes: Iterable[Add | Observe]) -> None:
    """Apply ``changes`` in one transaction (rows in a fixed order: concurrent workers never deadlock).

    Raises whatever the database raises (callers that must not fail catch it).
    """
    with transaction.atomic():
        for (name, labels), amount in sorted(_additions(changes).items()):
            if MetricValue.objects.filter(name=name, labels=labels).update(value=F("value") + amount):
                continue
            try:
                with transaction.atomic():
                    MetricValue.objects.create(name=name, labels=labels, value=amount)
            except IntegrityError:  # another process created the row first
                MetricValue.objects.filter(name=name, labels=labels).update(value=F("value") + amount)


def series() -> list[tuple[str, dict[str, str], float]]:
    """Every stored series as ``(name, labels, value)`` (one query; a few hundred rows at most)."""
    return [
        (name, parse_labels(labels), value)
        for name, labels, value in MetricValue.objects.values_list("name", "labels", "value")
    ]
