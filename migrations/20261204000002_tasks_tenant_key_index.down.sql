-- no-transaction
drop index concurrently if exists tasks_organization_id_id_idx;
