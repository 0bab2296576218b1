"""The outbox's write side: events queued in the transaction of their cause, read by the relay
(service/adapters/rabbitmq/relay.py) in id order, per partition."""

from __future__ import annotations

from service.adapters.postgres.statements import Statements
from service.domain.partitions import partition_of

_INSERT_OUTBOX = (
    "insert into outbox (event_id, type, correlation_id, body, dead_letter_reason, dead_letter_detail, partition)"
    " values ($1, $2, $3, $4, $5, $6, $7) on conflict (event_id) do nothing"
)


class OutboxTable:
    """Outbox rows are queued and written with the commit; one statement for all of them keeps their order.
    Each row carries the partition of its correlation id, which the relay of that partition's owner reads."""

    def __init__(self, conn: Statements, partitions: int) -> None:
        self._conn = conn
        self._partitions = partitions

    async def add(self, event_id: str, event_type: str, correlation_id: str, body: bytes) -> None:
        partition = partition_of(correlation_id, self._partitions)
        self._conn.later(_INSERT_OUTBOX, event_id, event_type, correlation_id, body, None, None, partition)

    async def add_dead_letter(
        self, event_id: str, event_type: str, correlation_id: str, body: bytes, reason: str, detail: str
    ) -> None:
        partition = partition_of(correlation_id, self._partitions)
        self._conn.later(_INSERT_OUTBOX, event_id, event_type, correlation_id, body, reason, detail, partition)
