"""The files in deploy/ agree with the code: the broker definitions with the topology the service declares,
compose with the service's environment, the image with a non-root user running `upsell`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import aio_pika
import yaml
from aio_pika.abc import AbstractChannel

from service.adapters.rabbitmq.topology import Topology, declare

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RABBITMQ = DEPLOY / "rabbitmq"

DOCUMENTED_VARIABLES = frozenset(
    {
        "UPSELL_AMQP_URL",
        "UPSELL_DATABASE_URL",
        "UPSELL_HTTP_HOST",
        "UPSELL_HTTP_PORT",
        "UPSELL_ADMIN_TOKEN",
        "UPSELL_LINK_SECRET",
        "UPSELL_PUBLIC_URL",
    }
)

# The keys `rabbitmqctl export_definitions` writes for each object (a typo would fail the import at boot).
EXCHANGE_KEYS = {"name", "vhost", "type", "durable", "auto_delete", "internal", "arguments"}
QUEUE_KEYS = {"name", "vhost", "durable", "auto_delete", "arguments"}
BINDING_KEYS = {"source", "vhost", "destination", "destination_type", "routing_key", "arguments"}


def _json(path: Path) -> dict[str, Any]:
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _definitions() -> dict[str, Any]:
    return _json(RABBITMQ / "definitions.json")


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _typed(arguments: dict[str, Any]) -> dict[str, tuple[type, Any]]:
    """Arguments with their types: the broker refuses a redeclare whose 20 became 20.0 or "20"."""
    return {key: (type(value), value) for key, value in arguments.items()}


class _Exchange:
    def __init__(self, name: str) -> None:
        self.name = name


class _Queue:
    def __init__(self, name: str, channel: _RecordingChannel) -> None:
        self.name = name
        self._channel = channel

    async def bind(self, exchange: _Exchange, routing_key: str = "") -> None:
        self._channel.bindings.add((exchange.name, self.name, routing_key))


class _RecordingChannel:
    """Stands in for an aio-pika channel and writes down what `declare` asks the broker for."""

    def __init__(self) -> None:
        self.exchanges: dict[str, dict[str, Any]] = {}
        self.queues: dict[str, dict[str, Any]] = {}
        self.bindings: set[tuple[str, str, str]] = set()

    async def declare_exchange(
        self,
        name: str,
        type: aio_pika.ExchangeType | str = aio_pika.ExchangeType.DIRECT,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> _Exchange:
        self.exchanges[name] = {
            "type": aio_pika.ExchangeType(type).value,
            "durable": durable,
            "auto_delete": auto_delete,
            "internal": internal,
            "arguments": dict(arguments or {}),
        }
        return _Exchange(name)

    async def declare_queue(
        self,
        name: str,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> _Queue:
        assert not exclusive, "an exclusive queue cannot be a broker definition"
        self.queues[name] = {
            "durable": durable,
            "auto_delete": auto_delete,
            "arguments": dict(arguments or {}),
        }
        return _Queue(name, self)


def test_definitions_have_the_export_format_and_no_users() -> None:
    definitions = _definitions()
    assert set(definitions) == {"vhosts", "exchanges", "queues", "bindings"}
    assert definitions["vhosts"] == [{"name": "/"}]
    for keys, kind in ((EXCHANGE_KEYS, "exchanges"), (QUEUE_KEYS, "queues"), (BINDING_KEYS, "bindings")):
        assert definitions[kind], kind
        for item in definitions[kind]:
            assert set(item) == keys, item
            assert item["vhost"] == "/", item
    for item in definitions["exchanges"] + definitions["queues"]:
        assert item["durable"] is True, item
        assert item["auto_delete"] is False, item


def test_definitions_name_the_topology_of_the_code() -> None:
    topology = Topology()
    definitions = _definitions()
    exchanges = {item["name"]: item["type"] for item in definitions["exchanges"]}
    assert exchanges == {
        topology.inbound_exchange: "topic",
        topology.outbound_exchange: "topic",
        topology.dead_letter_exchange: "fanout",
    }
    queues = {item["name"]: item["arguments"] for item in definitions["queues"]}
    assert set(queues) == {topology.queue, topology.dead_letter_queue}
    assert _typed(queues[topology.queue]) == _typed(topology.queue_arguments())
    assert _typed(queues[topology.dead_letter_queue]) == _typed({"x-queue-type": "quorum"})
    bindings = {
        (item["source"], item["destination"], item["destination_type"], item["routing_key"])
        for item in definitions["bindings"]
    }
    assert bindings == {
        (topology.inbound_exchange, topology.queue, "queue", topology.binding),
        (topology.dead_letter_exchange, topology.dead_letter_queue, "queue", ""),
    }


async def test_definitions_equal_what_declare_asks_the_broker_for() -> None:
    channel = _RecordingChannel()
    await declare(cast(AbstractChannel, channel), Topology())
    definitions = _definitions()

    exchanges = {
        item["name"]: {key: item[key] for key in ("type", "durable", "auto_delete", "internal", "arguments")}
        for item in definitions["exchanges"]
    }
    assert exchanges == channel.exchanges
    queues = {
        item["name"]: {key: item[key] for key in ("durable", "auto_delete", "arguments")}
        for item in definitions["queues"]
    }
    assert queues == channel.queues
    for name, queue in channel.queues.items():
        assert _typed(queues[name]["arguments"]) == _typed(queue["arguments"]), name
    bindings = {(item["source"], item["destination"], item["routing_key"]) for item in definitions["bindings"]}
    assert bindings == channel.bindings
    assert all(item["destination_type"] == "queue" and item["arguments"] == {} for item in definitions["bindings"])


def test_compose_has_the_four_services() -> None:
    assert {"postgres", "rabbitmq", "migrate", "upsell"} <= set(_compose()["services"])


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(entry.partition("=")[::2] for entry in environment)
    return {str(key): str(value) for key, value in environment.items()}


def test_compose_sets_only_the_variables_of_spec_6() -> None:
    services = _compose()["services"]
    for name in ("migrate", "upsell"):
        environment = _environment(services[name])
        assert set(environment) <= DOCUMENTED_VARIABLES, set(environment) - DOCUMENTED_VARIABLES
    upsell = _environment(services["upsell"])
    assert urlsplit(upsell["UPSELL_DATABASE_URL"]).hostname == "postgres"
    assert urlsplit(upsell["UPSELL_AMQP_URL"]).hostname == "rabbitmq"
    assert upsell["UPSELL_HTTP_HOST"] == "0.0.0.0"  # noqa: S104 - inside the container, published on loopback


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [text for key, value in node.items() for text in (*_strings(key), *_strings(value))]
    if isinstance(node, list):
        return [text for item in node for text in _strings(item)]
    return [node] if isinstance(node, str) else []


def test_compose_servers_start_without_any_variable_set() -> None:
    # `docker compose up postgres rabbitmq` interpolates the whole file: a `${VAR:?...}` anywhere stops it.
    required = [text for text in _strings(_compose()) if re.search(r"\$\{\w+:?\?", text)]
    assert not required


def test_compose_publishes_ports_on_loopback_only() -> None:
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_compose_builds_the_image_from_the_repository_root() -> None:
    services = _compose()["services"]
    for name in ("migrate", "upsell"):
        build = services[name]["build"]
        assert (DEPLOY / build["context"]).resolve() == ROOT
        assert (ROOT / build["dockerfile"]).is_file()
    assert services["migrate"]["command"] == ["migrate"]
    assert services["upsell"]["command"] == ["serve"]
    assert services["upsell"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def _rabbitmq_conf() -> dict[str, str]:
    settings: dict[str, str] = {}
    for line in (RABBITMQ / "rabbitmq.conf").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def test_compose_mounts_the_broker_files_where_rabbitmq_conf_loads_them() -> None:
    mounts: dict[str, Path] = {}
    for volume in _compose()["services"]["rabbitmq"]["volumes"]:
        source, _, target = str(volume).partition(":")
        if source.startswith("."):
            mounts[target.removesuffix(":ro")] = (DEPLOY / source).resolve()
    assert all(path.is_file() for path in mounts.values()), mounts
    assert RABBITMQ / "definitions.json" in mounts.values()
    assert RABBITMQ / "dev-users.json" in mounts.values()
    assert RABBITMQ / "rabbitmq.conf" in mounts.values()

    settings = _rabbitmq_conf()
    directory = settings["load_definitions"].rstrip("/")
    loaded = sorted((target, path) for target, path in mounts.items() if target.startswith(directory + "/"))
    # Imported in name order: the topology (with the vhost) first, then the user and its permissions.
    assert [path.name for _, path in loaded] == ["definitions.json", "dev-users.json"]
    assert settings["loopback_users.guest"] == "false"


def test_dev_users_hold_the_guest_login_compose_uses() -> None:
    users = _json(RABBITMQ / "dev-users.json")
    assert set(users) == {"users", "permissions"}
    [user] = users["users"]
    amqp = urlsplit(_environment(_compose()["services"]["upsell"])["UPSELL_AMQP_URL"])
    assert (user["name"], amqp.username, amqp.password) == ("guest", "guest", "guest")
    assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    salted = base64.b64decode(user["password_hash"])
    salt, expected = salted[:4], salted[4:]
    assert hmac.compare_digest(hashlib.sha256(salt + b"guest").digest(), expected)
    assert users["permissions"] == [{"user": "guest", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}]


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    logical = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in logical.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_runs_upsell_as_a_non_root_user() -> None:
    instructions = _dockerfile_instructions()
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users, "the image must set a USER"
    user, _, group = users[-1].partition(":")
    assert user not in {"root", "0"}
    assert group not in {"root", "0"}
    [entrypoint] = [rest for keyword, rest in instructions if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["upsell"]
    [command] = [rest for keyword, rest in instructions if keyword == "CMD"]
    assert json.loads(command) == ["serve"]
    assert ("EXPOSE", "8080") in instructions


def test_dockerfile_copies_files_that_exist() -> None:
    for keyword, rest in _dockerfile_instructions():
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, _ = rest.split()
            for source in sources:
                if "*" not in source:
                    assert (ROOT / source).exists(), source


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Bind mounts of a compose service: target in the container -> file or directory in deploy/."""
    mounts: dict[str, Path] = {}
    for volume in service.get("volumes", []):
        source, _, target = str(volume).partition(":")
        if source.startswith("."):
            mounts[target.removesuffix(":ro")] = (DEPLOY / source).resolve()
    return mounts


