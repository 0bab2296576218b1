"""HTTP load from wrk (Debian's `wrk`, written in C): one thread and 32 connections outrun the aiohttp hello
world on this machine, which a Python client does not (it tops out near 12k requests/s).

Each row is a Lua script of bench/wrk/ (tokens, bodies, spreading over sessions) with report.lua
appended, which prints the counts and percentiles as one JSON line.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).parent / "wrk"
THREADS = 1
CONNECTIONS = 32


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("make bench needs wrk: apt-get install wrk (the Makefile installs it where apt-get is there)")
    return found


def run(
    url: str,
    seconds: float,
    script: str | None = None,
    env: dict[str, str] | None = None,
    connections: int = CONNECTIONS,
) -> dict[str, Any]:
    """`wrk` against `url` for `seconds`: requests a second, errors, p50 / p90 / p99 in ms.

    `script` names a Lua file of bench/wrk/ that shapes the requests, reading its settings from `env`;
    common.lua (the token, a pause between requests) comes before it and report.lua after.
    """
    parts = ["common.lua", *([script] if script else []), "report.lua"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write("\n".join((SCRIPTS / part).read_text() for part in parts))
    try:
        command = [
            wrk_binary(),
            "-t",
            str(THREADS),
            "-c",
            str(connections),
            "-d",
            f"{max(round(seconds), 1)}s",
            "-s",
            lua.name,
        ]
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        ran = subprocess.run(
            [*command, url],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **(env or {})},
            timeout=seconds + 30,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        os.unlink(lua.name)
    if ran.returncode != 0:
        raise RuntimeError(f"wrk failed ({ran.returncode}): {ran.stderr.strip() or ran.stdout.strip()}")
    wrk_cpu = (after.ru_utime + after.ru_stime) - (used.ru_utime + used.ru_stime)
    figures = json.loads(ran.stdout.strip().splitlines()[-1])
    errors = figures["socket_errors"] + figures["status_errors"]
    return {
        "requests": figures["requests"],
        "seconds": figures["seconds"],
        "errors": errors,
        "rps": round(figures["requests"] / figures["seconds"], 1),
        "p50_ms": round(figures["p50_us"] / 1000, 2),
        "p90_ms": round(figures["p90_us"] / 1000, 2),
        "p99_ms": round(figures["p99_us"] / 1000, 2),
        "connections": connections,
        # How much of its one core wrk used: well below 1, it was waiting for the server, not the reverse.
        "generator_busy": round(wrk_cpu / figures["seconds"], 2),
        "generator_cpu_s": wrk_cpu,
        "quantiles_us": figures["quantiles_us"],
    }


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs of one row taken in turns, as one: counts and times summed, percentiles of every request.

    Each run's latency at every tenth of a percent stands for a thousandth of its requests, so the pooled
    percentiles weigh each run by its requests (to within a tenth of a percent of each run).
    """
    requests = sum(run["requests"] for run in runs)
    seconds = sum(run["seconds"] for run in runs)
    weighted: list[tuple[int, float]] = sorted(
        (q, run["requests"] / len(run["quantiles_us"])) for run in runs for q in run["quantiles_us"]
    )

    def percentile(p: float) -> float:
        reached, bound = 0.0, p / 100 * requests
        for value, weight in weighted:
            reached += weight
            if reached >= bound:
                return round(value / 1000, 2)
        return round(weighted[-1][0] / 1000, 2) if weighted else 0.0

    generator = sum(run["generator_cpu_s"] for run in runs)
    return {
        "requests": requests,
        "seconds": round(seconds, 3),
        "errors": sum(run["errors"] for run in runs),
        "rps": round(requests / seconds, 1),
        "p50_ms": percentile(50),
        "p90_ms": percentile(90),
        "p99_ms": percentile(99),
        "connections": runs[0]["connections"],
        "generator_busy": round(generator / seconds, 2),
        "generator_cpu_s": generator,
        "runs": len(runs),
        "rps_of_runs": [run["rps"] for run in runs],
    }
