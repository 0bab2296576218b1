"""Configuration comes from the `UPSELL_*` variables only, and secrets stay out of its repr."""

from __future__ import annotations

import pytest

from service.settings import Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.amqp_url == "amqp://guest:guest@127.0.0.1:5672/"
    assert settings.database_url == "postgresql://postgres@127.0.0.1:5432/upsell"
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert settings.admin_token is None


def test_reads_every_variable_and_hides_secrets() -> None:
    settings = Settings.from_env(
        {
            "UPSELL_AMQP_URL": "amqp://u:hunter2@mq:5672/v",
            "UPSELL_DATABASE_URL": "postgresql://app:s3cret@db/upsell",
            "UPSELL_HTTP_HOST": "0.0.0.0",  # noqa: S104 - a value read back, nothing binds
            "UPSELL_HTTP_PORT": "9000",
            "UPSELL_ADMIN_TOKEN": "adm",
            "UPSELL_LINK_SECRET": "lnk",
            "UPSELL_PUBLIC_URL": "https://shop.example",
        }
    )
    assert settings.http_port == 9000
    assert settings.link_secret == "lnk"
    shown = repr(settings)
    for secret in ("hunter2", "s3cret", "adm", "lnk"):
        assert secret not in shown


@pytest.mark.parametrize("port", ["http", "0", "70000"])
def test_bad_port_is_refused(port: str) -> None:
    with pytest.raises(ValueError, match="UPSELL_HTTP_PORT"):
        Settings.from_env({"UPSELL_HTTP_PORT": port})


def test_cors_origins_are_exact_origins() -> None:
    settings = Settings.from_env(
        {"UPSELL_CORS_ORIGINS": " https://Shop.example , http://127.0.0.1:3000,,https://shop.example"}
    )
    assert settings.cors_origins == ("https://shop.example", "http://127.0.0.1:3000")
    assert Settings.from_env({}).cors_origins == ()


@pytest.mark.parametrize(
    "origin", ["https://shop.example/", "https://shop.example/checkout", "*", "https://*.shop.example", "shop.example"]
)
def test_cors_origin_that_a_browser_never_sends_is_refused(origin: str) -> None:
    with pytest.raises(ValueError, match="UPSELL_CORS_ORIGINS"):
        Settings.from_env({"UPSELL_CORS_ORIGINS": origin})


def test_demo_is_off_unless_switched_on() -> None:
    assert Settings.from_env({}).demo is False
    assert Settings.from_env({"UPSELL_DEMO": "on"}).demo is True
    with pytest.raises(ValueError, match="UPSELL_DEMO"):
        Settings.from_env({"UPSELL_DEMO": "maybe"})
