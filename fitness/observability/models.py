"""Counters that worker processes add to and every web process reads at scrape time."""

from django.db import models


class MetricValue(models.Model):
    """One monotonic value of a counter or histogram series, shared by every process.

    ``name`` is the series' name as exported (``fitness_sessions_total``,
    ``fitness_counting_seconds_bucket``, ``..._sum``, ``..._count``); ``labels`` its labels as
    ``key=value`` pairs joined by ``,`` in key order (``le`` of a bucket included; buckets are
    stored per bucket, not cumulative). Label values come from short fixed lists, so the table
    holds a few hundred rows at most.
    """

    name = models.CharField(max_length=100)
    labels = models.CharField(max_length=200, blank=True, default="")
    value = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "labels"], name="unique_metric_series")]

    def __str__(self) -> str:
        return f"{self.name}{{{self.labels}}} {self.value}"
