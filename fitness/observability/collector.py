"""What ``/metrics`` reads when it is scraped: the stored counters, queues, sessions and the model.

Every query is bounded: the stored series (a few hundred rows), the queued and processing
sessions (by the status index), the production version (one row) and its live metrics
(cached for ``FITNESS_METRICS_LIVE_CACHE_S``); one broker call per configured queue, under
``FITNESS_METRICS_BROKER_TIMEOUT_S``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from fitness.mlmodels.models import Kind, ModelVersion, Stage
from fitness.workouts.live_metrics import live_metrics
from fitness.workouts.models import SensorSession

from . import catalog, store

logger = logging.getLogger(__name__)

_LIVE_CACHE_KEY = "observability:live-metrics:{version}"


def configured_queues() -> list[str]:
    """The project's Celery queues: those declared (``CELERY_TASK_QUEUES``) and those routed to
    (``FITNESS_TASK_QUEUES``), in that order, each once."""
    names = [getattr(q, "name", q) for q in settings.CELERY_TASK_QUEUES]
    names += list(settings.FITNESS_TASK_QUEUES.values())
    return list(dict.fromkeys(names))


def queue_lengths(queues: list[str]) -> dict[str, int]:
    """Messages waiting in each queue, from the broker (Redis lists, the filesystem broker's files).

    Raises:
        Exception: whatever the broker connection raises (unreachable within the timeout).
    """
    from kombu.exceptions import ChannelError

    from workers.celery import app

    timeout = settings.FITNESS_METRICS_BROKER_TIMEOUT_S
    out = {}
    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)
        channel = conn.default_channel
        for queue in queues:
            try:
                out[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:  # never declared or empty (Redis deletes an empty list)
                out[queue] = 0
    return out


def _stored() -> Iterator:
    rows = store.series()
    by_name: dict[str, list] = defaultdict(list)
    for name, labels, value in rows:
        by_name[name].append((labels, value))

    sessions = CounterMetricFamily(catalog.SESSIONS_TOTAL, catalog.SESSIONS_HELP, labels=["status", "method"])
    seen = {(lab.get("status"), lab.get("method")): value for lab, value in by_name[catalog.SESSIONS_TOTAL]}
    # Every combination that can occur is shown from the start (0), so that rate() sees the first one.
    combos = {("uploaded", "none")} | {(s, m) for s in ("done", "failed") for m in catalog.SESSION_METHODS}
    for status, method in sorted(combos | set(seen)):
        sessions.add_metric([status, method], seen.get((status, method), 0.0))
    yield sessions

    webhooks = CounterMetricFamily(catalog.WEBHOOK_DELIVERIES_TOTAL, catalog.WEBHOOK_HELP, labels=["outcome"])
    outcomes = {lab.get("outcome"): value for lab, value in by_name[catalog.WEBHOOK_DELIVERIES_TOTAL]}
    for outcome in catalog.WEBHOOK_OUTCOMES:
        webhooks.add_metric([outcome], outcomes.get(outcome, 0.0))
    yield webhooks

    counting = HistogramMetricFamily(catalog.COUNTING_SECONDS, catalog.COUNTING_HELP, labels=["span"])
    name = catalog.COUNTING_SECONDS
    buckets = {(lab["span"], lab["le"]): value for lab, value in by_name[f"{name}_bucket"] if "span" in lab}
    sums = {lab.get("span"): value for lab, value in by_name[f"{name}_sum"]}
    for span in catalog.COUNTING_SPANS:
        cumulative, points = 0.0, []
        for bound in (*catalog.COUNTING_BUCKETS, float("inf")):
            le = store.le_text(bound)
            cumulative += buckets.get((span, le), 0.0)
            points.append((le, cumulative))
        counting.add_metric([span], points, sums.get(span, 0.0))
    yield counting


def _sessions() -> Iterator:
    pending = SensorSession.objects.filter(status__in=[SensorSession.Status.QUEUED, SensorSession.Status.PROCESSING])
    counts = dict(pending.values_list("status").annotate(n=Count("pk")).order_by())
    gauge = GaugeMetricFamily(
        catalog.SESSIONS_PENDING, "Sessions waiting for or in counting now, by status.", labels=["status"]
    )
    for status in (SensorSession.Status.QUEUED, SensorSession.Status.PROCESSING):
        gauge.add_metric([status.value], counts.get(status.value, 0))
    yield gauge
    oldest = pending.filter(status=SensorSession.Status.QUEUED).aggregate(oldest=Min("queued_at"))["oldest"]
    age = max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0
    yield GaugeMetricFamily(
        catalog.OLDEST_QUEUED_AGE, "Seconds since the oldest queued session was queued (0: none queued).", value=age
    )


def _queues() -> Iterator:
    up = GaugeMetricFamily(catalog.BROKER_UP, "1 if the broker answered this scrape, else 0.")
    try:
        lengths = queue_lengths(configured_queues())
    except Exception as exc:  # noqa: BLE001 - an unreachable broker is a value, not an error
        logger.warning("metrics: the broker did not answer (%s)", exc)
        up.add_metric([], 0)
        yield up
        return
    up.add_metric([], 1)
    yield up
    gauge = GaugeMetricFamily(catalog.QUEUE_MESSAGES, "Messages waiting in each Celery queue.", labels=["queue"])
    for queue, length in lengths.items():
        gauge.add_metric([queue], length)
    yield gauge


def _model() -> Iterator:
    version = ModelVersion.objects.filter(stage=Stage.PRODUCTION, kind=Kind.CLASSIFIER).first()
    info = InfoMetricFamily(catalog.MODEL_INFO.removesuffix("_info"), "The production model version.")
    if version is None:
        yield info
        return
    info.add_metric([], {"version": version.version, "stage": Stage.PRODUCTION.value})
    yield info
    key = _LIVE_CACHE_KEY.format(version=version.pk)
    figures = cache.get(key)
    if figures is None:
        figures = live_metrics([version]).get(version.pk, {})
        cache.set(key, figures, settings.FITNESS_METRICS_LIVE_CACHE_S)
    labels = ["version"]
    rows = (
        (
            catalog.LIVE_SETS,
            "Reviewed sets with repetitions (users' corrections) the production version counted.",
            "sets",
        ),
        (catalog.LIVE_EXACT, "Share of those counted exactly.", "sets_exact"),
        (catalog.LIVE_WITHIN_1, "Share of those counted within +-1 repetition.", "sets_within_1"),
        (catalog.LIVE_COUNT_MAE, "Mean absolute count error over those, in repetitions.", "count_mae"),
    )
    for name, help_text, key_name in rows:
        gauge = GaugeMetricFamily(name, help_text, labels=labels)
        value = figures.get(key_name)
        if value is not None or key_name == "sets":
            gauge.add_metric([version.version], float(value or 0))
        yield gauge


class DatabaseCollector(Collector):
    """Collects every metric that is not counted in this process (see the module's docstring)."""

    def collect(self) -> Iterator:
        yield from _stored()
        yield from _sessions()
        yield from _model()
        yield from _queues()
