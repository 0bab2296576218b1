"""Prometheus metrics, in a registry of the service's own (built in bootstrap, nothing at import)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from service.tally import Tally


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_consumed = Counter(
            "upsell_messages_consumed",
            "Messages consumed from the inbound queue",
            ["type", "outcome"],
            registry=r,
        )
        self.processing_seconds = Histogram(
            "upsell_message_processing_seconds",
            "Time from delivery to ack of one message",
            ["type"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.events_published = Counter(
            "upsell_events_published", "Events published to the outbound exchange", ["type"], registry=r
        )
        self.event_latency = Histogram(
            "upsell_event_latency_seconds",
            "Time from the commit that made an outgoing event (right after its inbound message or request was"
            " taken) to the broker's confirm of it, by the database's clock",
            ["type"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.dead_letters = Counter(
            "upsell_dead_letters",
            "Inbound events sent to the dead-letter queue by the service, by reason",
            ["reason"],
            registry=r,
        )
        self.ready = Gauge(
            "upsell_ready", "1 when the check of /readyz passes (read at scrape time)", ["check"], registry=r
        )
        self.outbox_backlog = Gauge("upsell_outbox_backlog", "Outbox events not yet published", registry=r)
        self.outbox_oldest_age = Gauge(
            "upsell_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox event", registry=r
        )
        self.parked_events = Gauge(
            "upsell_parked_events", "Events waiting for the session they name to be registered", registry=r
        )
        self.parked_oldest_age = Gauge(
            "upsell_parked_oldest_age_seconds", "Age of the oldest event waiting for its session", registry=r
        )
        self.queue_messages = Gauge("upsell_queue_messages", "Messages ready in a queue", ["queue"], registry=r)
        self.queue_consumers = Gauge("upsell_queue_consumers", "Consumers of a queue", ["queue"], registry=r)
        self.partition_owned = Gauge(
            "upsell_partition_owned", "1 while this replica holds the partition's lease", ["partition"], registry=r
        )
        self.partition_handovers = Counter(
            "upsell_partition_handovers",
            "Partitions this replica took, gave back, or lost (its lease taken by another)",
            ["change"],
            registry=r,
        )
        self.uncorrelated = Counter(
            "upsell_inbound_without_correlation_id",
            "Inbound messages without a correlation_id: their order across partitions is not kept",
            registry=r,
        )
        self._tally = Tally()
        r.register(self._tally)
        self._requests = self._tally.counter(
            "upsell_http_requests", "HTTP requests served", ("method", "route", "status")
        )
        self._key_lookups = self._tally.counter(
            "upsell_api_key_lookups", "API keys checked, by where they were found (memory or database)", ("source",)
        )
        self._session_reads = self._tally.counter(
            "upsell_session_reads",
            "GET answers of sessions, by where they came from (memory or database)",
            ("source",),
        )

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Counts and times one request."""
        key = (method, route, str(status))
        self._requests[key] = self._requests.get(key, 0) + 1
        self._tally.observe(method, route, seconds)

    def session_read(self, source: str) -> None:
        """A GET answer of a session, from `memory` or the `database`."""
        self._session_reads[(source,)] = self._session_reads.get((source,), 0) + 1

    def api_key_lookup(self, source: str) -> None:
        """An API key checked, from `memory` or the `database`."""
        self._key_lookups[(source,)] = self._key_lookups.get((source,), 0) + 1
