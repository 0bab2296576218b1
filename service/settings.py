"""Configuration from the environment: the documented `UPSELL_*` variables and nothing else."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from service.domain.partitions import PARTITIONS


@dataclass(frozen=True, slots=True)
class Settings:
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/upsell"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    admin_token: str | None = None
    link_secret: str | None = None
    public_url: str | None = None
    cors_origins: tuple[str, ...] = ()
    """Exact origins whose pages may call the client-secret endpoints from a browser."""
    partitions: int = PARTITIONS
    """Inbound and outbox partitions (`UPSELL_PARTITIONS`): the same in every replica of a deployment."""
    demo: bool = False
    """Serve the reference checkout page at /demo/checkout (`UPSELL_DEMO`, for a local demo only)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        default = cls()
        port = env.get("UPSELL_HTTP_PORT", str(default.http_port))
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"UPSELL_HTTP_PORT must be a port number, not {port!r}")
        partitions = env.get("UPSELL_PARTITIONS", str(default.partitions))
        if not partitions.isdigit() or not 1 <= int(partitions) <= 1024:
            raise ValueError(f"UPSELL_PARTITIONS must be a number from 1 to 1024, not {partitions!r}")
        return cls(
            amqp_url=env.get("UPSELL_AMQP_URL", default.amqp_url),
            database_url=env.get("UPSELL_DATABASE_URL", default.database_url),
            http_host=env.get("UPSELL_HTTP_HOST", default.http_host),
            http_port=int(port),
            admin_token=env.get("UPSELL_ADMIN_TOKEN") or None,
            link_secret=env.get("UPSELL_LINK_SECRET") or None,
            public_url=env.get("UPSELL_PUBLIC_URL") or None,
            cors_origins=parse_origins(env.get("UPSELL_CORS_ORIGINS", "")),
            partitions=int(partitions),
            demo=_flag("UPSELL_DEMO", env.get("UPSELL_DEMO", "")),
        )

    def __repr__(self) -> str:
        # Secrets never reach a log line through a repr.
        amqp, database = redact(self.amqp_url), redact(self.database_url)
        return f"Settings(amqp={amqp}, database={database}, port={self.http_port})"


def parse_origins(value: str) -> tuple[str, ...]:
    """`https://shop.example, http://localhost:3000` as exact origins: scheme, host and port, nothing
    else. A browser sends its origin that way, so a path, a trailing slash or a wildcard could never
    match and is refused here rather than ignored."""
    origins = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        parts = urlsplit(item)
        exact = f"{parts.scheme}://{parts.netloc}"
        if parts.scheme not in ("http", "https") or not parts.hostname or item != exact or "*" in item:
            raise ValueError(f"UPSELL_CORS_ORIGINS: {item!r} is not an origin like https://shop.example")
        origins.append(exact.lower())
    return tuple(dict.fromkeys(origins))


def _flag(name: str, value: str) -> bool:
    if value.lower() in ("", "0", "false", "off", "no"):
        return False
    if value.lower() in ("1", "true", "on", "yes"):
        return True
    raise ValueError(f"{name} must be on or off, not {value!r}")


def redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