def _yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_compose_prometheus_reads_deploy_prometheus_and_scrapes_the_compose_services() -> None:
    services = _compose()["services"]
    prometheus = services["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:")
    # The image's default command reads /etc/prometheus/prometheus.yml.
    assert _mounts(prometheus)["/etc/prometheus"] == DEPLOY / "prometheus"
    assert "127.0.0.1:9090:9090" in prometheus["ports"]
    config = _yaml(DEPLOY / "prometheus" / "prometheus.yml")
    assert all((DEPLOY / "prometheus" / name).is_file() for name in config["rule_files"])
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    port = _environment(services["upsell"])["UPSELL_HTTP_PORT"]
    assert targets["upsell"] == [f"upsell:{port}"]
    assert targets["rabbitmq"] == ["rabbitmq:15692"]
    assert {"upsell", "rabbitmq"} <= set(services)


def test_compose_grafana_provisions_the_datasource_and_the_dashboard() -> None:
    grafana = _compose()["services"]["grafana"]
    assert grafana["image"].startswith("grafana/grafana:")
    assert "127.0.0.1:3000:3000" in grafana["ports"]
    mounts = _mounts(grafana)
    assert mounts["/etc/grafana/provisioning"] == DEPLOY / "grafana" / "provisioning"

    [provider] = _yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "upsell.yml")["providers"]
    dashboards = mounts[provider["options"]["path"]]
    assert dashboards == DEPLOY / "grafana" / "dashboards"
    home = Path(_environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (dashboards / home.relative_to(provider["options"]["path"])).is_file()

    [datasource] = _yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert urlsplit(datasource["url"]).hostname == "prometheus"
    assert urlsplit(datasource["url"]).port == 9090
    dashboard = _json(dashboards / "upsell.json")
    [variable] = dashboard["templating"]["list"]
    assert (variable["type"], variable["current"]["value"]) == ("datasource", datasource["uid"])


def test_every_dashboard_panel_queries_the_datasource_variable() -> None:
    dashboard = _json(DEPLOY / "grafana" / "dashboards" / "upsell.json")
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert re.search(r"\bupsell_\w+|\bup\{", target["expr"]), (panel["title"], target["expr"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
