"""The alert rules of deploy/prometheus: valid for promtool, unit-tested by promtool (a case that fires and
one that stays quiet for every alert), and each one labelled, summarised and given a runbook section."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
OPERATIONS = ROOT / "docs" / "operations.md"
SEVERITIES = {"critical", "warning"}


def _promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(
            "promtool is missing: `make test` (or `make prometheus`) installs Debian's prometheus package where "
            "apt-get is there; elsewhere install Prometheus and put promtool on PATH",
            pytrace=False,
        )
    return subprocess.run(
        [binary, *arguments], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120, check=False
    )


def _yaml(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((PROMETHEUS / name).read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _alerts() -> list[dict[str, Any]]:
    [group] = _yaml("alerts.yml")["groups"]
    rules: list[dict[str, Any]] = group["rules"]
    return rules


def _anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_promtool_accepts_the_rules_and_the_compose_config() -> None:
    rules = _promtool("check", "rules", "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in rules.stdout
    config = _promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    result = _promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_case_that_fires_and_one_that_stays_quiet() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in _yaml("alerts_test.yml")["tests"]:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in _alerts()}
    assert names - fired == set(), "alerts without a firing case"
    assert names - quiet == set(), "alerts without a quiet case"
    assert (fired | quiet) <= names, "tests of alerts that do not exist"


def test_every_alert_is_named_labelled_and_has_a_runbook_section() -> None:
    anchors = _anchors(OPERATIONS.read_text(encoding="utf-8"))
    alerts = _alerts()
    assert len({rule["alert"] for rule in alerts}) == len(alerts)
    for rule in alerts:
        name = rule["alert"]
        assert re.fullmatch(r"Upsell(?:[A-Z][a-z0-9]+)+", name), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert rule["annotations"]["summary"].strip(), name
        document, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert document == "docs/operations.md", name
        assert anchor == name.lower(), name
        assert anchor in anchors, f"docs/operations.md has no section for {name}"


def test_the_compose_prometheus_loads_the_alerts() -> None:
    config = _yaml("prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    # `up{job="upsell"}` in UpsellTargetDown names this job; the replicas of deploy/compose.yaml are its targets.
    assert jobs == {"upsell": ["upsell-1:8080", "upsell-2:8080"], "rabbitmq": ["rabbitmq:15692"]}
