"""Database errors that mean "try again later", as opposed to a bug or bad input."""

from __future__ import annotations

import asyncpg

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused or reset connections
    TimeoutError,
    asyncpg.InterfaceError,  # the connection is gone
    asyncpg.InternalClientError,  # a connection left mid-operation by a cut
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,  # admin shutdown, "the database system is starting up"
    asyncpg.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.TransactionRollbackError,  # serialization failure, deadlock
)
