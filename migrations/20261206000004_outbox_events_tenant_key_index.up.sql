-- no-transaction
-- The index of outbox_events' tenant-scoped primary key (20261206000005 swaps it
-- in), built without blocking writes; see 20261206000001.
create unique index concurrently if not exists outbox_events_organization_id_id_idx
    on outbox_events (organization_id, id);
