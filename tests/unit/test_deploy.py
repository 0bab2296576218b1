"""The files in deploy/ agree with the code: the broker definitions with the topology the service declares,
compose and the Kubernetes manifests with the service's environment, probes, shutdown and partitions, the
image with a non-root user running `upsell`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import aio_pika
import aiormq
import yaml
from aio_pika.abc import AbstractChannel

from service.adapters.rabbitmq.topology import HASH_EXCHANGE_TYPE, PLUGIN, Topology, declare
from service.bootstrap import SHUTDOWN_GRACE
from service.domain.partitions import PARTITIONS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RABBITMQ = DEPLOY / "rabbitmq"
KUBERNETES = DEPLOY / "kubernetes"
# The service replicas of compose: one definition (a YAML anchor), published on different host ports.
REPLICAS = ("upsell-1", "upsell-2")

DOCUMENTED_VARIABLES = frozenset(
    {
        "UPSELL_AMQP_URL",
        "UPSELL_DATABASE_URL",
        "UPSELL_HTTP_HOST",
        "UPSELL_HTTP_PORT",
        "UPSELL_ADMIN_TOKEN",
        "UPSELL_LINK_SECRET",
        "UPSELL_PUBLIC_URL",
        "UPSELL_CORS_ORIGINS",
        "UPSELL_PARTITIONS",
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


Binding = tuple[str, str, str, str, dict[str, Any]]
"""source, destination, destination type, routing key, arguments: as in a definitions file."""


class _Exchange:
    def __init__(self, name: str, channel: _RecordingChannel) -> None:
        self.name = name
        self._channel = channel

    async def bind(
        self,
        exchange: _Exchange,
        routing_key: str = "",
        *,
        arguments: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        # aio-pika's Exchange.bind: `destination.bind(source)`, the binding of one exchange to another.
        self._channel.bindings.append((exchange.name, self.name, "exchange", routing_key, dict(arguments or {})))


class _Queue:
    def __init__(self, name: str, channel: _RecordingChannel) -> None:
        self.name = name
        self._channel = channel

    async def bind(
        self,
        exchange: _Exchange,
        routing_key: str | None = None,
        *,
        arguments: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        self._channel.bindings.append((exchange.name, self.name, "queue", routing_key or "", dict(arguments or {})))


class _Probe:
    """The plain AMQP channel `declare` asks whether a queue exists; like the broker, a passive declare of
    a missing queue closes it with 404, which aiormq raises as ChannelNotFoundEntity."""

    def __init__(self, known: set[str]) -> None:
        self._known = known
        self.is_closed = False
        self.asked: list[str] = []

    async def queue_declare(self, queue: str = "", passive: bool = False, **_: Any) -> None:
        assert passive, "the probe only asks, it never creates a queue"
        self.asked.append(queue)
        if queue not in self._known:
            self.is_closed = True
            # As aiormq builds it from the Channel.Close frame: the exception class of the reply code,
            # with the reply text.
            raise aiormq.exceptions.ChannelNotFoundEntity(f"NOT_FOUND - no queue '{queue}' in vhost '/'")

    async def close(self) -> None:
        self.is_closed = True


class _Connection:
    def __init__(self, channel: _RecordingChannel) -> None:
        self._channel = channel

    async def channel(self) -> _Probe:
        probe = _Probe(set(self._channel.queues))
        self._channel.probes.append(probe)
        return probe


class _Underlay:
    def __init__(self, channel: _RecordingChannel) -> None:
        self.connection = _Connection(channel)


class _RecordingChannel:
    """Stands in for an aio-pika channel and writes down what `declare` asks the broker for."""

    def __init__(self) -> None:
        self.exchanges: dict[str, dict[str, Any]] = {}
        self.queues: dict[str, dict[str, Any]] = {}
        self.bindings: list[Binding] = []
        self.probes: list[_Probe] = []

    async def get_underlay_channel(self) -> _Underlay:
        return _Underlay(self)

    async def declare_exchange(
        self,
        name: str,
        type: aio_pika.ExchangeType | str = aio_pika.ExchangeType.DIRECT,
        *,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        passive: bool = False,
        arguments: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> _Exchange:
        assert not passive
        # A plugin's type (x-consistent-hash) is passed as a string: aio-pika's enum does not know it.
        self.exchanges[name] = {
            "type": type.value if isinstance(type, aio_pika.ExchangeType) else type,
            "durable": durable,
            "auto_delete": auto_delete,
            "internal": internal,
            "arguments": dict(arguments or {}),
        }
        return _Exchange(name, self)

    async def declare_queue(
        self,
        name: str,
        *,
        durable: bool = False,
        exclusive: bool = False,
        passive: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> _Queue:
        assert not exclusive, "an exclusive queue cannot be a broker definition"
        assert not passive
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


def _in_order(bindings: list[Binding]) -> list[Binding]:
    return sorted(bindings, key=lambda binding: binding[:4])


def _bindings(definitions: dict[str, Any]) -> list[Binding]:
    return _in_order(
        [
            (item["source"], item["destination"], item["destination_type"], item["routing_key"], item["arguments"])
            for item in definitions["bindings"]
        ]
    )


def test_definitions_name_the_topology_of_the_code() -> None:
    topology = Topology()
    definitions = _definitions()
    exchanges = {item["name"]: (item["type"], item["arguments"]) for item in definitions["exchanges"]}
    assert exchanges == {
        topology.inbound_exchange: ("topic", {}),
        topology.outbound_exchange: ("topic", {}),
        topology.dead_letter_exchange: ("fanout", {}),
        topology.partition_exchange: (HASH_EXCHANGE_TYPE, {"hash-property": "correlation_id"}),
    }
    queues = {item["name"]: item["arguments"] for item in definitions["queues"]}
    assert len(topology.partition_queues) == PARTITIONS
    assert set(queues) == {*topology.partition_queues, topology.dead_letter_queue}
    for name in topology.partition_queues:
        assert _typed(queues[name]) == _typed(topology.queue_arguments()), name
    assert _typed(queues[topology.dead_letter_queue]) == _typed({"x-queue-type": "quorum"})
    # Every partition queue weighs "1" on the hash ring: equal shares.
    assert _bindings(definitions) == _in_order(
        [
            (topology.inbound_exchange, topology.partition_exchange, "exchange", topology.binding, {}),
            *((topology.partition_exchange, name, "queue", "1", {}) for name in topology.partition_queues),
            (topology.dead_letter_exchange, topology.dead_letter_queue, "queue", "", {}),
        ]
    )


async def test_definitions_equal_what_declare_asks_the_broker_for() -> None:
    channel = _RecordingChannel()
    await declare(cast(AbstractChannel, channel), Topology())
    definitions = _definitions()

    exchanges = {
        item["name"]: {key: item[key] for key in ("type", "durable", "auto_delete", "internal", "arguments")}
        for item in definitions["exchanges"]
    }
    assert exchanges == channel.exchanges
    for name, exchange in channel.exchanges.items():
        assert _typed(exchanges[name]["arguments"]) == _typed(exchange["arguments"]), name
    queues = {
        item["name"]: {key: item[key] for key in ("durable", "auto_delete", "arguments")}
        for item in definitions["queues"]
    }
    assert queues == channel.queues
    for name, queue in channel.queues.items():
        assert _typed(queues[name]["arguments"]) == _typed(queue["arguments"]), name
    assert len(channel.bindings) == len({binding[:4] for binding in channel.bindings})
    assert _bindings(definitions) == _in_order(channel.bindings)


async def test_declare_probes_for_a_partition_past_the_last_on_a_channel_it_closes() -> None:
    channel = _RecordingChannel()
    await declare(cast(AbstractChannel, channel), Topology())
    # The second asks for the single queue of the versions before partitions (to unbind it).
    [probe, single] = channel.probes
    assert probe.asked == [Topology().partition_queue(PARTITIONS)]
    assert single.asked == [Topology().queue_prefix]
    assert probe.is_closed
    assert single.is_closed


def _enabled_plugins() -> set[str]:
    """deploy/rabbitmq/enabled_plugins: one Erlang list of atoms, ended by a full stop."""
    text = (RABBITMQ / "enabled_plugins").read_text(encoding="utf-8").strip()
    match = re.fullmatch(r"\[([a-z_,\s]*)\]\.", text)
    assert match, text
    return {name.strip() for name in match.group(1).split(",") if name.strip()}


def test_compose_broker_enables_the_consistent_hash_exchange_and_keeps_the_image_plugins() -> None:
    # The file replaces the image's own enabled_plugins (management from the -management image, prometheus
    # from the base image); without the hash exchange the import of definitions.json fails at boot.
    assert _enabled_plugins() == {"rabbitmq_management", "rabbitmq_prometheus", PLUGIN}
    rabbitmq = _compose()["services"]["rabbitmq"]
    assert rabbitmq["image"].endswith("-management")
    assert _mounts(rabbitmq)["/etc/rabbitmq/enabled_plugins"] == RABBITMQ / "enabled_plugins"


def test_compose_has_the_servers_the_migration_and_two_replicas() -> None:
    assert {"postgres", "rabbitmq", "migrate", *REPLICAS} <= set(_compose()["services"])
    assert "upsell" not in _compose()["services"]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(entry.partition("=")[::2] for entry in environment)
    return {str(key): str(value) for key, value in environment.items()}


def test_compose_sets_only_the_variables_of_spec_6() -> None:
    services = _compose()["services"]
    for name in ("migrate", *REPLICAS):
        environment = _environment(services[name])
        assert set(environment) <= DOCUMENTED_VARIABLES, set(environment) - DOCUMENTED_VARIABLES
    upsell = _environment(services[REPLICAS[0]])
    assert urlsplit(upsell["UPSELL_DATABASE_URL"]).hostname == "postgres"
    assert urlsplit(upsell["UPSELL_AMQP_URL"]).hostname == "rabbitmq"
    assert upsell["UPSELL_HTTP_HOST"] == "0.0.0.0"  # noqa: S104 - inside the container, published on loopback
    assert upsell["UPSELL_PARTITIONS"] == str(PARTITIONS)


def _without_ports(service: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in service.items() if key != "ports"}


def test_compose_replicas_share_one_definition_and_differ_in_the_host_port() -> None:
    services = _compose()["services"]
    first, *others = (services[name] for name in REPLICAS)
    # Everything but the published port is the anchor's, so the replicas cannot drift apart.
    assert all(_without_ports(other) == _without_ports(first) for other in others)
    port = _environment(first)["UPSELL_HTTP_PORT"]
    published = [str(spec).rsplit(":", 2) for name in REPLICAS for spec in services[name]["ports"]]
    assert [container for _, _, container in published] == [port] * len(REPLICAS)
    assert sorted(int(host) for _, host, _ in published) == [8080, 8081]


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
    for name in ("migrate", *REPLICAS):
        build = services[name]["build"]
        assert (DEPLOY / build["context"]).resolve() == ROOT
        assert (ROOT / build["dockerfile"]).is_file()
    assert services["migrate"]["command"] == ["migrate"]
    for name in REPLICAS:
        assert services[name]["command"] == ["serve"]
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


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
    amqp = urlsplit(_environment(_compose()["services"][REPLICAS[0]])["UPSELL_AMQP_URL"])
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
    port = _environment(services[REPLICAS[0]])["UPSELL_HTTP_PORT"]
    # One job for all replicas: the alert rules group by job (`up{job="upsell"}`, `max by (job)`).
    assert targets["upsell"] == [f"{name}:{port}" for name in REPLICAS]
    assert targets["rabbitmq"] == ["rabbitmq:15692"]
    assert {*REPLICAS, "rabbitmq"} <= set(services)


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


def _manifests() -> dict[str, dict[str, Any]]:
    """The objects of deploy/kubernetes by kind (one object of each kind there)."""
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert isinstance(document, dict), path.name
            assert {"apiVersion", "kind", "metadata"} <= set(document), path.name
            assert document["kind"] not in objects, (path.name, document["kind"])
            objects[document["kind"]] = document
    return objects


def _container() -> dict[str, Any]:
    [container] = _manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def test_kustomization_lists_every_manifest_of_the_directory() -> None:
    kustomization = _yaml(KUBERNETES / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    manifests = {path.name for path in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(manifests)
    assert set(_manifests()) == {
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "TriggerAuthentication",
        "ScaledObject",
    }
    [image] = kustomization["images"]
    assert f"{image['name']}:{image['newTag']}" == _container()["image"] == "upsell:local"


def test_kustomize_builds_the_manifests() -> None:
    # Client side only: no cluster is asked. `make test` installs kubectl (Debian's kubernetes-client).
    assert shutil.which("kubectl"), "kubectl is missing: run `make kubectl`"
    built = subprocess.run(
        ["kubectl", "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=60, check=False
    )
    assert built.returncode == 0, built.stderr
    kinds = [document["kind"] for document in yaml.safe_load_all(built.stdout)]
    assert sorted(kinds) == sorted(_manifests())


def test_deployment_runs_upsell_serve_with_the_variables_of_spec_6() -> None:
    manifests = _manifests()
    container = _container()
    assert container["args"] == ["serve"]
    [source] = container["envFrom"]
    config = manifests["ConfigMap"]
    assert source == {"configMapRef": {"name": config["metadata"]["name"]}}
    settings = {str(key): str(value) for key, value in config["data"].items()}
    secrets = {entry["name"]: entry["valueFrom"]["secretKeyRef"] for entry in container["env"]}
    assert set(settings) | set(secrets) <= DOCUMENTED_VARIABLES, (set(settings) | set(secrets)) - DOCUMENTED_VARIABLES
    assert not set(settings) & set(secrets)
    assert set(secrets) == {"UPSELL_DATABASE_URL", "UPSELL_AMQP_URL", "UPSELL_LINK_SECRET", "UPSELL_ADMIN_TOKEN"}
    assert all(ref["key"] == name for name, ref in secrets.items())
    assert settings["UPSELL_HTTP_HOST"] == "0.0.0.0"  # noqa: S104 - a pod is reached on its own address
    assert settings["UPSELL_PARTITIONS"] == str(PARTITIONS)
    [port] = container["ports"]
    assert (port["name"], str(port["containerPort"])) == ("http", settings["UPSELL_HTTP_PORT"])


def test_deployment_probes_ask_livez_and_readyz() -> None:
    container = _container()
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert {kind: probe["path"] for kind, probe in probes.items()} == {
        "startupProbe": "/livez",
        "livenessProbe": "/livez",
        "readinessProbe": "/readyz",
    }
    assert all(probe["port"] == container["ports"][0]["name"] for probe in probes.values())
    # The service connects to PostgreSQL and RabbitMQ (30 attempts a second apart each) before it listens.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


def test_deployment_grace_period_covers_the_prestop_pause_and_the_service_shutdown() -> None:
    pod = _manifests()["Deployment"]["spec"]["template"]["spec"]
    command = _container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pause = float(command[1])
    assert pause > 0
    # The kubelet counts the preStop hook in the grace period, then SIGTERM starts SHUTDOWN_GRACE.
    assert pod["terminationGracePeriodSeconds"] > pause + SHUTDOWN_GRACE


def test_deployment_runs_as_the_image_user_with_bounded_resources() -> None:
    pod = _manifests()["Deployment"]["spec"]["template"]["spec"]
    [user] = [rest for keyword, rest in _dockerfile_instructions() if keyword == "USER"]
    uid, _, gid = user.partition(":")
    context = pod["securityContext"]
    assert (context["runAsNonRoot"], str(context["runAsUser"]), str(context["runAsGroup"])) == (True, uid, gid)
    container = _container()
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    resources = container["resources"]
    assert set(resources) == {"requests", "limits"}
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def _selector(manifest: dict[str, Any]) -> dict[str, str]:
    labels = manifest["spec"]["selector"]
    labels = labels.get("matchLabels", labels)
    assert isinstance(labels, dict)
    return {str(key): str(value) for key, value in labels.items()}


def test_the_service_the_budget_and_the_spread_select_the_deployment_pods() -> None:
    manifests = _manifests()
    deployment = manifests["Deployment"]
    template = deployment["spec"]["template"]
    selector = _selector(deployment)
    assert selector.items() <= template["metadata"]["labels"].items()
    assert _selector(manifests["PodDisruptionBudget"]) == selector
    assert _selector(manifests["Service"]) == selector
    assert manifests["Service"]["spec"]["ports"][0]["targetPort"] == _container()["ports"][0]["name"]
    budget = manifests["PodDisruptionBudget"]["spec"]
    assert budget.get("maxUnavailable") == 1 or budget.get("minAvailable") == 1
    [spread] = template["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"] == selector


def test_scaled_object_counts_the_partition_queues_up_to_one_replica_per_partition() -> None:
    manifests = _manifests()
    scaled = manifests["ScaledObject"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == manifests["Deployment"]["metadata"]["name"]
    # The ScaledObject owns the replica count; a `replicas` here would reset it at every apply.
    assert "replicas" not in manifests["Deployment"]["spec"]
    # A partition is consumed by one replica at a time: replicas past the partitions would idle.
    assert scaled["maxReplicaCount"] == PARTITIONS == int(manifests["ConfigMap"]["data"]["UPSELL_PARTITIONS"])
    assert scaled["minReplicaCount"] >= 2
    [trigger] = scaled["triggers"]
    assert trigger["type"] == "rabbitmq"
    metadata = trigger["metadata"]
    assert all(isinstance(value, str) for value in metadata.values()), "KEDA metadata values are strings"
    assert {key: metadata[key] for key in ("protocol", "useRegex", "operation", "mode")} == {
        "protocol": "http",
        "useRegex": "true",
        "operation": "sum",
        "mode": "QueueLength",
    }
    assert int(metadata["value"]) > 0
    topology = Topology(partitions=64)
    queues = re.compile(metadata["queueName"])
    assert all(queues.fullmatch(name) for name in topology.partition_queues)
    assert not queues.fullmatch(topology.dead_letter_queue)
    assert not queues.fullmatch(topology.queue_prefix)

    authentication = manifests["TriggerAuthentication"]
    assert trigger["authenticationRef"]["name"] == authentication["metadata"]["name"]
    [secret] = authentication["spec"]["secretTargetRef"]
    assert secret["parameter"] == "host"
