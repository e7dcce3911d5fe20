-- no-transaction
drop index concurrently if exists outbox_events_organization_id_id_idx;
