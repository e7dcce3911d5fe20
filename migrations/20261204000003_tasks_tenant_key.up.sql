-- tasks' primary key becomes (organization_id, id), on the index built by the previous
-- migration: a swap of constraints that holds the table's lock for an instant, not a build.
-- tasks_id_organization_id_key stays: comments' foreign key references it.
alter table tasks
    drop constraint tasks_pkey,
    add constraint tasks_pkey primary key using index tasks_organization_id_id_idx;
