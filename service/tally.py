"""Counters and a histogram for the HTTP hot path, kept in plain dicts and turned into Prometheus samples
when scraped.

prometheus_client's `inc` and `observe` take a lock and check the metric each time: four of them were
a third of a cached GET's own work in the service. The event loop runs one callback at a time, so a
plain `+= 1` is enough here.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

# prometheus_client's default buckets, which the histogram had before.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class Tally(Collector):
    """`counters` by name and label values; one histogram of request durations by method and route."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[tuple[str, ...], int]] = {}
        self._help: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._buckets: dict[tuple[str, str], list[int]] = {}
        self._sums: dict[tuple[str, str], float] = {}

    def counter(self, name: str, documentation: str, labels: tuple[str, ...]) -> dict[tuple[str, ...], int]:
        """A counter's counts by label values, to be added to in place."""
        self._help[name] = (documentation, labels)
        return self._counts.setdefault(name, {})

    def observe(self, method: str, route: str, seconds: float) -> None:
        key = (method, route)
        buckets = self._buckets.get(key)
        if buckets is None:
            buckets = self._buckets[key] = [0] * (len(BUCKETS) + 1)
            self._sums[key] = 0.0
        buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        self._sums[key] += seconds

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        for name, counts in self._counts.items():
            documentation, labels = self._help[name]
            family = CounterMetricFamily(name, documentation, labels=list(labels))
            for values, count in list(counts.items()):
                family.add_metric(list(values), count)
            yield family
        durations = HistogramMetricFamily(
            "upsell_http_request_seconds", "HTTP request duration", labels=["method", "route"]
        )
        for (method, route), buckets in list(self._buckets.items()):
            cumulative, total = [], 0
            for bound, count in zip((*BUCKETS, float("inf")), buckets, strict=True):
                total += count
                cumulative.append((_bound(bound), total))
            durations.add_metric([method, route], cumulative, self._sums[(method, route)])
        yield durations


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
