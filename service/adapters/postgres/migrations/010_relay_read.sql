-- The relay's read: unpublished rows of the partitions a replica owns, in id order, read from the index
-- `outbox_unpublished` and stopping at the limit. An index scan marks the entries of rows published
-- since the last vacuum as dead as it passes them, so that the next read skips them; a bitmap scan,
-- which the planner chose for the partition index (it expects few rows), reads every entry left since
-- the last vacuum and sorts them all, each time: 7,700 index entries a read after 17,000 events, and
-- PostgreSQL's CPU per event half as much again. The settings hold for this function's statement only.
drop index outbox_unpublished_by_partition;

create function unpublished_outbox(max_rows integer, on_their_way bigint[], busy_sessions text[], owned smallint[])
    returns setof outbox language sql stable
    set enable_bitmapscan = off set enable_sort = off as $$
    select * from outbox
     where published_at is null and partition = any(owned)
       and id <> all(on_their_way) and correlation_id <> all(busy_sessions)
     order by id limit max_rows
$$;
