-- Back to the keys on (id) alone: it fails, and changes nothing, when two tenants have a row
-- with the same id (the later ones must be given new ids first). The indexes of the tenant
-- keys come back for the downs of the four before it to drop.
alter table outbox_events drop constraint outbox_events_pkey;
alter table outbox_events add constraint outbox_events_pkey primary key (id);
create unique index outbox_events_organization_id_id_idx on outbox_events (organization_id, id);
alter table audit_events drop constraint audit_events_pkey;
alter table audit_events add constraint audit_events_pkey primary key (id);
create unique index audit_events_organization_id_id_idx on audit_events (organization_id, id);
alter table comments drop constraint comments_pkey;
alter table comments add constraint comments_pkey primary key (id);
create unique index comments_organization_id_id_idx on comments (organization_id, id);
alter table projects drop constraint projects_pkey;
alter table projects add constraint projects_pkey primary key (id);
create unique index projects_organization_id_id_idx on projects (organization_id, id);
