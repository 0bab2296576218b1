-- Partitions. The outbox rows carry the partition of their correlation id, so that the replica owning a
-- partition publishes its events; replicas take partitions through leases, renewed at every heartbeat.
alter table outbox add column partition smallint not null default 0;
create index outbox_unpublished_by_partition on outbox (partition, id) where published_at is null;

-- The number of partitions the deployment runs with, set by the first replica: a replica started with
-- another number refuses to start (changing it is an operation, docs/scaling.md).
create table partitioning (
    one         boolean primary key default true check (one),
    partitions  integer not null check (partitions between 1 and 1024),
    set_at      timestamptz not null default now()
);

create table replicas (
    id          text primary key,
    started_at  timestamptz not null default now(),
    seen_at     timestamptz not null default now()
);

-- A partition with no owner, or whose lease ran out, is free for the next replica below its share.
create table partition_leases (
    partition   integer primary key,
    owner       text,
    expires_at  timestamptz not null default '-infinity',
    taken_at    timestamptz
);
