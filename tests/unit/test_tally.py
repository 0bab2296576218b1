"""The hot path's counters and histogram read as Prometheus samples, as prometheus_client's did."""

from __future__ import annotations

from service.metrics import Metrics


def test_counters_read_as_samples() -> None:
    metrics = Metrics()
    for status in (200, 200, 499):
        metrics.http_request("POST", "/v1/checkout/sessions/{id}/upsell", status, 0.01)
    metrics.session_read("memory")
    metrics.api_key_lookup("database")
    sample = metrics.registry.get_sample_value
    route = {"method": "POST", "route": "/v1/checkout/sessions/{id}/upsell"}
    assert sample("upsell_http_requests_total", {**route, "status": "200"}) == 2
    assert sample("upsell_http_requests_total", {**route, "status": "499"}) == 1
    assert sample("upsell_session_reads_total", {"source": "memory"}) == 1
    assert sample("upsell_api_key_lookups_total", {"source": "database"}) == 1
    assert sample("upsell_api_key_lookups_total", {"source": "memory"}) is None


def test_durations_fall_in_buckets_of_at_most_their_bound() -> None:
    metrics = Metrics()
    for seconds in (0.001, 0.005, 0.0051, 0.2, 11.0):
        metrics.http_request("GET", "/livez", 200, seconds)
    sample = metrics.registry.get_sample_value
    route = {"method": "GET", "route": "/livez"}
    assert sample("upsell_http_request_seconds_bucket", {**route, "le": "0.005"}) == 2
    assert sample("upsell_http_request_seconds_bucket", {**route, "le": "0.01"}) == 3
    assert sample("upsell_http_request_seconds_bucket", {**route, "le": "0.25"}) == 4
    assert sample("upsell_http_request_seconds_bucket", {**route, "le": "10.0"}) == 4
    assert sample("upsell_http_request_seconds_bucket", {**route, "le": "+Inf"}) == 5
    assert sample("upsell_http_request_seconds_count", route) == 5
    assert abs((sample("upsell_http_request_seconds_sum", route) or 0) - 11.2111) < 1e-9
