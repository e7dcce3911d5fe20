-- no-transaction
drop index concurrently if exists comments_organization_id_id_idx;
