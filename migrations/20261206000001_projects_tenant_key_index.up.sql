-- no-transaction
-- The index of projects' tenant-scoped primary key (20261206000005 swaps it in), built without
-- blocking writes. One statement per file: sqlx's own runner sends a file whole.
--
-- Why: every key of a tenant table includes organization_id, as tasks' does since
-- 20261204000003. Ids are then unique per tenant, and a distributed PostgreSQL (Citus), where
-- the tenant tables are sharded by organization_id, enforces each key on one shard.
create unique index concurrently if not exists projects_organization_id_id_idx
    on projects (organization_id, id);
