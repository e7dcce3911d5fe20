-- no-transaction
-- The index of tasks' tenant-scoped primary key (the next migration swaps it in), built
-- without blocking writes.
--
-- Why: with the key on (id) alone, a create whose client-chosen id another tenant already
-- uses was refused (409), which told the caller that the id exists elsewhere. With the key on
-- (organization_id, id), ids are unique per tenant: another tenant's ids are invisible, and
-- the same id in two tenants is two tasks. Distributed PostgreSQL (Citus) asks the same of
-- every key of a tenant table.
create unique index concurrently if not exists tasks_organization_id_id_idx
    on tasks (organization_id, id);
