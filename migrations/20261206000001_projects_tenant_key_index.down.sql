-- no-transaction
drop index concurrently if exists projects_organization_id_id_idx;
