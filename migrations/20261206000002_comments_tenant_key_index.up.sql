-- no-transaction
-- The index of comments' tenant-scoped primary key (20261206000005 swaps it
-- in), built without blocking writes; see 20261206000001.
create unique index concurrently if not exists comments_organization_id_id_idx
    on comments (organization_id, id);
