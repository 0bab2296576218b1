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
    service, base, hello = result["service"], result["baseline_pipeline"], result["hello"]
    pipe = service["pipeline"]["per_second"] / base["per_second"]
    get = service["http_get"]["rps"] / hello["rps"]
    toggle = service["http_toggle"]["rps"] / hello["rps"]
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
        _row(
            "GET session (req/s, p99 ms)",
            f"{service['http_get']['rps']:,} ({service['http_get']['p99_ms']})",
            f"{hello['rps']:,} ({hello['p99_ms']}) hello world",
            f"{get:.2f}x",
            ">= 0.5x",
            get >= 0.5,
        ),
        *(
            [
                _row(
                    f"GET of {service['http_get_first']['sessions']:,} sessions in turn, each read from the"
                    " database (req/s, p99 ms)",
                    f"{service['http_get_first']['rps']:,} ({service['http_get_first']['p99_ms']})",
                    f"{hello['rps']:,} hello world",
                    f"{service['http_get_first']['rps'] / hello['rps']:.2f}x",
                    "",
                    None,
                )
            ]
            if "http_get_first" in service
            else []
        ),
        _row(
            "toggle (req/s, p99 ms)",
            f"{service['http_toggle']['rps']:,} ({service['http_toggle']['p99_ms']})",
            f"{hello['rps']:,} hello world",
            f"{toggle:.2f}x",
            "",
            None,
        ),
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
    return f"{MARKER}\nRun {result['when']} on {machine}, {result['seconds']} s in all.\n\n" + "\n".join(rows) + "\n"


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
