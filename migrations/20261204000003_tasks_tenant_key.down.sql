-- Back to the key on (id) alone: it fails, and changes nothing, when two tenants have a task
-- with the same id (the later ones must be given new ids first). The index of the tenant key
-- comes back for the previous migration's down to drop.
alter table tasks drop constraint tasks_pkey;
alter table tasks add constraint tasks_pkey primary key (id);
create unique index tasks_organization_id_id_idx on tasks (organization_id, id);
