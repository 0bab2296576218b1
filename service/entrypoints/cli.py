"""`upsell`: serve, migrate, catalog apply, check, dead-letters, partitions."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import aio_pika
import asyncpg
import msgspec
import yaml

from contracts.catalog import CatalogFile
from service import logging as service_logging
from service.adapters.rabbitmq.dead_letters import DeadLetterQueueMissing
from service.app.catalog_file import CatalogInvalidates, Invalidation, Plan, apply_catalog_plan, read_catalog
from service.app.errors import InvalidInput
from service.entrypoints import dead_letters_cli, partitions_cli
from service.settings import Settings, redact


class CliError(Exception):
    """A clear message for the user; exits 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="upsell", description="Checkout upsell service")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run HTTP, the consumer and the outbox relay")
    commands.add_parser("migrate", help="create the database if missing and apply migrations")
    commands.add_parser("check", help="exit 0 when PostgreSQL and RabbitMQ are reachable")
    catalog = commands.add_parser("catalog", help="catalog commands").add_subparsers(dest="action", required=True)
    apply = catalog.add_parser("apply", help="apply a catalog file (YAML or JSON), idempotently")
    apply.add_argument("file", type=Path)
    apply.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    apply.add_argument("--if-empty", action="store_true", help="apply only when the catalog has no product")
    dead_letters_cli.add_commands(commands)
    partitions_cli.add_commands(commands)
    return parser


async def _migrate(settings: Settings) -> None:
    from service.adapters.postgres.migrate import migrate

    applied = await migrate(settings.database_url)
    print(f"applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''}")


async def _check(settings: Settings) -> None:
    problems = []
    try:
        conn = await asyncio.wait_for(asyncpg.connect(settings.database_url.rsplit("/", 1)[0] + "/postgres"), 5)
        await conn.close()
    except Exception as exc:
        problems.append(f"PostgreSQL is not reachable at {redact(settings.database_url)}: {type(exc).__name__}")
    try:
        amqp = await asyncio.wait_for(aio_pika.connect(settings.amqp_url), 5)
        await amqp.close()
    except Exception as exc:
        problems.append(f"RabbitMQ is not reachable at {redact(settings.amqp_url)}: {type(exc).__name__}")
    if problems:
        raise CliError("; ".join(problems))
    print("PostgreSQL and RabbitMQ are reachable")


def _load(file: Path) -> CatalogFile:
    if not file.is_file():
        raise CliError(f"{file}: no such file")
    try:
        return read_catalog(file)
    except yaml.YAMLError as exc:
        raise CliError(f"{file}: not YAML or JSON: {exc}") from None
    except msgspec.ValidationError as exc:
        raise CliError(f"{file}: {exc}") from None


async def _apply(settings: Settings, file: Path, catalog: CatalogFile, dry_run: bool, if_empty: bool) -> None:
    from service.adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory

    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        if if_empty and await pool.fetchval("select exists (select 1 from products)"):
            print("the catalog has products already; nothing applied")
            return
        plan = await apply_catalog_plan(PostgresUnitOfWorkFactory(pool), catalog, dry_run=dry_run)
    except CatalogInvalidates as refused:
        lines = [f"  ! {_invalidation(i)}" for i in refused.plan.invalidations]
        raise CliError("\n".join([f"{file}: {refused.detail}; nothing applied", *lines])) from None
    except InvalidInput as invalid:
        lines = [f"  {v.code}{' at ' + v.field if v.field else ''}: {v.message}" for v in invalid.violations]
        raise CliError("\n".join([f"{file}: {invalid.detail}; nothing applied", *lines])) from None
    finally:
        await pool.close()
    print("\n".join(_plan_lines(plan, dry_run)))
    if plan.invalidations:
        # Only a dry run gets here with some (an apply was refused above): it exits as the apply would,
        # so that a script can stop before applying.
        count = len(plan.invalidations)
        raise CliError(
            f"{file}: an apply would refuse this file: it leaves {count} upsell pair(s) or upgrade path(s) invalid"
        )


_SIGNS = {"created": "+", "updated": "~"}
_VALUES = msgspec.json.Encoder(decimal_format="number")


def _plan_lines(plan: Plan, dry_run: bool) -> list[str]:
    """Like `terraform plan`: each created (+) or updated (~) item, its changed fields with the old and new
    value, then what the file breaks elsewhere (!), and a count."""
    prefix = "would be " if dry_run else ""
    lines = []
    for change in plan.changes:
        if change.change != "unchanged":
            lines.append(f"{_SIGNS[change.change]} {change.kind} {change.key}: {prefix}{change.change}")
            lines.extend(f"    {d.path}: {_shown(d.old)} -> {_shown(d.new)}" for d in change.differences)
    lines.extend(f"! {_invalidation(i)}" for i in plan.invalidations)
    unchanged = sum(1 for c in plan.changes if c.change == "unchanged")
    lines.append(f"{len(plan.changes) - unchanged} change(s), {unchanged} unchanged{' (dry run)' if dry_run else ''}")
    return lines


def _shown(value: object) -> str:
    """A value as JSON: strings quoted, null, lower-case booleans, nested items as objects."""
    return _VALUES.encode(value).decode()


def _invalidation(invalidation: Invalidation) -> str:
    what = {
        "upsell_pair": f"upsell pair {invalidation.key} -> {invalidation.target}",
        "upgrade_path": f"upgrade path {invalidation.key} (to {invalidation.target})",
    }[invalidation.kind]
    return f"{what} would be invalid: " + "; ".join(f"{v.code}: {v.message}" for v in invalidation.violations)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # What a command prints for people and scripts goes to stdout; its log lines, to stderr.
    service_logging.configure(stream=sys.stdout if args.command == "serve" else sys.stderr)
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            from service.bootstrap import serve

            _install_uvloop()
            asyncio.run(serve(settings))
        elif args.command == "migrate":
            asyncio.run(_migrate(settings))
        elif args.command == "check":
            asyncio.run(_check(settings))
        elif args.command == "dead-letters":
            return asyncio.run(dead_letters_cli.run(settings, args))
        elif args.command == "partitions":
            return asyncio.run(partitions_cli.run(settings, args))
        else:
            asyncio.run(_apply(settings, args.file, _load(args.file), args.dry_run, args.if_empty))
    except (CliError, ValueError) as error:
        print(f"upsell: {error}", file=sys.stderr)
        return 2
    except DeadLetterQueueMissing as missing:
        print(f"upsell: the broker has no queue {missing}: has the service run on this vhost?", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError, aio_pika.exceptions.AMQPConnectionError) as error:
        print(f"upsell: cannot reach a service: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    uvloop.install()


if __name__ == "__main__":
    sys.exit(main())
