-- no-transaction
drop index concurrently if exists audit_events_organization_id_id_idx;
