"""The table of docs/performance.md from one `make bench` result: absolute figures, ratios, targets."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

MARKER = "<!-- latest make bench -->"


def _row(name: str, service: str, baseline: str, ratio: str, target: str, met: bool | None) -> str:
    verdict = "" if met is None else ("yes" if met else "**no**")
    return f"| {name} | {service} | {baseline} | {ratio} | {target} | {verdict} |"


def table(result: dict[str, Any]) -> str:
    service, base = result["service"], result["baseline_pipeline"]
    pipe = service["pipeline"]["per_second"] / base["per_second"]
    lat, rss, domain = service["latency"], service["rss_mb"], result["domain"]
    growth = rss["large"] - rss["10k"]
    rows = [
        "| figure | service | baseline | ratio | target | met |",
        "| --- | ---: | ---: | ---: | --- | --- |",
        _row(
            f"pipeline, {service['pipeline']['events']:,} events (events/s)",
            f"{service['pipeline']['per_second']:,}",
            f"{base['per_second']:,} (bare relay)",
            f"{pipe:.2f}x",
            ">= 0.5x",
            pipe >= 0.5,
        ),
        _row(
            "service CPU per event, all at once / at half the max (us)",
            f"{service['pipeline'].get('service_cpu_us_per_event', '')} / {lat.get('service_cpu_us_per_event', '')}",
            "",
            "",
            "",
            None,
        ),
        _row(
            f"latency at {lat['rate']:,}/s (half the max; machine {lat.get('machine_busy', 0):.0%} busy):"
            " p50 / p95 / p99 ms",
            f"{lat['p50_ms']} / {lat['p95_ms']} / {lat['p99_ms']}",
            "",
            "",
            "p99 < 50 ms",
            lat["p99_ms"] < 50,
        ),
        *(
            [
                _row(
                    f"bare relay at the same rate (machine {result['baseline_latency']['machine_busy']:.0%} busy):"
                    " p50 / p95 / p99 ms",
                    "",
                    "{p50_ms} / {p95_ms} / {p99_ms}".format(**result["baseline_latency"]),
                    "",
                    "",
                    None,
                )
            ]
            if "baseline_latency" in result
            else []
        ),
        *_http_rows(result),
        _row(
            "domain: eligibility + savings (us/session)",
            f"{domain['us_per_session']}",
            "",
            "",
            "< 20 us",
            domain["us_per_session"] < 20,
        ),
        _row(
            f"RSS after 10k / {rss['sessions_large']:,} sessions (MB)",
            f"{rss['10k']} / {rss['large']}",
            "",
            f"+{growth:.1f} MB",
            "< 150 MB, flat",
            rss["large"] < 150 and growth < 0.15 * rss["10k"],
        ),
    ]
    machine = f"{platform.machine()}, {os_cpus()} cores, Python {platform.python_version()}"
    head = f"{MARKER}\nRun {result['when']} on {machine}, {result['seconds']} s in all.\n\n"
    replicas = replicas_section(result)
    return head + "\n".join(rows) + "\n" + (f"\n{replicas}" if replicas else "")


def _us(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def _cpu_cells(row: dict[str, Any]) -> list[str]:
    """Service (per process when more than one), RabbitMQ, PostgreSQL (the bench database's backends),
    the bench's own process, the whole machine (how busy)."""
    service = _us(row["service_cpu_us_per_event"])
    by_process = row.get("service_cpu_us_per_event_by_process", [])
    if len(by_process) > 1:
        service += " (" + " + ".join(_us(value) for value in by_process) + ")"
    postgres = _us(row["postgres_cpu_us_per_event"])
    if row.get("postgres_backends_cpu_us_per_event") is not None:
        postgres += f" ({_us(row['postgres_backends_cpu_us_per_event'])})"
    return [
        service,
        _us(row["rabbitmq_cpu_us_per_event"]),
        postgres,
        _us(row["bench_cpu_us_per_event"]),
        f"{_us(row['machine_cpu_us_per_event'])} ({row['machine_busy']:.0%})",
    ]


def replicas_section(result: dict[str, Any]) -> str:
    """The pipeline with 1, 2, 3 ... replicas of `upsell serve`, each against the mean of the bare relay
    measured just before and just after the replica rows, with the CPU per event of each component."""
    if "replicas" not in result:
        return ""
    replicas = result["replicas"]
    before, after = replicas["baseline_before"], replicas["baseline_after"]
    base = (before["per_second"] + after["per_second"]) / 2
    rows = [
        "| run | partitions each | events/s | ratio | service | RabbitMQ | PostgreSQL (bench database) | bench"
        " | machine (busy) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| bare relay, before | | {before['per_second']:,} | | {' | '.join(_cpu_cells(before))} |",
    ]
    for row in replicas["rows"]:
        label = f"{row['replicas']} replica{'s' if row['replicas'] > 1 else ''}"
        if row.get("handovers"):
            label += f" ({row['handovers']} partitions moved during the run)"
        shares = " + ".join(str(share) for share in row["shares"])
        rows.append(
            f"| {label} | {shares} | {row['per_second']:,} | {row['per_second'] / base:.2f}x"
            f" | {' | '.join(_cpu_cells(row))} |"
        )
    rows.append(f"| bare relay, after | | {after['per_second']:,} | | {' | '.join(_cpu_cells(after))} |")
    events = replicas["rows"][0]["events"] if replicas["rows"] else before["events"]
    # The load generator is the bench's own publisher and receiver: at its dearest CPU per event it could
    # carry this many events a second on its core, which must be above the bare relay's rate.
    dearest = max(row["bench_cpu_us_per_event"] for row in [before, after, *replicas["rows"]])
    generator = 1_000_000 / dearest
    fastest = max(before["per_second"], after["per_second"])
    return (
        "### Replicas\n\n"
        f"The pipeline with replicas of `upsell serve` sharing the partitions (one database, one vhost),"
        f" {events:,} events each after {replicas['warmup']:,} untimed; the ratio is to the mean of the bare"
        " relay's two runs. CPU per event in us, from /proc: the service's processes (each replica's in"
        " brackets; for the bare relay, the relay's), RabbitMQ's `beam.smp`, every PostgreSQL process"
        " (exited backends included; in brackets the backends of the bench's database alone), the bench's"
        " publisher and receiver, and the whole machine. RabbitMQ and PostgreSQL count whatever else used"
        " them meanwhile. Every event is a new session with its id as `correlation_id`, as checkout"
        f" backends publish. The publisher and receiver cost at most {dearest:,.0f} us per event, so on"
        f" their core they could carry about {generator:,.0f} events/s, {generator / fastest:.1f}x the bare"
        " relay's fastest run: the baseline is limited by itself, not by the load generator.\n\n"
        + "\n".join(rows)
        + "\n"
    )


def _figures(row: dict[str, Any]) -> str:
    return f"{row['rps']:,.0f} ({row['p99_ms']})"


def _http_rows(result: dict[str, Any]) -> list[str]:
    """Requests a second and p99 in ms under wrk (1 thread, 32 connections), each row against the baseline
    measured just before it."""
    http, hello = result["service"]["http"], result["hello"]

    def read(name: str, label: str, target: float | None) -> str:
        row = http[name]
        ratio = row["rps"] / row["baseline"]["rps"]
        met = None if target is None else ratio >= target
        goal = f">= {target}x" if target else ""
        return _row(label, _figures(row), f"{_figures(row['baseline'])} hello world", f"{ratio:.2f}x", goal, met)

    def write(name: str, label: str) -> list[str]:
        top, half = http[name], http[f"{name}_half"]
        ratio = top["rps"] / top["baseline"]["rps"]
        bare = half["baseline"]
        return [
            _row(
                label,
                _figures(top),
                f"{_figures(top['baseline'])} bare write",
                f"{ratio:.2f}x",
                ">= 0.6x",
                ratio >= 0.6,
            ),
            _row(
                f"{label.split(' (')[0]} at half its maximum: rate, p50 / p99 ms",
                f"{half['rps']:,.0f}/s: {half['p50_ms']} / {half['p99_ms']}",
                f"{bare['rps']:,.0f}/s: {bare['p50_ms']} / {bare['p99_ms']} bare write at half its own",
                "",
                "p99 < 50 ms",
                half["p99_ms"] < 50,
            ),
        ]

    return [
        _row(
            "hello world: wrk's own load on its core / the server's CPU per request (us)",
            f"{hello['generator_busy']:.0%} / {hello['server_cpu_us']}",
            f"{_figures(hello)}",
            "",
            "wrk < 100 %",
            hello["generator_busy"] < 0.95,
        ),
        read("get_secret", "GET one session, client secret (req/s, p99 ms)", None),
        read("get_backend", "GET one session, backend API key (req/s, p99 ms)", 0.6),
        read(
            "get_many",
            f"GET of {http['get_many']['sessions']:,} sessions in turn, backend key, each from the database",
            0.3,
        ),
        *write("toggle", "toggle, a different session each time, backend key (req/s, p99 ms)"),
        *write("create", "POST /v1/checkout/sessions, a new session each time, backend key (req/s, p99 ms)"),
        read("preview", "upgrade preview over 1,000 subscriptions, backend key (req/s, p99 ms)", None),
        read("script", "GET /v1/elements/upsell.js (req/s, p99 ms)", None),
        read("script_304", "GET /v1/elements/upsell.js with If-None-Match: 304 (req/s, p99 ms)", None),
    ]


def os_cpus() -> int:
    import os

    return os.cpu_count() or 0


def write(result: dict[str, Any], target: Path) -> str:
    """Replaces everything after the marker in docs/performance.md with the new table."""
    rendered = table(result)
    text = target.read_text(encoding="utf-8") if target.exists() else f"# Performance\n\n{MARKER}\n"
    head = text.split(MARKER)[0]
    target.write_text(head + rendered, encoding="utf-8")
    return rendered
